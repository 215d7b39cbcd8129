//! The `rsp` binary as a user runs it: a process started with no configuration file, the admin CLI,
//! `check-config`, shutdown on SIGTERM, logs that never contain a secret, and the monitoring files under
//! `deploy/` against its `/metrics`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod server;

mod audit;
mod config;
mod lifecycle;
mod observability;
mod users;
