//! Code that must agree in the browser (tracker-wasm, compiled to wasm32) and
//! on the server (ingest, enrich, dashboard-api): traffic-source
//! classification, the DNI pool/source rule matcher, IP truncation and — with
//! the `serde` feature — wire types, Kafka messages and the accounts file.
//! Nothing here does IO.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod consent;
pub mod ip;
pub mod rules;
pub mod source;
pub mod time;
pub mod ua;
pub mod url;

#[cfg(feature = "serde")]
pub mod accounts;
#[cfg(feature = "server")]
pub mod auth;
#[cfg(feature = "serde")]
pub mod wire;

pub use consent::Consent;
pub use rules::Rule;
pub use source::{classify, Channel, VisitSource};
