//! [`DeniedAudit`]: `decision.denied` events for denials of the decision API, sampled, and handed to the
//! event sink off the decision's path.
//!
//! A decision never waits for the sink: events go into a bounded queue that one task drains into
//! [`EventSink::emit`]. When the queue is full (the sink is slower than the denials), events are dropped
//! and counted in the log; they are low-priority audit records, already sampled. Sampling draws from a
//! randomly keyed hash of a counter, so a periodic traffic pattern cannot line up with it.

use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rsp_core::bus::EventSink;
use rsp_core::{Event, EventKind, Priority, TenantId};
use serde_json::json;
use tokio::sync::mpsc;

use crate::{Decision, DecisionRequest};

/// Events waiting for the sink; past this, new ones are dropped.
const QUEUE_CAPACITY: usize = 4096;

/// Why a denied-audit sample rate was refused.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("the denied-decision audit sample rate must be between 0 and 1, not {0}")]
pub struct SampleRateError(pub f64);

/// See the module documentation.
pub(super) struct DeniedAudit {
    /// `None` until a sink is configured: then nothing is built at all.
    sink: Option<Arc<dyn EventSink>>,
    /// The sender of the queue, created with its draining task by the first event (decisions run on a
    /// tokio runtime; building the service may not).
    queue: OnceLock<mpsc::Sender<Event>>,
    /// The sample rate as `f64` bits, so it can be changed on a shared service.
    rate: AtomicU64,
    draws: AtomicU64,
    sampler: RandomState,
    dropped: AtomicU64,
}

impl DeniedAudit {
    pub(super) fn new() -> Self {
        Self {
            sink: None,
            queue: OnceLock::new(),
            rate: AtomicU64::new(1.0_f64.to_bits()),
            draws: AtomicU64::new(0),
            sampler: RandomState::new(),
            dropped: AtomicU64::new(0),
        }
    }

    pub(super) fn with_sink(self, sink: Arc<dyn EventSink>) -> Self {
        Self { sink: Some(sink), queue: OnceLock::new(), ..self }
    }

    /// The share of denials recorded: 1 all, 0 none.
    pub(super) fn set_rate(&self, rate: f64) -> Result<(), SampleRateError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(SampleRateError(rate));
        }
        self.rate.store(rate.to_bits(), Ordering::Relaxed);
        Ok(())
    }

    /// Records the denials among `decided` (sampled). Returns at once.
    pub(super) fn record<'a>(
        &self,
        tenant: &TenantId,
        decided: impl IntoIterator<Item = (&'a DecisionRequest, &'a Decision)>,
    ) {
        let Some(sink) = &self.sink else {
            return;
        };
        for (request, decision) in decided {
            if !decision.allowed && self.sampled() {
                self.enqueue(sink, denied_event(tenant, request, decision));
            }
        }
    }

    fn sampled(&self) -> bool {
        let rate = f64::from_bits(self.rate.load(Ordering::Relaxed));
        if rate >= 1.0 {
            return true;
        }
        if rate <= 0.0 {
            return false;
        }
        let draw = self.sampler.hash_one(self.draws.fetch_add(1, Ordering::Relaxed)) >> 11;
        // 53 random bits as a fraction in [0, 1).
        (draw as f64) / ((1_u64 << 53) as f64) < rate
    }

    fn enqueue(&self, sink: &Arc<dyn EventSink>, event: Event) {
        let queue = match self.queue.get() {
            Some(queue) => queue,
            None => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    tracing::warn!("decision.denied event dropped: no tokio runtime to deliver it");
                    return;
                };
                self.queue.get_or_init(|| {
                    let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
                    runtime.spawn(drain(receiver, Arc::clone(sink)));
                    sender
                })
            }
        };
        if queue.try_send(event).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at 1, 2, 4, 8… drops: visible without flooding the log under sustained overload.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "decision.denied events dropped: the event sink is not keeping up");
            }
        }
    }
}

/// Hands queued events to the sink, in order, until the service (the only sender) is dropped.
async fn drain(mut receiver: mpsc::Receiver<Event>, sink: Arc<dyn EventSink>) {
    while let Some(event) = receiver.recv().await {
        sink.emit(event).await;
    }
}

/// The event: actor, request id and trace id from the ambient request context (the caller the HTTP layer
/// authenticated), subject the principal, data what was asked and which policies decided.
fn denied_event(tenant: &TenantId, request: &DecisionRequest, decision: &Decision) -> Event {
    Event::new(tenant.clone(), EventKind::DECISION_DENIED, Priority::Low).subject(request.principal.to_string()).data(
        json!({
            "action": request.action.to_string(),
            "resource": request.resource.to_string(),
            "policies": decision.reasons,
            "action_named": decision.action_named,
            "policy_version": decision.policy_version,
            "entity_version": decision.entity_version,
        }),
    )
}

impl fmt::Debug for DeniedAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeniedAudit")
            .field("sink", &self.sink.is_some())
            .field("rate", &f64::from_bits(self.rate.load(Ordering::Relaxed)))
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .finish()
    }
}
