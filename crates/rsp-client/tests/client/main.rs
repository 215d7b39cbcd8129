//! The decision client and the token validator against a real HTTP server on loopback that implements
//! the platform's contract (see `server`).

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "the test server and helpers outside #[test] functions fail loudly too"
)]

mod batching;
mod breaker;
mod cache;
mod server;
mod tokens;
mod validator;

use rsp_client::{AuthorizeRequest, EntityUid};

/// A request from `User::"<principal>"`, allowed by the test server iff `allow`.
fn request(principal: &str, allow: bool) -> AuthorizeRequest {
    AuthorizeRequest::new(
        EntityUid::new("User", principal),
        EntityUid::new("Action", "view"),
        EntityUid::new("Order", "o-17"),
    )
    .with_context("allow", allow)
}

/// A request the server refuses as malformed: its principal type is unknown.
fn malformed(principal: &str) -> AuthorizeRequest {
    AuthorizeRequest::new(
        EntityUid::new("Bogus", principal),
        EntityUid::new("Action", "view"),
        EntityUid::new("Order", "o-17"),
    )
}
