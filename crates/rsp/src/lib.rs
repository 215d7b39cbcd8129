//! The `rsp` binary's library half: configuration, start-up wiring and the command line, so that tests
//! can start the real server in process.
//!
//! # Layout
//! - [`config`]: layered configuration (defaults, TOML file, `RSP_*` environment, flags).
//! - [`startup`]: `Application::build` binds the listeners and wires the adapters; `run_until` serves and
//!   drains on shutdown.
//! - [`backend`]: the storage engine (SQLite or PostgreSQL) and the event bus in its database.
//! - [`events`]: the event publisher, the outbox relay and the audit writer.
//! - [`bootstrap`]: first start (data directory, master key, default tenant, admin client).
//! - [`remote_policy`]: with `--role auth`, scope decisions asked of the policy service over HTTP.
//! - [`telemetry`]: log output.
//! - [`allocator`]: glibc's allocator told to return large frees, before anything else runs.
//! - [`cli`]: argument definitions and the admin commands.
//! - [`loadtest`]: `rsp loadtest`, throughput and latency of the OAuth and decision endpoints.

pub mod allocator;
pub mod backend;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod events;
pub mod loadtest;
pub mod remote_policy;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
