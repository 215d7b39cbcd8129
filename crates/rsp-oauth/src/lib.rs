//! The OAuth 2.0 / OpenID Connect authorization server as plain use cases: no HTTP, no SQL.
//!
//! # Layout
//! - [`service`]: `AuthService`, the entry point, and the token endpoint's `match` on `grant_type`.
//! - [`grants`]: one module per grant type (client credentials, authorization code, refresh token).
//! - [`authorize`]: the authorization endpoint's validation and code issuance; [`pkce`]: RFC 7636 S256;
//!   [`sign_in`]: the signed-in user the flow consumes; [`id_token`]: OIDC ID tokens; [`userinfo`]: the
//!   UserInfo use case over the [`UserClaimsSource`] port.
//! - [`client_auth`]: client authentication; [`throttle`]: brute-force limits on it; [`client_cache`]:
//!   registered clients read through the cache port.
//! - [`audience`]: which scopes and which `aud` a token gets (RFC 8707, RFC 9068 §3).
//! - [`token`]: minting and verifying JWT access tokens (RFC 9068).
//! - [`introspection`]: RFC 7662 introspection and RFC 7009 revocation; [`revocation`]: revocation state
//!   read through the cache port.
//! - [`bearer`]: bearer checks for the platform's own APIs; [`verified`]: their verified-token cache.
//! - [`discovery`]: RFC 8414 / OIDC discovery metadata.
//! - [`keyring`]: each tenant's keys, opened and parsed once; [`crypto`]: aws-lc-rs primitives.
//! - [`invalidation`]: the task that applies the cache's invalidation notices (from every replica) to
//!   the key ring and the verified tokens.
//! - [`events`]: `token.issued` and sampled `token.introspected` events for the event sink.
//! - [`sessions`]: browser sessions, parked authorization requests and CSRF tokens for the sign-in pages;
//!   [`account_return`]: the way back to an account page through the login page.
//! - [`logout`]: RP-initiated logout: validating the request, ending the session.
//! - [`users`]: end users: Argon2id passwords on a bounded pool, the throttled password login, user admin.
//! - [`mfa`]: the TOTP second factor: RFC 6238, enrolment, recovery codes, the login's second step.
//! - [`admin`]: tenant, client and key management; [`audit`]: reading the audit trail.
//! - [`params`]: RFC 6749 form-parameter rules; [`issuer`]: every URL the server emits.
//!
//! # Caches and replicas
//! Clients and revocation state go through the [`Cache`](rsp_core::cache::Cache) port
//! ([`AuthService::with_cache`]; a private L1-only cache by default). Parsed key sets and verified tokens
//! never leave the process; they follow the port's invalidation notices, which
//! [`AuthService::spawn_invalidation_listener`] applies. Every write invalidates after the store write,
//! and also drops this replica's own in-process state before returning, so a change is seen at once
//! here and within the invalidation delay on other replicas.

pub mod account_return;
pub mod admin;
pub mod audience;
pub mod audit;
pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod client_cache;
pub mod crypto;
pub mod discovery;
pub mod error;
pub mod events;
pub mod grants;
pub mod id_token;
pub mod introspection;
pub mod invalidation;
pub mod issuer;
pub mod keyring;
pub mod logout;
pub mod mfa;
pub mod params;
pub mod pkce;
pub mod revocation;
pub mod service;
pub mod service_token;
pub mod sessions;
pub mod sign_in;
pub mod throttle;
pub mod token;
pub mod userinfo;
pub mod users;
pub mod verified;

pub use client_auth::ClientCredentials;
pub use error::{AdminError, OAuthError};
pub use introspection::Introspection;
pub use issuer::Issuers;
pub use params::FormParams;
pub use service::{AuthService, SettingsError, TokenResponse, TokenSettings};
pub use sign_in::SignedInUser;
pub use userinfo::{NoUsers, UserClaimsSource};
