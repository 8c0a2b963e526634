//! ringpath-store: the ClickHouse schema and its one owner. enrich writes
//! rows through it, dashboard-api reads and erases through it; neither holds
//! a copy of a table's shape, a view's SELECT or the erasure statements.
//!
//! In the order a deployment meets them: [`settings`] (where the server is),
//! [`migrate`] (the schema, applied once per migration), [`rows`] (the
//! tables' row types), [`views`] (the materialized views' SELECTs),
//! [`retention`] and [`erasure`] (what removes rows; [`erasure_job`] runs an
//! erasure's steps, resumably), [`error`] (every failure
//! classed as retryable or permanent by ClickHouse's error code).

#![cfg_attr(test, allow(clippy::unwrap_used))] // tests may unwrap

pub mod erasure;
pub mod erasure_job;
pub mod error;
pub mod migrate;
pub mod retention;
pub mod rows;
pub mod settings;
pub mod views;

pub use error::{ErrorClass, StoreError};
pub use migrate::migrate;
pub use settings::ClickHouseSettings;
