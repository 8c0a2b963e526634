//! ringpath's browser tracker, the Rust half: the decisions that must be
//! right and tested — consent precedence, which DNI rule a visit matches
//! (shared with ingest through `ringpath-types`), finding and rewriting phone
//! numbers in page text, scrubbing personal data from URLs. All pure and
//! tested natively. `exports` (wasm32 only) hands them to rp.js, which owns
//! the browser side: DOM walking, cookies, network, events (js/rp.js).

// Tests may unwrap: a panic there is a failed assertion.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod consent;
pub mod dni;
pub mod phone;
pub mod pii;

#[cfg(target_arch = "wasm32")]
mod alloc;
#[cfg(target_arch = "wasm32")]
mod exports;

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static HEAP: alloc::Arena = alloc::Arena::new();
