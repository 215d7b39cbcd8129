//! Every error response is built here. OAuth endpoints and the admin API alike answer in the RFC 6749
//! §5.2 shape `{"error": …, "error_description": …}`; 5xx bodies are generic and the cause goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rsp_oauth::OAuthError;
use rsp_oauth::bearer::BearerError;
use rsp_oauth::error::AdminError;
use rsp_policy::{Diagnostic, PolicyServiceError};
use serde_json::json;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
    challenge: Option<String>,
    retry_after: Option<u64>,
    /// Cedar diagnostics of a rejected policy write (policy id, line, column, message).
    diagnostics: Option<Vec<Diagnostic>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self { status, code, description: description.into(), challenge: None, retry_after: None, diagnostics: None }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the server could not complete the request")
    }

    fn with_challenge(mut self, challenge: String) -> Self {
        self.challenge = Some(challenge);
        self
    }
}

impl From<OAuthError> for ApiError {
    fn from(error: OAuthError) -> Self {
        let message = error.to_string();
        match error {
            OAuthError::InvalidRequest(_) => Self::invalid_request(message),
            OAuthError::InvalidClient { via_basic } => {
                let base = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", message);
                if via_basic { base.with_challenge(r#"Basic realm="rsp", charset="UTF-8""#.into()) } else { base }
            }
            OAuthError::TooManyAttempts { retry_after_secs } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "invalid_client", message)
            },
            OAuthError::InvalidGrant(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_grant", message),
            OAuthError::UnauthorizedClient(_) => Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", message),
            OAuthError::UnsupportedGrantType => Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", message),
            OAuthError::InvalidScope(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_scope", message),
            OAuthError::InvalidTarget(_) => Self::new(StatusCode::BAD_REQUEST, "invalid_target", message),
            OAuthError::UnknownTenant => Self::new(StatusCode::NOT_FOUND, "invalid_request", "unknown tenant"),
            OAuthError::Internal(_) => Self::internal(&error),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match &error {
            AdminError::Invalid(message) => Self::invalid_request(message.clone()),
            AdminError::NotFound(what) => Self::not_found(what),
            AdminError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message.clone()),
            AdminError::Internal(_) => Self::internal(&error),
        }
    }
}

impl From<BearerError> for ApiError {
    fn from(error: BearerError) -> Self {
        match error {
            BearerError::InvalidToken => Self::new(StatusCode::UNAUTHORIZED, "invalid_token", error.to_string())
                .with_challenge(r#"Bearer realm="rsp", error="invalid_token""#.into()),
            BearerError::InsufficientScope(scope) => {
                Self::new(StatusCode::FORBIDDEN, "insufficient_scope", error.to_string())
                    .with_challenge(format!(r#"Bearer realm="rsp", error="insufficient_scope", scope="{scope}""#))
            }
            BearerError::Internal(inner) => inner.into(),
        }
    }
}

impl From<PolicyServiceError> for ApiError {
    fn from(error: PolicyServiceError) -> Self {
        match error {
            PolicyServiceError::UnknownTenant => Self::not_found("tenant"),
            PolicyServiceError::InvalidPolicies(diagnostics) => Self {
                diagnostics: Some(diagnostics),
                ..Self::invalid_request("the policy set is invalid; see diagnostics")
            },
            PolicyServiceError::InvalidEntities(message) => {
                Self::invalid_request(format!("invalid entities: {message}"))
            }
            PolicyServiceError::InvalidRequest(error) => Self::invalid_request(error.to_string()),
            PolicyServiceError::NoSuchVersion(version) => Self::not_found(&format!("policy version {version}")),
            PolicyServiceError::Internal(_) => Self::internal(&error),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.code, "error_description": rfc6749_text(&self.description)});
        if let (Some(diagnostics), Some(object)) = (self.diagnostics, body.as_object_mut()) {
            object.insert("diagnostics".into(), json!(diagnostics));
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// RFC 6749 §5.2 limits `error_description` to `%x20-21 / %x23-5B / %x5D-7E`: quotes and backslashes
/// become apostrophes and anything else outside the set a question mark.
fn rfc6749_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_stay_in_the_rfc_6749_character_set() {
        assert_eq!(rfc6749_text("scope \"a\\b\" é\n"), "scope 'a'b' ??");
    }
}
