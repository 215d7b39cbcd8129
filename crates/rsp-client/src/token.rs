//! The client's own access token: fetched with the client credentials grant, kept, and refreshed shortly
//! before it expires or when the platform says it is no longer valid.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use url::Url;

use crate::model::WireError;
use crate::{ClientError, metrics, now};

/// Used when the token endpoint omits `expires_in` (RFC 6749 §5.1 only recommends it).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
/// Longer lifetimes are treated as this, so no `expires_in` can overflow the clock.
const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The most a token is refreshed ahead of its expiry; shorter lifetimes refresh at 90 % of it.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Where the client's access token comes from: usually a client id and secret for the token endpoint;
/// or, for a caller that can issue its own tokens (the platform's auth service calling its policy service),
/// a [`TokenProvider`]. `Debug` never prints a secret.
#[derive(Clone)]
pub struct ClientCredentials {
    id: String,
    secret: String,
    provider: Option<Arc<dyn TokenProvider>>,
}

/// Supplies access tokens in place of the client credentials grant. Called when the client has no token
/// or its token is about to expire or was refused, never per request.
pub trait TokenProvider: Send + Sync {
    /// A bearer token with the decision scope and its lifetime.
    fn token(&self) -> ProvidedToken<'_>;
}

/// What [`TokenProvider::token`] returns: a future of the token and its lifetime.
pub type ProvidedToken<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(String, Duration), ClientError>> + Send + 'a>>;

impl ClientCredentials {
    pub fn new(id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self { id: id.into(), secret: secret.into(), provider: None }
    }

    /// Tokens from `provider` instead of the token endpoint; `id` names the caller in logs.
    pub fn provided(id: impl Into<String>, provider: Arc<dyn TokenProvider>) -> Self {
        Self { id: id.into(), secret: String::new(), provider: Some(provider) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCredentials").field("id", &self.id).field("secret", &"[redacted]").finish()
    }
}

/// An access token as presented in `Authorization: Bearer`. `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct BearerToken(Arc<str>);

impl BearerToken {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

#[derive(Debug, Clone)]
struct CachedToken {
    token: BearerToken,
    refresh_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    token_type: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Holds the current token. The async mutex makes a refresh single-flight: callers arriving during one
/// wait for it instead of each asking the token endpoint.
#[derive(Debug)]
pub(crate) struct TokenSource {
    http: reqwest::Client,
    url: Url,
    credentials: ClientCredentials,
    scope: String,
    current: tokio::sync::Mutex<Option<CachedToken>>,
}

impl TokenSource {
    pub fn new(http: reqwest::Client, url: Url, credentials: ClientCredentials, scope: String) -> Self {
        Self { http, url, credentials, scope, current: tokio::sync::Mutex::new(None) }
    }

    /// The current token, fetching a new one if there is none or it is about to expire.
    pub async fn get(&self) -> Result<BearerToken, ClientError> {
        let mut current = self.current.lock().await;
        if let Some(cached) = current.as_ref().filter(|cached| now() < cached.refresh_at) {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *current = Some(fresh);
        Ok(token)
    }

    /// Forgets `rejected` so the next `get` fetches a new token; a no-op if another caller already did,
    /// so a burst of 401s costs one refresh.
    pub async fn invalidate(&self, rejected: &BearerToken) {
        let mut current = self.current.lock().await;
        if current.as_ref().is_some_and(|cached| &cached.token == rejected) {
            *current = None;
        }
    }

    #[tracing::instrument(skip_all, fields(client_id = %self.credentials.id))]
    async fn fetch(&self) -> Result<CachedToken, ClientError> {
        metrics::token_refresh();
        if let Some(provider) = &self.credentials.provider {
            let (token, lifetime) = provider.token().await?;
            let lifetime = lifetime.min(MAX_LIFETIME);
            let margin = (lifetime / 10).min(MAX_REFRESH_MARGIN);
            return Ok(CachedToken { token: BearerToken(token.into()), refresh_at: now() + lifetime - margin });
        }
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before going into the Basic header.
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let response = self
            .http
            .post(self.url.clone())
            .basic_auth(encode(&self.credentials.id), Some(encode(&self.credentials.secret)))
            .form(&[("grant_type", "client_credentials"), ("scope", self.scope.as_str())])
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            let body: TokenResponse = response.json().await?;
            if !body.token_type.eq_ignore_ascii_case("bearer") {
                return Err(ClientError::Protocol(format!("token type {} is not Bearer", body.token_type)));
            }
            let lifetime = body.expires_in.map_or(DEFAULT_LIFETIME, Duration::from_secs).min(MAX_LIFETIME);
            let margin = (lifetime / 10).min(MAX_REFRESH_MARGIN);
            let token = BearerToken(body.access_token.into());
            return Ok(CachedToken { token, refresh_at: now() + lifetime - margin });
        }
        let code = status.as_u16();
        match code {
            400 | 401 => {
                let described =
                    response.json::<WireError>().await.map_or_else(|_| status.to_string(), |e| e.describe());
                tracing::warn!(status = code, error = %described, "token request refused");
                Err(ClientError::Credentials(described))
            }
            429 | 500..=599 => Err(ClientError::Server(code)),
            _ => Err(ClientError::Status(code)),
        }
    }
}
