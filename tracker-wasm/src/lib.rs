//! ringpath's browser tracker. The pure parts (consent precedence, phone
//! number matching, URL scrubbing, the batch document, a tiny JSON codec) are
//! plain modules tested natively; `web` is the wasm32-only adapter that wires
//! them to the DOM, cookies and the network.

pub mod batch;
pub mod consent;
pub mod json;
pub mod pii;

#[cfg(target_arch = "wasm32")]
mod web;
