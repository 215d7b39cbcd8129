//! Micro-batching: concurrent `authorize` calls are queued for a moment and sent as one batch call, so a
//! burst of N checks costs one round trip instead of N.
//!
//! One background task gathers requests until the batch is full or the oldest has waited `max_delay`,
//! then hands the batch to a task of its own and goes back to gathering, so a slow batch never holds up
//! the next one (HTTP/2 carries them side by side on one connection).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::client::Shared;
use crate::model::{AuthorizeRequest, Decision};
use crate::transport::MAX_BATCH;
use crate::{ClientError, metrics, now};

/// When a batch is sent: at `max_size` requests or `max_delay` after its first, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Clamped to 1..=1000, the batch endpoint's limit.
    pub max_size: usize,
    /// The most latency batching adds to a call.
    pub max_delay: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { max_size: 50, max_delay: Duration::from_millis(10) }
    }
}

/// Queued calls beyond this make callers wait to enqueue: backpressure instead of unbounded memory.
const QUEUE_CAPACITY: usize = 10_000;

type Reply = oneshot::Sender<Result<Decision, ClientError>>;

#[derive(Debug)]
struct Pending {
    request: AuthorizeRequest,
    reply: Reply,
}

/// The callers' side of the queue. The background task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct BatchQueue {
    tx: mpsc::Sender<Pending>,
}

impl BatchQueue {
    /// Starts the gathering task on `runtime`.
    pub fn spawn(shared: Arc<Shared>, config: BatchConfig, runtime: &tokio::runtime::Handle) -> Self {
        let config = BatchConfig { max_size: config.max_size.clamp(1, MAX_BATCH), ..config };
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        runtime.spawn(gather(shared, rx, config));
        Self { tx }
    }

    /// Queues `request` and waits for its own answer. Refused at once, without queueing, while the
    /// breaker is open.
    pub async fn submit(&self, shared: &Shared, request: AuthorizeRequest) -> Result<Decision, ClientError> {
        if shared.breaker.rejects(now()) {
            return Err(ClientError::BreakerOpen);
        }
        let (reply, answer) = oneshot::channel();
        self.tx.send(Pending { request, reply }).await.map_err(|_| ClientError::Closed)?;
        answer.await.map_err(|_| ClientError::Closed)?
    }
}

async fn gather(shared: Arc<Shared>, mut rx: mpsc::Receiver<Pending>, config: BatchConfig) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + config.max_delay;
        let mut batch = Vec::with_capacity(config.max_size);
        batch.push(first);
        while batch.len() < config.max_size {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(pending)) => batch.push(pending),
                Ok(None) | Err(_) => break,
            }
        }
        tokio::spawn(flush(Arc::clone(&shared), batch));
    }
}

/// Sends one batch and gives each caller its own result, matched by position.
async fn flush(shared: Arc<Shared>, batch: Vec<Pending>) {
    metrics::batch(batch.len());
    let (requests, replies): (Vec<AuthorizeRequest>, Vec<Reply>) =
        batch.into_iter().map(|pending| (pending.request, pending.reply)).unzip();
    let refs: Vec<&AuthorizeRequest> = requests.iter().collect();
    match shared.guarded(shared.transport.authorize_batch(&refs)).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                // A caller that gave up waiting has dropped its receiver; nobody is left to tell.
                let _ = reply.send(result);
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
