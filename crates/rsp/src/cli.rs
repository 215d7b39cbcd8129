//! The command line: `serve`, `check-config`, and the admin commands, which are thin clients of the
//! admin API.

pub mod admin;
pub mod args;
pub mod audit;
pub mod users;
