//! Events: facts the platform records after they happened (a token issued, a client changed, a decision
//! denied). They feed the audit trail and background work through the event bus port ([`crate::bus`]).
//!
//! An event is built where the fact happens, by the use case, and carries who caused it and which request
//! it came from. Those two come from the ambient [`crate::context::RequestContext`], so use cases do not
//! thread request ids through every signature, the same way tracing spans are ambient.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::TenantId;
use crate::context;

/// A unique, time-ordered event id (a UUIDv7 in its hyphenated text form). De-duplication is by this id,
/// so a message that the outbox relay or a retry delivers twice is handled once.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    /// A fresh id: millisecond time prefix, then randomness, so ids sort by creation time.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    /// Accepts any stored id (1 to 64 visible ASCII characters), for ids read back from storage or Redis.
    pub fn parse(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        let visible = value.chars().all(|c| ('\x21'..='\x7e').contains(&c));
        (!value.is_empty() && value.len() <= 64 && visible).then_some(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How urgently consumers should see an event. Consumers drain higher priorities first; each priority is
/// its own stream (Redis) or index range (embedded), so a flood of `Background` work never delays a
/// `Critical` event.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Critical,
    High,
    Normal,
    Low,
    Background,
}

impl Priority {
    /// Highest first: the order consumers read in.
    pub const ALL: [Priority; 5] = [Self::Critical, Self::High, Self::Normal, Self::Low, Self::Background];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
            Self::Background => "background",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }

    /// 0 for `Critical` up to 4 for `Background`, for storage columns and array indexes.
    pub fn rank(self) -> u8 {
        match self {
            Self::Critical => 0,
            Self::High => 1,
            Self::Normal => 2,
            Self::Low => 3,
            Self::Background => 4,
        }
    }

    pub fn from_rank(rank: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.rank() == rank)
    }
}

/// What happened, as a dotted name (`token.issued`). The constants are the kinds the platform emits; the
/// type stays open so stored events of a newer version still load.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventKind(std::borrow::Cow<'static, str>);

impl EventKind {
    pub const TOKEN_ISSUED: Self = Self::new("token.issued");
    pub const TOKEN_REVOKED: Self = Self::new("token.revoked");
    pub const TOKEN_INTROSPECTED: Self = Self::new("token.introspected");
    pub const TENANT_CREATED: Self = Self::new("tenant.created");
    pub const TENANT_UPDATED: Self = Self::new("tenant.updated");
    pub const TENANT_DELETED: Self = Self::new("tenant.deleted");
    pub const CLIENT_CREATED: Self = Self::new("client.created");
    pub const CLIENT_UPDATED: Self = Self::new("client.updated");
    pub const CLIENT_DELETED: Self = Self::new("client.deleted");
    pub const CLIENT_SECRET_ROTATED: Self = Self::new("client.secret_rotated");
    pub const KEY_ROTATED: Self = Self::new("key.rotated");
    pub const POLICY_CHANGED: Self = Self::new("policy.changed");
    pub const ENTITIES_CHANGED: Self = Self::new("entities.changed");
    pub const DECISION_DENIED: Self = Self::new("decision.denied");
    pub const LOGIN_SUCCEEDED: Self = Self::new("login.succeeded");
    pub const LOGIN_FAILED: Self = Self::new("login.failed");

    pub const fn new(kind: &'static str) -> Self {
        Self(std::borrow::Cow::Borrowed(kind))
    }

    /// A kind read back from storage: 1 to 64 characters of lowercase letters, digits, `.` and `_`.
    pub fn parse(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        let ok = !value.is_empty()
            && value.len() <= 64
            && value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_');
        ok.then_some(Self(std::borrow::Cow::Owned(value)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One recorded fact. Serialized as JSON on the bus and stored as such in the audit trail.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub tenant: TenantId,
    pub kind: EventKind,
    pub priority: Priority,
    /// When it happened, in milliseconds since the Unix epoch (audit ordering needs sub-second precision).
    pub occurred_at_ms: i64,
    /// Who caused it: a client id, a user id, `cli` for the local command line, `system` for the server.
    pub actor: String,
    /// What it happened to (a client id, a token's `jti`, a key id, a policy version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// W3C trace id (32 hex digits) of the request, to jump from an audit record to its trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Kind-specific detail. Never secrets or tokens: a token is named by its `jti` only.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

/// The actor of an event that no request caused.
pub const SYSTEM_ACTOR: &str = "system";

impl Event {
    /// An event of `kind` for `tenant`, stamped with the current request's actor, request id and trace id
    /// (or `system` outside a request).
    pub fn new(tenant: TenantId, kind: EventKind, priority: Priority) -> Self {
        let ambient = context::current();
        Self {
            id: EventId::generate(),
            tenant,
            kind,
            priority,
            occurred_at_ms: now_millis(),
            actor: ambient.as_ref().and_then(|c| c.actor()).unwrap_or_else(|| SYSTEM_ACTOR.to_owned()),
            subject: None,
            request_id: ambient.as_ref().and_then(|c| c.request_id.clone()),
            trace_id: ambient.as_ref().and_then(|c| c.trace_id.clone()),
            data: serde_json::Value::Null,
        }
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// The event as a standalone JSON document (its bus and storage form).
    pub fn to_json(&self) -> String {
        // Serializing plain strings, numbers and a `Value` cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// Milliseconds since the Unix epoch by the wall clock. Event times are for people reading the audit
/// trail, so they use the real clock even when token code runs on a test clock.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Decides which calls of a sampled audit record are kept (`token.introspected`, `decision.denied`).
/// Draws come from a randomly keyed hash of a counter: cheap on hot paths (no system randomness per call),
/// and a periodic traffic pattern cannot line up with them.
#[derive(Debug, Default)]
pub struct Sampler {
    draws: std::sync::atomic::AtomicU64,
    keys: std::hash::RandomState,
}

impl Sampler {
    /// Whether this call falls in a sample of `rate` (1 = always, 0, below or NaN = never).
    pub fn sample(&self, rate: f64) -> bool {
        use std::hash::BuildHasher;
        if rate >= 1.0 {
            return true;
        }
        if rate.is_nan() || rate <= 0.0 {
            return false;
        }
        let draw = self.keys.hash_one(self.draws.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) >> 11;
        // 53 random bits as a fraction in [0, 1).
        let fraction = (draw as f64) / ((1_u64 << 53) as f64);
        fraction < rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edges_of_the_sample_rate_are_exact() {
        let sampler = Sampler::default();
        assert!((0..1000).all(|_| sampler.sample(1.0)));
        assert!((0..1000).all(|_| !sampler.sample(0.0)));
        assert!((0..1000).all(|_| !sampler.sample(f64::NAN)));
        assert!((0..1000).all(|_| !sampler.sample(-1.0)));
    }

    #[test]
    fn a_fractional_rate_samples_about_that_share() {
        let sampler = Sampler::default();
        let hits = (0..20_000).filter(|_| sampler.sample(0.25)).count();
        // Binomial(20000, 0.25): mean 5000, sd ~61; 10 sd either way never fails by chance.
        assert!((4_390..=5_610).contains(&hits), "{hits} hits");
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let a = EventId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = EventId::generate();
        assert!(a < b);
        assert_eq!(EventId::parse(a.as_str()), Some(a));
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let tenant = TenantId::parse("acme").unwrap();
        let event = Event::new(tenant, EventKind::CLIENT_CREATED, Priority::High)
            .subject("c1")
            .data(serde_json::json!({"name": "x"}));
        assert_eq!(event.actor, "system");
        let back = Event::from_json(&event.to_json()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn priorities_round_trip_by_name_and_rank() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Some(p));
            assert_eq!(Priority::from_rank(p.rank()), Some(p));
        }
        assert!(EventKind::parse("Token Issued").is_none());
    }
}
