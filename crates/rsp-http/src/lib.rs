//! The HTTP face of the platform: axum routers for the public and operations listeners.
//!
//! # Layout
//! - [`router`]: `fn router(state) -> Router` with the middleware stack built in one place.
//! - [`routes`]: one module per API surface (OAuth endpoints, admin API, operations).
//! - [`extract`]: request parsing at the edge (form bodies, client credentials, JSON, bearer tokens).
//! - [`client_address`]: who the client is, behind the proxies the operator trusts.
//! - [`edge`]: what every request passes through before its route: its context (request id, trace id,
//!   actor) events are stamped with, its metrics, the headers every response carries.
//! - [`context`]: the W3C trace context of a request.
//! - [`error`]: the one place where use-case errors become HTTP responses.
//! - [`metrics`]: request counting and latency per route.

pub mod client_address;
pub mod context;
pub mod edge;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod router;
pub mod routes;

pub use router::{AppState, OpsState, Surfaces, ops_router, router, router_for};
