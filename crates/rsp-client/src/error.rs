//! The crate's errors: [`ClientError`] for talking to the platform, [`ValidationError`] for refusing a
//! token. They are separate because their audiences differ: the first feeds the fallback policy and the
//! breaker, the second is the answer a resource server gives (as a 401) to a caller's bad token.

/// Why a call to the platform did not produce a decision.
///
/// `Clone` because one failed batch call is the answer of every caller in it; that is also why causes are
/// kept as text rather than as the transport's error values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request itself (400 `invalid_request`): the caller's bug, never retried.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The circuit breaker is open: the call was not attempted.
    #[error("circuit breaker is open")]
    BreakerOpen,
    /// No connection could be made or it broke mid-call.
    #[error("platform unavailable: {0}")]
    Unavailable(String),
    /// The call did not finish within the per-call timeout.
    #[error("platform call timed out")]
    Timeout,
    /// A 5xx, or a 429 asking us to back off.
    #[error("platform answered with status {0}")]
    Server(u16),
    /// An unexpected 4xx: most likely a wrong base URL or tenant.
    #[error("platform answered with unexpected status {0}")]
    Status(u16),
    /// The access token was refused even after fetching a fresh one.
    #[error("access token refused by the platform")]
    Unauthorized,
    /// The token lacks what the endpoint demands (RFC 6750 `insufficient_scope`).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The token endpoint refused the client credentials or the scope.
    #[error("token request refused: {0}")]
    Credentials(String),
    /// The platform answered 200 with something that does not follow the contract.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The builder was given something unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The background batching task is gone (its runtime shut down).
    #[error("decision client is shut down")]
    Closed,
}

impl ClientError {
    /// Whether this error says the platform is unhealthy, so the breaker should count it. Client errors
    /// (a malformed request, refused credentials) say nothing about the platform's health; counting them
    /// would let one buggy caller cut off every other.
    pub fn counts_as_failure(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout | Self::Server(_) | Self::Protocol(_))
    }

    /// Whether this error is an outage rather than a misconfiguration. Only outages may be answered with
    /// [`crate::Fallback::Allow`]: wrong credentials or a wrong tenant must never open every door.
    pub fn is_outage(&self) -> bool {
        self.counts_as_failure() || matches!(self, Self::BreakerOpen | Self::Closed)
    }

    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::BreakerOpen => "breaker_open",
            Self::Unavailable(_) => "unavailable",
            Self::Timeout => "timeout",
            Self::Server(_) => "server",
            Self::Status(_) => "status",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::Credentials(_) => "credentials",
            Self::Protocol(_) => "protocol",
            Self::Config(_) => "config",
            Self::Closed => "closed",
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_decode() {
            Self::Protocol(error.to_string())
        } else {
            Self::Unavailable(error.to_string())
        }
    }
}

/// Why a presented access token is refused (RFC 9068 §4). A resource server answers all of them with
/// 401 `invalid_token`, except [`ValidationError::JwksUnavailable`], which is its own outage (503).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("malformed token")]
    Malformed,
    #[error("not an access token (typ {0:?})")]
    WrongType(Option<String>),
    #[error("algorithm {0} is not allowed")]
    AlgorithmNotAllowed(String),
    #[error("no published key with this kid")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("bad signature")]
    BadSignature,
    #[error("claims missing or malformed")]
    InvalidClaims,
    #[error("issued by another issuer")]
    WrongIssuer,
    #[error("issued for another audience")]
    WrongAudience,
    #[error("expired")]
    Expired,
    #[error("issued in the future")]
    IssuedInFuture,
    #[error("signing keys unavailable: {0}")]
    JwksUnavailable(String),
}
