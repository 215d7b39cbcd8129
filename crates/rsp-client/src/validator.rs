//! [`TokenValidator`]: checks the platform's access tokens locally (RFC 9068 §4), so a resource server
//! needs no round trip per request; only the issuer's JWKS is fetched, once and then now and then.

mod jwks;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use url::Url;

use crate::transport::endpoint;
use crate::{ClientError, ValidationError, metrics};
use jwks::{KeySet, PublicKey};

/// Longer than any token the platform issues; refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The current time in Unix seconds. Injectable so tests decide what "now" is.
pub type UnixClock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The claims of a valid access token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    /// Always a list here; the platform sends one string, RFC 7519 allows either.
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub client_id: String,
    #[serde(default)]
    pub scope: Option<String>,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.as_deref().unwrap_or_default().split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, wanted: &str) -> bool {
        self.scopes().any(|s| s == wanted)
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Builds a [`TokenValidator`].
pub struct TokenValidatorBuilder {
    issuer: String,
    audience: String,
    leeway: Duration,
    min_refetch_interval: Duration,
    refresh_interval: Duration,
    timeout: Duration,
    clock: UnixClock,
}

impl fmt::Debug for TokenValidatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidatorBuilder").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl TokenValidatorBuilder {
    /// Allowed clock skew for `exp` and `iat` (default 30 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The least time between two JWKS fetches caused by unknown `kid`s (default 30 s), so tokens with
    /// made-up `kid`s cannot make us hammer the issuer.
    #[must_use]
    pub fn min_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_refetch_interval = interval;
        self
    }

    /// How old the JWKS may get before it is fetched again (default 5 min), so retired keys stop
    /// verifying.
    #[must_use]
    pub fn refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// The limit on a JWKS fetch (default 2 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    #[must_use]
    pub fn clock(mut self, clock: impl Fn() -> i64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub fn build(self) -> Result<TokenValidator, ClientError> {
        let issuer_url = Url::parse(&self.issuer).map_err(|e| ClientError::Config(format!("issuer: {e}")))?;
        let jwks_url = endpoint(&issuer_url, &["jwks.json"])?;
        let http =
            reqwest::Client::builder().timeout(self.timeout).build().map_err(|e| ClientError::Config(e.to_string()))?;
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Ok(TokenValidator {
            inner: Arc::new(Inner {
                issuer: self.issuer,
                audience: self.audience,
                jwks_url,
                http,
                leeway: secs(self.leeway),
                min_refetch: secs(self.min_refetch_interval),
                refresh: secs(self.refresh_interval),
                clock: self.clock,
                published: RwLock::new(Arc::new(Published::default())),
                fetches: tokio::sync::Mutex::new(FetchState::default()),
            }),
        })
    }
}

/// The keys last fetched, and when.
#[derive(Debug, Default)]
struct Published {
    keys: KeySet,
    fetched_at: Option<i64>,
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<i64>,
    /// The outcome of the last attempt, repeated to callers while the next one is rate-limited.
    last_error: Option<String>,
}

struct Inner {
    issuer: String,
    audience: String,
    jwks_url: Url,
    http: reqwest::Client,
    leeway: i64,
    min_refetch: i64,
    refresh: i64,
    clock: UnixClock,
    /// Swapped whole on refresh, so validations never wait on a fetch that another one started.
    published: RwLock<Arc<Published>>,
    /// Held during a fetch: concurrent validations needing fresh keys share one fetch.
    fetches: tokio::sync::Mutex<FetchState>,
}

/// Validates access tokens of one issuer for one audience. Cheap to clone.
#[derive(Clone)]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

impl fmt::Debug for TokenValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenValidator")
            .field("issuer", &self.inner.issuer)
            .field("audience", &self.inner.audience)
            .finish_non_exhaustive()
    }
}

impl TokenValidator {
    /// A builder for tokens issued by `issuer` (`{base}/t/{tenant}`, exactly as in the tokens' `iss`)
    /// for `audience`. Keys come from `{issuer}/jwks.json`.
    pub fn builder(issuer: impl Into<String>, audience: impl Into<String>) -> TokenValidatorBuilder {
        TokenValidatorBuilder {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            min_refetch_interval: Duration::from_secs(30),
            refresh_interval: Duration::from_secs(300),
            timeout: Duration::from_secs(2),
            clock: Arc::new(system_unix_time),
        }
    }

    /// Checks `token` per RFC 9068 §4 and returns its claims.
    pub async fn validate(&self, token: &str) -> Result<AccessTokenClaims, ValidationError> {
        let result = self.check(token).await;
        metrics::validation(result.is_ok());
        result
    }

    async fn check(&self, token: &str) -> Result<AccessTokenClaims, ValidationError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(ValidationError::Malformed);
        }
        let header = jwks::read_header(token)?;
        let typ_ok = header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt"));
        if !typ_ok {
            return Err(ValidationError::WrongType(header.typ));
        }
        let alg = jwks::allowed_algorithm(&header.alg)?;
        let kid = header.kid.ok_or(ValidationError::UnknownKey)?;
        let published = self.keys_with(&kid).await?;
        let key = published.keys.get(&kid).ok_or(ValidationError::UnknownKey)?;
        if key.alg != alg {
            return Err(ValidationError::AlgorithmMismatch);
        }
        let claims = verify(token, key)?;
        self.check_claims(claims)
    }

    fn check_claims(&self, claims: AccessTokenClaims) -> Result<AccessTokenClaims, ValidationError> {
        let inner = &self.inner;
        if claims.iss != inner.issuer {
            return Err(ValidationError::WrongIssuer);
        }
        if !claims.aud.iter().any(|aud| *aud == inner.audience) {
            return Err(ValidationError::WrongAudience);
        }
        let now = (inner.clock)();
        if claims.exp <= now.saturating_sub(inner.leeway) {
            return Err(ValidationError::Expired);
        }
        if claims.iat > now.saturating_add(inner.leeway) {
            return Err(ValidationError::IssuedInFuture);
        }
        Ok(claims)
    }

    /// The keys, fetched first if they are older than the refresh interval or lack `kid`.
    async fn keys_with(&self, kid: &str) -> Result<Arc<Published>, ValidationError> {
        let now = (self.inner.clock)();
        let current = self.published();
        let stale = current.fetched_at.is_none_or(|at| now.saturating_sub(at) >= self.inner.refresh);
        if (stale || !current.keys.contains_key(kid))
            && let Err(error) = self.refetch(now).await
            // Keep the keys we have: a short JWKS outage must not fail tokens signed with known keys.
            && current.keys.is_empty()
        {
            return Err(ValidationError::JwksUnavailable(error));
        }
        Ok(self.published())
    }

    /// Fetches the JWKS unless one was attempted within the minimum interval; then the last attempt's
    /// outcome stands.
    async fn refetch(&self, now: i64) -> Result<(), String> {
        let mut state = self.inner.fetches.lock().await;
        if state.last_attempt.is_some_and(|at| now.saturating_sub(at) < self.inner.min_refetch) {
            return state.last_error.clone().map_or(Ok(()), Err);
        }
        state.last_attempt = Some(now);
        let result = jwks::fetch(&self.inner.http, &self.inner.jwks_url).await;
        metrics::jwks_fetch(result.is_ok());
        match result {
            Ok(keys) => {
                tracing::debug!(keys = keys.len(), "JWKS fetched");
                let published = Arc::new(Published { keys, fetched_at: Some(now) });
                *self.inner.published.write().unwrap_or_else(PoisonError::into_inner) = published;
                state.last_error = None;
                Ok(())
            }
            Err(error) => {
                tracing::warn!(%error, url = %self.inner.jwks_url, "JWKS fetch failed");
                state.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// A poisoned lock still holds a whole key set (it is only ever replaced), so it is safe to read.
    fn published(&self) -> Arc<Published> {
        Arc::clone(&self.inner.published.read().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The signature check, with every time and audience rule switched off: those are checked by
/// `check_claims` against the injected clock, with errors of our own.
fn verify(token: &str, key: &PublicKey) -> Result<AccessTokenClaims, ValidationError> {
    let mut validation = jsonwebtoken::Validation::new(key.alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<AccessTokenClaims>(token, &key.key, &validation).map(|data| data.claims).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => ValidationError::BadSignature,
            ErrorKind::Json(_) | ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                ValidationError::InvalidClaims
            }
            _ => ValidationError::Malformed,
        }
    })
}

/// The wall clock, used only when no clock was injected.
fn system_unix_time() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}
