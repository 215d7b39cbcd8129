//! The policy enforcement point SDK: what a resource server (or the auth service, when the policy service
//! runs apart) embeds to ask the platform for decisions and to check the platform's access tokens.
//!
//! It speaks to the platform over HTTP only and depends on no other crate of the workspace, so embedding
//! it pulls in neither the server nor Cedar.
//!
//! ```no_run
//! # async fn example() -> Result<(), rsp_client::ClientError> {
//! use rsp_client::{AuthorizeRequest, ClientCredentials, DecisionClient, EntityUid};
//!
//! let client = DecisionClient::builder("http://pdp:8080", "acme", ClientCredentials::new("orders-api", "s3cret"))
//!     .build()?;
//! let request = AuthorizeRequest::new(
//!     EntityUid::new("User", "alice"),
//!     EntityUid::new("Action", "view"),
//!     EntityUid::new("Order", "o-17"),
//! );
//! // Fail-closed: if the platform cannot answer, this is a Deny marked as a fallback.
//! let allowed = client.authorize(request).await?.is_allowed();
//! # let _ = allowed;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - [`client`]: [`DecisionClient`] and its builder; the fallback policy ([`Fallback`]).
//! - [`breaker`]: the circuit breaker, pure logic driven by the caller's clock.
//! - [`batcher`]: gathers concurrent calls into batch calls.
//! - [`cache`]: the short-lived decision cache and its canonical key.
//! - [`transport`]: the HTTP calls and the one place answers become decisions or errors.
//! - [`token`]: the client's own token (client credentials grant), kept and refreshed.
//! - [`validator`]: [`TokenValidator`], local RFC 9068 access-token validation with a cached JWKS.
//! - [`model`]: requests, decisions and their wire shapes; [`error`]: the two error enums.
//! - [`metrics`]: every metric emitted, in one table.
//!
//! Time in the decision client comes from Tokio's clock (so `tokio::time::pause` controls it), in the
//! validator from an injectable Unix clock.

pub mod batcher;
pub mod breaker;
pub mod cache;
pub mod client;
pub mod error;
pub mod metrics;
pub mod model;
pub mod token;
pub mod transport;
pub mod validator;

pub use batcher::BatchConfig;
pub use breaker::{BreakerConfig, BreakerState};
pub use cache::CacheConfig;
pub use client::{DecisionClient, DecisionClientBuilder, Fallback, HttpVersion};
pub use error::{ClientError, ValidationError};
pub use model::{AuthorizeRequest, DecidedBy, Decision, Effect, EntityUid};
pub use token::{ClientCredentials, ProvidedToken, TokenProvider};
pub use validator::{AccessTokenClaims, TokenValidator, TokenValidatorBuilder, UnixClock};

/// Now, by Tokio's clock when a runtime is running (so paused-time tests control it), else the system's.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}
