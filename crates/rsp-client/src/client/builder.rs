//! [`DecisionClientBuilder`]: every knob of the decision client, with defaults fit for a resource server
//! next to the platform in one data centre.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::{DecisionClient, Fallback, Shared};
use crate::batcher::{BatchConfig, BatchQueue};
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::cache::{CacheConfig, DecisionCache};
use crate::token::ClientCredentials;
use crate::transport::Transport;
use crate::{ClientError, now};

/// The scope the decision endpoints demand.
pub const AUTHORIZE_SCOPE: &str = "rsp:authorize";

/// Which HTTP version to speak.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/2: one connection carries every concurrent call. Over `http://` it is spoken with prior
    /// knowledge (h2c, as the platform's server accepts); over `https://` it is negotiated by ALPN.
    #[default]
    Http2,
    /// HTTP/1.1, for proxies in between that do not speak HTTP/2.
    Http1,
}

/// Builds a [`DecisionClient`]; see [`DecisionClient::builder`] for the defaults.
#[derive(Debug)]
pub struct DecisionClientBuilder {
    base_url: String,
    tenant: String,
    credentials: ClientCredentials,
    scope: String,
    timeout: Duration,
    connect_timeout: Duration,
    http_version: HttpVersion,
    breaker: BreakerConfig,
    fallback: Fallback,
    batch: Option<BatchConfig>,
    cache: Option<CacheConfig>,
}

impl DecisionClientBuilder {
    pub(super) fn new(base_url: String, tenant: String, credentials: ClientCredentials) -> Self {
        Self {
            base_url,
            tenant,
            credentials,
            scope: AUTHORIZE_SCOPE.to_owned(),
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_millis(500),
            http_version: HttpVersion::default(),
            breaker: BreakerConfig::default(),
            fallback: Fallback::default(),
            batch: Some(BatchConfig::default()),
            cache: Some(CacheConfig::default()),
        }
    }

    /// The scope requested with the token (default `rsp:authorize`).
    #[must_use]
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = scope.into();
        self
    }

    /// The limit on each HTTP call, token requests included (default 2 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The limit on opening a connection (default 500 ms).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    #[must_use]
    pub fn http_version(mut self, version: HttpVersion) -> Self {
        self.http_version = version;
        self
    }

    /// Consecutive failures that open the breaker (default 3).
    #[must_use]
    pub fn failure_threshold(mut self, failures: u32) -> Self {
        self.breaker.failure_threshold = failures;
        self
    }

    /// How long the breaker stays open before a probe (default 15 s).
    #[must_use]
    pub fn open_for(mut self, period: Duration) -> Self {
        self.breaker.open_for = period;
        self
    }

    /// The answer when the platform cannot give one (default [`Fallback::Deny`]).
    #[must_use]
    pub fn fallback(mut self, fallback: Fallback) -> Self {
        self.fallback = fallback;
        self
    }

    /// Micro-batching settings, or `None` to send each call on its own.
    #[must_use]
    pub fn batching(mut self, batch: Option<BatchConfig>) -> Self {
        self.batch = batch;
        self
    }

    /// Decision cache settings, or `None` for no cache.
    #[must_use]
    pub fn cache(mut self, cache: Option<CacheConfig>) -> Self {
        self.cache = cache;
        self
    }

    /// Builds the client. Must run inside a Tokio runtime when batching is on: the batching task is
    /// spawned on it.
    pub fn build(self) -> Result<DecisionClient, ClientError> {
        let base = Url::parse(&self.base_url).map_err(|e| ClientError::Config(format!("base URL: {e}")))?;
        if self.tenant.is_empty() {
            return Err(ClientError::Config("empty tenant".into()));
        }
        let http = http_client(&base, self.timeout, self.connect_timeout, self.http_version)?;
        let shared = Arc::new(Shared {
            transport: Transport::new(http, &base, &self.tenant, self.credentials, self.scope)?,
            tenant: self.tenant,
            breaker: CircuitBreaker::new(self.breaker, now()),
            cache: self.cache.map(DecisionCache::new),
            fallback: self.fallback,
        });
        let queue = match self.batch {
            Some(config) => {
                let runtime = tokio::runtime::Handle::try_current()
                    .map_err(|_| ClientError::Config("batching needs a Tokio runtime to build in".into()))?;
                Some(BatchQueue::spawn(Arc::clone(&shared), config, &runtime))
            }
            None => None,
        };
        Ok(DecisionClient { shared, queue })
    }
}

/// The HTTP client: pooled keep-alive connections, so steady traffic never pays for a handshake.
fn http_client(
    base: &Url,
    timeout: Duration,
    connect_timeout: Duration,
    version: HttpVersion,
) -> Result<reqwest::Client, ClientError> {
    let builder = reqwest::Client::builder()
        .user_agent(concat!("rsp-client/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .connect_timeout(connect_timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true);
    let builder = match version {
        HttpVersion::Http2 => {
            // Pings keep an idle connection open through NATs and find a dead one before a call does.
            let builder = builder
                .http2_keep_alive_interval(Duration::from_secs(30))
                .http2_keep_alive_timeout(Duration::from_secs(10))
                .http2_keep_alive_while_idle(true);
            if base.scheme() == "http" { builder.http2_prior_knowledge() } else { builder }
        }
        HttpVersion::Http1 => builder.http1_only(),
    };
    builder.build().map_err(|e| ClientError::Config(e.to_string()))
}
