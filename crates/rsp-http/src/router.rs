//! The routers and their middleware, built in one place.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use axum::Router;
use axum::http::HeaderName;
use rsp_oauth::AuthService;
use rsp_policy::PolicyService;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::edge::EdgeLayer;
use crate::error::ApiError;
use crate::routes;

/// What the public handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub auth: Arc<AuthService>,
    pub policy: Arc<PolicyService>,
}

/// What the operations handlers share.
#[derive(Clone)]
pub struct OpsState {
    pub auth: Arc<AuthService>,
    pub policy: Arc<PolicyService>,
    /// Renders the Prometheus text exposition.
    pub render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
    /// Set when shutdown begins, so readiness fails and load balancers stop sending traffic.
    pub draining: Arc<AtomicBool>,
}

impl std::fmt::Debug for OpsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsState").finish_non_exhaustive()
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Which groups of public routes a process serves: a process of `--role auth` serves no decisions, one of
/// `--role policy` no OAuth endpoints, a worker none at all. Every group keeps its paths whichever process
/// serves it, so a load balancer routes by path prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Surfaces {
    /// Discovery, JWKS and the OAuth endpoints under `/t/{tenant}/`.
    pub oauth: bool,
    /// `/admin/v1`.
    pub admin: bool,
    /// The decision API.
    pub decision: bool,
}

impl Surfaces {
    pub const ALL: Self = Self { oauth: true, admin: true, decision: true };
    pub const NONE: Self = Self { oauth: false, admin: false, decision: false };
}

/// The public listener: OAuth endpoints per tenant, the admin API and the decision API.
pub fn router(state: AppState) -> Router {
    router_for(state, Surfaces::ALL)
}

/// The public listener serving only `surfaces`; paths of the others answer 404 like any unknown path.
pub fn router_for(state: AppState, surfaces: Surfaces) -> Router {
    let mut routes = Router::new();
    if surfaces.oauth {
        routes = routes.merge(routes::oauth::routes()).merge(routes::signin::routes());
    }
    if surfaces.admin {
        routes = routes.merge(routes::admin::routes());
    }
    if surfaces.decision {
        routes = routes.merge(routes::decision::routes());
    }
    let routes = routes
        .fallback(|| async { ApiError::not_found("resource") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(axum::http::StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "method not allowed")
        })
        .with_state(state);
    // Outermost first: give every request an id, trace it under that id, echo the id back, then the edge
    // (`edge.rs`): open its request context (the id, trace id and actor that audit events carry), count
    // it, and mark every response as uncacheable unless the handler said otherwise (RFC 6749 §5.1).
    routes.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            }))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(EdgeLayer),
    )
}

/// The operations listener: metrics and health, kept off the public port.
pub fn ops_router(state: OpsState) -> Router {
    routes::ops::routes().with_state(state)
}
