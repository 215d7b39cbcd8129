//! The errors of the OAuth and admin use cases. `rsp-http` turns them into responses in one place.

use rsp_core::StoreError;
use rsp_core::cache::CacheError;

/// An RFC 6749 §5.2 error (plus the RFC 7009 and RFC 8707 codes), or an internal failure.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Client authentication failed. `via_basic` tells the HTTP layer to answer 401 with a
    /// `WWW-Authenticate: Basic` challenge (RFC 6749 §5.2).
    #[error("client authentication failed")]
    InvalidClient { via_basic: bool },
    #[error("too many failed client authentications; retry later")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("the grant type is not supported")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("unknown tenant")]
    UnknownTenant,
    /// Anything that is not the client's fault; the message goes to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
}

impl OAuthError {
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::InvalidRequest(message.into())
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// The cache refuses only keys it cannot hold, which the use cases never build: a bug, not the caller's.
impl From<CacheError> for OAuthError {
    fn from(error: CacheError) -> Self {
        Self::Internal(error.to_string())
    }
}

/// Errors of the admin API's use cases.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for AdminError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound("resource"),
            StoreError::Conflict(what) => Self::Conflict(what),
            StoreError::Unavailable(message) => Self::Internal(message),
        }
    }
}

impl From<OAuthError> for AdminError {
    fn from(error: OAuthError) -> Self {
        match error {
            OAuthError::UnknownTenant => Self::NotFound("tenant"),
            other => Self::Internal(other.to_string()),
        }
    }
}
