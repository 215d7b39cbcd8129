//! A short-lived local cache of the server's decisions, so a resource server asking the same question
//! many times a second (one page, many checks) asks the platform once.
//!
//! The TTL bounds how long a policy change takes to reach this process; keep it short. Only real server
//! decisions are stored: a fallback cached would outlive the outage it answered.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::model::{AuthorizeRequest, DecidedBy, Decision};

/// How long decisions live and how many are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    pub ttl: Duration,
    pub max_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self { ttl: Duration::from_secs(5), max_entries: 10_000 }
    }
}

#[derive(Debug)]
struct Entry {
    decision: Decision,
    expires_at: Instant,
}

/// Bounded by `max_entries`, but not LRU: with a TTL of seconds the set turns over on its own, and when
/// it is full of live entries an arbitrary one goes, which costs one extra server call at worst.
#[derive(Debug)]
pub(crate) struct DecisionCache {
    config: CacheConfig,
    entries: Mutex<HashMap<String, Entry>>,
}

impl DecisionCache {
    pub fn new(config: CacheConfig) -> Self {
        Self { config, entries: Mutex::new(HashMap::new()) }
    }

    /// The cache key of `request`, or `None` if it must not be cached (it carries its own entities).
    pub fn key(tenant: &str, request: &AuthorizeRequest) -> Option<String> {
        if request.entities.is_some() {
            return None;
        }
        let value = serde_json::json!([tenant, request.principal, request.action, request.resource, request.context]);
        let mut key = String::new();
        write_canonical(&value, &mut key);
        Some(key)
    }

    pub fn get(&self, key: &str, now: Instant) -> Option<Decision> {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(entry) if entry.expires_at > now => {
                Some(Decision { decided_by: DecidedBy::Cache, ..entry.decision.clone() })
            }
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: String, decision: &Decision, now: Instant) {
        let Some(expires_at) = now.checked_add(self.config.ttl) else { return };
        if decision.decided_by != DecidedBy::Server || self.config.max_entries == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.config.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, entry| entry.expires_at > now);
            let excess = (entries.len() + 1).saturating_sub(self.config.max_entries);
            let victims: Vec<String> = entries.keys().take(excess).cloned().collect();
            for victim in victims {
                entries.remove(&victim);
            }
        }
        entries.insert(key, Entry { decision: decision.clone(), expires_at });
    }

    /// A cache holds no invariant a panic could break; a poisoned lock is safe to reuse.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// JSON with object keys sorted at every level, so equal requests give equal keys whatever order their
/// context was built in.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(':');
                if let Some(item) = map.get(key) {
                    write_canonical(item, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        // Scalars have one JSON spelling each; writing to a String cannot fail.
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientError;
    use crate::model::{Effect, EntityUid};

    fn request() -> AuthorizeRequest {
        AuthorizeRequest::new(
            EntityUid::new("User", "alice"),
            EntityUid::new("Action", "view"),
            EntityUid::new("Doc", "d1"),
        )
    }

    fn allow() -> Decision {
        Decision {
            effect: Effect::Allow,
            reasons: vec!["p1".into()],
            errors: vec![],
            policy_version: Some(1),
            action_named: true,
            decided_by: DecidedBy::Server,
        }
    }

    #[test]
    fn keys_ignore_context_order_but_not_content() {
        let a = request().with_context("ip", "10.0.0.1").with_context("mfa", serde_json::json!({"b": 1, "a": 2}));
        let mut b = request().with_context("mfa", serde_json::json!({"a": 2, "b": 1}));
        b.context.insert("ip".into(), "10.0.0.1".into());
        assert_eq!(DecisionCache::key("t", &a), DecisionCache::key("t", &b));
        assert_ne!(DecisionCache::key("t", &a), DecisionCache::key("u", &a));
        assert_ne!(DecisionCache::key("t", &a), DecisionCache::key("t", &request()));
    }

    #[test]
    fn requests_with_entities_are_not_cached() {
        assert_eq!(DecisionCache::key("t", &request().with_entities(vec![])), None);
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = DecisionCache::new(CacheConfig { ttl: Duration::from_secs(5), max_entries: 10 });
        let t0 = Instant::now();
        cache.insert("k".into(), &allow(), t0);
        let hit = cache.get("k", t0 + Duration::from_secs(4)).unwrap();
        assert_eq!(hit.decided_by, DecidedBy::Cache);
        assert_eq!(hit.reasons, vec!["p1".to_string()]);
        assert_eq!(cache.get("k", t0 + Duration::from_secs(5)), None);
    }

    #[test]
    fn fallbacks_are_never_cached() {
        let cache = DecisionCache::new(CacheConfig::default());
        let t0 = Instant::now();
        cache.insert("k".into(), &Decision::fallback(Effect::Deny, ClientError::Timeout), t0);
        assert_eq!(cache.get("k", t0), None);
    }

    #[test]
    fn size_is_bounded() {
        let cache = DecisionCache::new(CacheConfig { ttl: Duration::from_secs(5), max_entries: 3 });
        let t0 = Instant::now();
        for i in 0..10 {
            cache.insert(format!("k{i}"), &allow(), t0);
        }
        assert_eq!(cache.lock().len(), 3);
        assert!(cache.get("k9", t0).is_some(), "the newest entry is kept");
    }
}
