//! [`DecisionClient`]: asks the platform's policy decision point, with a cache in front, a breaker
//! around it, batching beneath it, and a fallback when it cannot answer.

mod builder;

use std::future::Future;
use std::sync::Arc;

pub use builder::{DecisionClientBuilder, HttpVersion};

use crate::batcher::BatchQueue;
use crate::breaker::{BreakerState, CircuitBreaker};
use crate::cache::DecisionCache;
use crate::model::{AuthorizeRequest, Decision, Effect};
use crate::token::ClientCredentials;
use crate::transport::{MAX_BATCH, Transport};
use crate::{ClientError, metrics, now};

/// What `authorize` answers when the platform cannot.
///
/// `Deny` is the default because a policy enforcement point that opens when its policy service is down
/// turns every outage, including one an attacker causes, into an authorization bypass. Availability
/// matters, but a resource server can choose it knowingly (`Allow`) for resources where that is
/// acceptable; it should not get it by accident.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fallback {
    /// A Deny decision marked [`crate::DecidedBy::Fallback`].
    #[default]
    Deny,
    /// An Allow decision marked as a fallback, but only for outages (breaker open, timeouts, connection
    /// failures, 5xx); refused credentials or a wrong tenant still deny, since they would never heal.
    Allow,
    /// The error itself, for callers that want to decide.
    Error,
}

/// Everything the callers and the batching task share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub tenant: String,
    pub transport: Transport,
    pub breaker: CircuitBreaker,
    pub cache: Option<DecisionCache>,
    pub fallback: Fallback,
}

impl Shared {
    /// Runs `call` if the breaker admits it and reports its outcome. The future is not polled when the
    /// breaker refuses, so an open breaker costs no I/O at all.
    pub async fn guarded<T>(&self, call: impl Future<Output = Result<T, ClientError>>) -> Result<T, ClientError> {
        let admission = self.breaker.try_acquire(now()).map_err(|_| ClientError::BreakerOpen)?;
        let result = call.await;
        let failed = result.as_ref().err().is_some_and(ClientError::counts_as_failure);
        self.breaker.record(admission, failed, now());
        result
    }

    /// Stores a server decision and counts it, or turns an error into the configured fallback.
    fn settle(&self, result: Result<Decision, ClientError>, key: Option<String>) -> Result<Decision, ClientError> {
        match result {
            Ok(decision) => {
                if let (Some(cache), Some(key)) = (&self.cache, key) {
                    cache.insert(key, &decision, now());
                }
                metrics::call("server");
                Ok(decision)
            }
            Err(error) => self.fall_back(error),
        }
    }

    fn fall_back(&self, error: ClientError) -> Result<Decision, ClientError> {
        metrics::failure(error.kind());
        tracing::debug!(error = %error, "no decision from the platform");
        // A malformed request is the caller's bug, not an outage: no policy should paper over it.
        if matches!(error, ClientError::InvalidRequest(_)) || self.fallback == Fallback::Error {
            metrics::call("error");
            return Err(error);
        }
        let effect = if self.fallback == Fallback::Allow && error.is_outage() { Effect::Allow } else { Effect::Deny };
        metrics::call("fallback");
        metrics::fallback(if effect == Effect::Allow { "allow" } else { "deny" });
        Ok(Decision::fallback(effect, error))
    }

    fn cached(&self, request: &AuthorizeRequest) -> (Option<Decision>, Option<String>) {
        let Some(cache) = &self.cache else { return (None, None) };
        let Some(key) = DecisionCache::key(&self.tenant, request) else { return (None, None) };
        let hit = cache.get(&key, now());
        metrics::cache(hit.is_some());
        if hit.is_some() {
            metrics::call("cache");
        }
        (hit, Some(key))
    }
}

/// A policy decision client for one tenant. Cheap to clone; clones share connections, token, breaker,
/// cache and batch queue.
#[derive(Debug, Clone)]
pub struct DecisionClient {
    shared: Arc<Shared>,
    queue: Option<BatchQueue>,
}

impl DecisionClient {
    /// Starts a builder with the defaults: HTTP/2, 2 s per call, breaker at 3 failures for 15 s,
    /// batching at 50 requests or 10 ms, a 5 s cache, fail-closed.
    pub fn builder(
        base_url: impl Into<String>,
        tenant: impl Into<String>,
        credentials: ClientCredentials,
    ) -> DecisionClientBuilder {
        DecisionClientBuilder::new(base_url.into(), tenant.into(), credentials)
    }

    /// Asks whether `request` is allowed. `Ok` holds a server, cache or fallback decision (see
    /// [`Decision::decided_by`]); `Err` holds a malformed request's error, or any error under
    /// [`Fallback::Error`].
    pub async fn authorize(&self, request: AuthorizeRequest) -> Result<Decision, ClientError> {
        let (hit, key) = self.shared.cached(&request);
        if let Some(decision) = hit {
            return Ok(decision);
        }
        let result = match &self.queue {
            Some(queue) => queue.submit(&self.shared, request).await,
            None => self.shared.guarded(self.shared.transport.authorize(&request)).await,
        };
        self.shared.settle(result, key)
    }

    /// Asks many questions at once, bypassing the batching queue: the caller has already gathered them.
    /// Answers come in request order, each settled like [`Self::authorize`]'s.
    pub async fn authorize_all(&self, requests: Vec<AuthorizeRequest>) -> Vec<Result<Decision, ClientError>> {
        let mut answers: Vec<Option<Result<Decision, ClientError>>> = Vec::with_capacity(requests.len());
        let mut misses: Vec<(usize, Option<String>, AuthorizeRequest)> = Vec::new();
        for (index, request) in requests.into_iter().enumerate() {
            match self.shared.cached(&request) {
                (Some(decision), _) => answers.push(Some(Ok(decision))),
                (None, key) => {
                    answers.push(None);
                    misses.push((index, key, request));
                }
            }
        }
        for chunk in misses.chunks(MAX_BATCH) {
            let refs: Vec<&AuthorizeRequest> = chunk.iter().map(|(_, _, request)| request).collect();
            let results = match self.shared.guarded(self.shared.transport.authorize_batch(&refs)).await {
                Ok(results) => results,
                Err(error) => vec![Err(error); chunk.len()],
            };
            for ((index, key, _), result) in chunk.iter().zip(results) {
                if let Some(slot) = answers.get_mut(*index) {
                    *slot = Some(self.shared.settle(result, key.clone()));
                }
            }
        }
        answers.into_iter().map(|answer| answer.unwrap_or(Err(ClientError::Closed))).collect()
    }

    /// The breaker's state: whether calls currently reach the platform.
    pub fn state(&self) -> BreakerState {
        self.shared.breaker.state()
    }
}
