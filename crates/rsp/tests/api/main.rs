//! The server's behaviour end to end, over HTTP, against the real server started by `spawn_app()`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod admin;
mod audit;
mod discovery;
mod helpers;
mod hostile;
mod introspection;
mod keys;
mod loadtest;
mod logout;
mod oidc_rp;
mod pep;
mod policy;
mod proxies;
mod restart;
mod scaleout;
mod signin;
mod signin_policy;
mod token;
mod totp;
mod users;
