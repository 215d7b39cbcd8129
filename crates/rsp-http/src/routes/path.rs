//! Path parameters with RFC-shaped rejections.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use rsp_core::TenantId;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Like `axum::extract::Path`, but a malformed path is a JSON 404 rather than axum's plain text.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathParams(value))
            .map_err(|_| ApiError::not_found("resource"))
    }
}

/// The `{tenant}` segment of an OAuth route; an id that cannot exist is an unknown tenant.
#[derive(Debug)]
pub struct TenantPath(pub TenantId);

impl<S: Send + Sync> FromRequestParts<S> for TenantPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let PathParams(raw) = PathParams::<String>::from_request_parts(parts, state).await?;
        TenantId::parse(raw).map(TenantPath).map_err(|_| ApiError::from(rsp_oauth::OAuthError::UnknownTenant))
    }
}
