//! The OAuth 2.0 / OpenID Connect authorization server as plain use cases: no HTTP, no SQL.
//!
//! # Layout
//! - [`service`]: `AuthService`, the entry point, and the token endpoint's `match` on `grant_type`.
//! - [`grants`]: one module per grant type.
//! - [`client_auth`]: client authentication; [`throttle`]: brute-force limits on it.
//! - [`audience`]: which scopes and which `aud` a token gets (RFC 8707, RFC 9068 §3).
//! - [`token`]: minting and verifying JWT access tokens (RFC 9068).
//! - [`introspection`]: RFC 7662 introspection and RFC 7009 revocation.
//! - [`bearer`]: bearer checks for the platform's own APIs; [`verified`]: their verified-token cache.
//! - [`discovery`]: RFC 8414 / OIDC discovery metadata.
//! - [`keyring`]: each tenant's keys, opened and parsed once; [`crypto`]: aws-lc-rs primitives.
//! - [`admin`]: tenant, client and key management.
//! - [`params`]: RFC 6749 form-parameter rules; [`issuer`]: every URL the server emits.

pub mod admin;
pub mod audience;
pub mod audit;
pub mod bearer;
pub mod client_auth;
pub mod client_cache;
pub mod crypto;
pub mod discovery;
pub mod error;
pub mod grants;
pub mod introspection;
pub mod issuer;
pub mod keyring;
pub mod params;
pub mod service;
pub mod service_token;
pub mod throttle;
pub mod token;
pub mod verified;

pub use client_auth::ClientCredentials;
pub use error::{AdminError, OAuthError};
pub use introspection::Introspection;
pub use issuer::Issuers;
pub use params::FormParams;
pub use service::{AuthService, TokenResponse, TokenSettings};
