//! Storage adapters: the `rsp_core::ports` traits over sqlx.
//!
//! # Layout
//! - [`sqlite`]: the embedded default, one file under the data directory.
//! - [`rows`]: conversions between rows and domain records, shared by the adapters.

mod rows;
pub mod sqlite;

pub use sqlite::SqliteStore;
