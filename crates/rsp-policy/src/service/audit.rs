//! [`DeniedAudit`]: `decision.denied` events for denials of the decision API, sampled, and handed to the
//! event sink without waiting.
//!
//! A decision never waits for the sink: events go through [`EventSink::try_emit`], and when the sink's
//! buffer is full (it is slower than the denials) they are dropped and counted in the log; they are
//! low-priority audit records, already sampled.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rsp_core::bus::EventSink;
use rsp_core::{Event, EventKind, Priority, Sampler, TenantId};
use serde_json::json;

use crate::{Decision, DecisionRequest};

/// Why a denied-audit sample rate was refused.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("the denied-decision audit sample rate must be between 0 and 1, not {0}")]
pub struct SampleRateError(pub f64);

/// See the module documentation.
pub(super) struct DeniedAudit {
    /// `None` until a sink is configured: then nothing is built at all.
    sink: Option<Arc<dyn EventSink>>,
    /// The sample rate as `f64` bits, so it can be changed on a shared service.
    rate: AtomicU64,
    sampler: Sampler,
    dropped: AtomicU64,
}

impl DeniedAudit {
    pub(super) fn new() -> Self {
        Self {
            sink: None,
            rate: AtomicU64::new(1.0_f64.to_bits()),
            sampler: Sampler::default(),
            dropped: AtomicU64::new(0),
        }
    }

    pub(super) fn with_sink(self, sink: Arc<dyn EventSink>) -> Self {
        Self { sink: Some(sink), ..self }
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
        self.sampler.sample(f64::from_bits(self.rate.load(Ordering::Relaxed)))
    }

    fn enqueue(&self, sink: &Arc<dyn EventSink>, event: Event) {
        if !sink.try_emit(event) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at 1, 2, 4, 8… drops: visible without flooding the log under sustained overload.
            if dropped.is_power_of_two() {
                tracing::warn!(dropped, "decision.denied events dropped: the event sink is not keeping up");
            }
        }
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
