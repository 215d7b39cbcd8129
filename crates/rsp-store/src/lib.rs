//! Storage adapters: the `rsp_core::ports` traits over sqlx.
//!
//! # Layout
//! - [`sqlite`]: the embedded default, one file under the data directory.
//! - [`postgres`]: the shared store of a scaled-out deployment, with optional read replicas.
//! - `engines`: the port implementations whose SQL both engines accept, written once.
//! - [`rows`]: conversions between rows and domain records, shared by the adapters.
//! - each engine's `outbox` module: a change's events, written in the change's own transaction (the
//!   transactional outbox of `rsp_core::ports`).
//! - `sql_bus`, `audit_rows`: what the event bus and the audit trail share across both engines.

mod audit_rows;
mod engines;
#[cfg(test)]
mod pg_test;
pub mod postgres;
mod rows;
mod sql_bus;
pub mod sqlite;

pub use postgres::{PgEventBus, PostgresError, PostgresOptions, PostgresStore};
pub use sqlite::{SqliteEventBus, SqliteStore};
