//! [`DeniedAudit`]: `decision.denied` events for denials of the decision API, sampled, with repeats
//! counted, and handed to the event sink without waiting.
//!
//! A decision never waits for the sink: events go through [`EventSink::try_emit`], and when the sink's
//! buffer is full (it is slower than the denials) they are dropped and counted in the log; they are
//! low-priority audit records, already sampled.
//!
//! **Repeats.** A denial whose record would be identical to one already made in the current
//! [`REPEAT_WINDOW`] (same tenant, caller, principal, action, resource, deciding policies and versions)
//! is counted instead of recorded; when the window ends, one more event says how many repeats there were
//! (`repeats`, and `repeat_of`, the first event's id). The first of each is recorded at once with its own
//! request id, as before. A denial that goes on repeating stays counted from window to window, one event
//! per window with that window's count and the same `repeat_of`; a window in which it did not repeat ends
//! the run, and the next one is a first again (starting over each window recorded a fresh first as well:
//! twice the events for a denial that never stops). Why: a client retrying a denied call, or a policy
//! enforcement point polling, repeats the same denial many times a second, and each record was a row in
//! seven indexes of the audit table. Measured: the audit cost a third of the single endpoint's decisions
//! (cache off) and half the batch endpoint's (cache on), and under batch load its queue held ~30 MB of
//! events it then dropped (BENCHMARKS.md). At most [`MAX_COUNTED`] distinct denials are counted per
//! window, carried ones included, so a flood of distinct ones costs bounded memory (beyond it each is
//! recorded as it comes).

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rsp_core::bus::EventSink;
use rsp_core::event::{EventId, SYSTEM_ACTOR, now_millis};
use rsp_core::{Event, EventKind, Priority, Sampler, TenantId};
use serde_json::json;

use crate::{Decision, DecisionRequest, EntityRef};

/// How long repeats of one denial are counted before they are recorded as one event.
pub(super) const REPEAT_WINDOW: Duration = Duration::from_secs(1);

/// Distinct denials counted per window at most (each holds the denial's fields, a few hundred bytes).
const MAX_COUNTED: usize = 4096;

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
    repeats: Mutex<Repeats>,
}

/// What makes two denials' records identical (the event's fields, but its id, time and request).
#[derive(Debug)]
struct DenialKey {
    tenant: TenantId,
    actor: Option<String>,
    principal: EntityRef,
    action: EntityRef,
    resource: EntityRef,
    reasons: Vec<String>,
    action_named: bool,
    policy_version: u64,
    entity_version: u64,
}

/// A denial being recorded, borrowed: a repeat is counted without copying anything.
#[derive(Clone, Copy)]
struct Denial<'a> {
    tenant: &'a TenantId,
    actor: Option<&'a str>,
    request: &'a DecisionRequest,
    decision: &'a Decision,
}

impl Denial<'_> {
    fn fingerprint(&self, state: &RandomState) -> u64 {
        let (request, decision) = (self.request, self.decision);
        state.hash_one((
            self.tenant,
            self.actor,
            (&request.principal, &request.action, &request.resource),
            (&decision.reasons, decision.action_named, decision.policy_version, decision.entity_version),
        ))
    }

    fn is(&self, key: &DenialKey) -> bool {
        let (request, decision) = (self.request, self.decision);
        *self.tenant == key.tenant
            && self.actor == key.actor.as_deref()
            && (&request.principal, &request.action, &request.resource) == (&key.principal, &key.action, &key.resource)
            && (&decision.reasons, decision.action_named, decision.policy_version, decision.entity_version)
                == (&key.reasons, key.action_named, key.policy_version, key.entity_version)
    }

    fn key(&self) -> DenialKey {
        DenialKey {
            tenant: self.tenant.clone(),
            actor: self.actor.map(str::to_owned),
            principal: self.request.principal.clone(),
            action: self.request.action.clone(),
            resource: self.request.resource.clone(),
            reasons: self.decision.reasons.clone(),
            action_named: self.decision.action_named,
            policy_version: self.decision.policy_version,
            entity_version: self.decision.entity_version,
        }
    }
}

impl DenialKey {
    /// The record's `data`: what was asked and which policies decided.
    fn data(&self) -> serde_json::Value {
        json!({
            "action": self.action.to_string(),
            "resource": self.resource.to_string(),
            "policies": self.reasons,
            "action_named": self.action_named,
            "policy_version": self.policy_version,
            "entity_version": self.entity_version,
        })
    }
}

/// The denials recorded in the current window, by fingerprint, and how often each has repeated since.
///
/// An entry holds the denial's fields once and its first record's id, not the record: the record is
/// rebuilt from the fields when the window ends. Why: with the whole first record kept (about a
/// kilobyte of JSON) the entries were the largest live allocation of the server under a decision load.
#[derive(Debug)]
struct Repeats {
    window_started: Instant,
    fingerprints: RandomState,
    /// Two distinct denials with one fingerprint (a 64-bit hash collision) keep the first; the other is
    /// recorded every time, as if the table were full.
    seen: HashMap<u64, Seen>,
}

#[derive(Debug)]
struct Seen {
    key: DenialKey,
    first: EventId,
    repeats: u64,
}

impl Repeats {
    fn new() -> Self {
        Self { window_started: Instant::now(), fingerprints: RandomState::new(), seen: HashMap::new() }
    }

    /// Counts `denial` if it was recorded in this window; false when it is new.
    fn counted(&mut self, denial: &Denial<'_>) -> bool {
        let fingerprint = denial.fingerprint(&self.fingerprints);
        match self.seen.get_mut(&fingerprint) {
            Some(seen) if denial.is(&seen.key) => {
                seen.repeats += 1;
                true
            }
            _ => false,
        }
    }

    /// Remembers the first record of a denial, while there is room (and unless a racing one was first).
    fn remember(&mut self, denial: &Denial<'_>, key: DenialKey, first: &EventId) {
        if self.seen.len() < MAX_COUNTED {
            let fingerprint = denial.fingerprint(&self.fingerprints);
            self.seen.entry(fingerprint).or_insert_with(|| Seen { key, first: first.clone(), repeats: 0 });
        }
    }

    /// Ends the window when it is over (or now when `force`d): the repeat counts as events. Denials that
    /// repeated stay for the next window, counted from zero; the others are forgotten.
    fn end_window(&mut self, force: bool) -> Vec<Event> {
        if !force && self.window_started.elapsed() < REPEAT_WINDOW {
            return Vec::new();
        }
        self.window_started = Instant::now();
        let mut events = Vec::new();
        self.seen.retain(|_, seen| {
            let repeated = seen.repeats > 0;
            if repeated {
                events.push(repeats_event(seen));
                seen.repeats = 0;
            }
            repeated
        });
        events
    }
}

/// The record of `seen`'s repeats in the window: the first's fields but its own id and time, no request
/// (it stands for many), and the count.
fn repeats_event(seen: &Seen) -> Event {
    let key = &seen.key;
    let mut data = key.data();
    if let Some(fields) = data.as_object_mut() {
        fields.insert("repeats".into(), json!(seen.repeats));
        fields.insert("repeat_of".into(), json!(seen.first.as_str()));
    }
    Event {
        id: EventId::generate(),
        tenant: key.tenant.clone(),
        kind: EventKind::DECISION_DENIED,
        priority: Priority::Low,
        occurred_at_ms: now_millis(),
        actor: key.actor.clone().unwrap_or_else(|| SYSTEM_ACTOR.to_owned()),
        subject: Some(key.principal.to_string()),
        request_id: None,
        trace_id: None,
        data,
    }
}

fn lock(repeats: &Mutex<Repeats>) -> MutexGuard<'_, Repeats> {
    // Nothing panics while holding it; were one to, the counts are still counts.
    repeats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DeniedAudit {
    pub(super) fn new() -> Self {
        Self {
            sink: None,
            rate: AtomicU64::new(1.0_f64.to_bits()),
            sampler: Sampler::default(),
            dropped: AtomicU64::new(0),
            repeats: Mutex::new(Repeats::new()),
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

    /// Records the denials among `decided` (sampled; repeats counted). Returns at once.
    pub(super) fn record<'a>(
        &self,
        tenant: &TenantId,
        decided: impl IntoIterator<Item = (&'a DecisionRequest, &'a Decision)>,
    ) {
        let Some(sink) = &self.sink else {
            return;
        };
        // Allowed decisions, the common case, cost no context read and no lock.
        let denied: Vec<_> = decided.into_iter().filter(|(_, decision)| !decision.allowed && self.sampled()).collect();
        if denied.is_empty() {
            return;
        }
        let actor = rsp_core::context::current().and_then(|context| context.actor());
        let mut new = Vec::new();
        let ended = {
            let mut repeats = lock(&self.repeats);
            let ended = repeats.end_window(false);
            for (request, decision) in denied {
                let denial = Denial { tenant, actor: actor.as_deref(), request, decision };
                if !repeats.counted(&denial) {
                    new.push(denial);
                }
            }
            ended
        };
        self.enqueue_all(sink, ended);
        if new.is_empty() {
            return;
        }
        // Built outside the lock. Identical denials first seen together (in one batch, or racing) are
        // each recorded, which is harmless.
        let firsts: Vec<_> = new
            .into_iter()
            .map(|denial| {
                let key = denial.key();
                let event = denied_event(&key);
                (denial, key, event)
            })
            .collect();
        let mut events = Vec::with_capacity(firsts.len());
        {
            let mut repeats = lock(&self.repeats);
            for (denial, key, event) in firsts {
                repeats.remember(&denial, key, &event.id);
                events.push(event);
            }
        }
        self.enqueue_all(sink, events);
    }

    /// Records the repeats counted in a window that is over (all of them when `now`): called every
    /// [`REPEAT_WINDOW`], so counts are recorded when denials stop, and at shutdown.
    pub(super) fn record_repeats(&self, now: bool) {
        if let Some(sink) = &self.sink {
            let ended = lock(&self.repeats).end_window(now);
            self.enqueue_all(sink, ended);
        }
    }

    fn enqueue_all(&self, sink: &Arc<dyn EventSink>, events: Vec<Event>) {
        for event in events {
            self.enqueue(sink, event);
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

/// The first record of a denial: actor, request id and trace id from the ambient request context (the
/// caller the HTTP layer authenticated), subject the principal, data what was asked and which policies
/// decided.
fn denied_event(key: &DenialKey) -> Event {
    Event::new(key.tenant.clone(), EventKind::DECISION_DENIED, Priority::Low)
        .subject(key.principal.to_string())
        .data(key.data())
}

impl fmt::Debug for DeniedAudit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeniedAudit")
            .field("sink", &self.sink.is_some())
            .field("rate", &f64::from_bits(self.rate.load(Ordering::Relaxed)))
            .field("dropped", &self.dropped.load(Ordering::Relaxed))
            .field("counting", &lock(&self.repeats).seen.len())
            .finish()
    }
}
