//! The OAuth endpoints of each tenant, under `/t/{tenant}`: discovery, JWKS, token, introspection,
//! revocation and userinfo.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::path::TenantPath;
use crate::error::ApiError;
use crate::extract::{BearerToken, OAuthForm};
use crate::router::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/.well-known/openid-configuration", get(metadata))
        .route("/t/{tenant}/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/oauth-authorization-server/t/{tenant}", get(metadata))
        .route("/t/{tenant}/jwks.json", get(jwks))
        .route("/t/{tenant}/oauth2/token", post(token))
        .route("/t/{tenant}/oauth2/introspect", post(introspect))
        .route("/t/{tenant}/oauth2/revoke", post(revoke))
        .route("/t/{tenant}/oauth2/userinfo", get(userinfo).post(userinfo))
}

/// Public documents may be cached briefly; JWKS for less time than discovery, so that verifiers see a
/// rotated key soon (they also refetch on an unknown `kid`).
fn cacheable(mut response: Response, max_age_secs: u32) -> Response {
    if let Ok(value) = HeaderValue::from_str(&format!("public, max-age={max_age_secs}")) {
        response.headers_mut().insert(header::CACHE_CONTROL, value);
    }
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

async fn metadata(State(state): State<AppState>, TenantPath(tenant): TenantPath) -> Result<Response, ApiError> {
    let document = state.auth.metadata(&tenant).await?;
    Ok(cacheable(axum::Json(document).into_response(), 300))
}

async fn jwks(State(state): State<AppState>, TenantPath(tenant): TenantPath) -> Result<Response, ApiError> {
    let body = state.auth.jwks(&tenant).await?;
    let response = ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response();
    Ok(cacheable(response, 60))
}

async fn token(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let (response, grant) = state.auth.token(&tenant, &form.credentials, &form.params).await?;
    crate::metrics::count(crate::metrics::TOKENS_ISSUED, "grant_type", grant, 1);
    Ok(axum::Json(response).into_response())
}

async fn introspect(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    let answer = state.auth.introspection_endpoint(&tenant, &form.credentials, &form.params).await?;
    Ok(axum::Json(answer).into_response())
}

async fn revoke(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    form: OAuthForm,
) -> Result<Response, ApiError> {
    state.auth.revocation_endpoint(&tenant, &form.credentials, &form.params).await?;
    Ok(().into_response())
}

/// OIDC Core §5.3: GET or POST with the access token in the `Authorization` header (RFC 6750 §2.1; the
/// form and query methods are not offered). Errors are 401/403 with a `WWW-Authenticate: Bearer` challenge.
async fn userinfo(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    BearerToken(token): BearerToken,
) -> Result<Response, ApiError> {
    let claims = state.auth.userinfo(&tenant, token.expose()).await?;
    Ok(axum::Json(claims).into_response())
}

#[cfg(test)]
mod tests;
