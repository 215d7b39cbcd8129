//! Values decoded from cache entries, kept beside the very bytes they were decoded from, so that a hit on
//! an entry that has not changed is not decoded again.
//!
//! The cache port carries JSON bytes (they travel to Redis and between replicas), and a hot record such as
//! a registered client is read on every token, introspection and revocation request: decoding it each time
//! was a dozen allocations and a JSON parse per request (BENCHMARKS.md). The cache still answers every
//! lookup (so invalidations, TTLs and fill tickets work as before); only the decoding is skipped, and only
//! when the cache hands back the same allocation as last time. That cannot serve a stale value: the bytes
//! kept here hold their allocation alive, so its address cannot be reused for other contents, and `Bytes`
//! never change in place; an invalidation or refill replaces the cache's bytes, and the next hit decodes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

/// See the module documentation. Holds at most `capacity` keys; when full, it starts over (a decoded
/// value is only a shortcut, so forgetting one costs one decode).
#[derive(Debug)]
pub struct DecodedEntries<T> {
    entries: RwLock<HashMap<String, (Bytes, Arc<T>)>>,
    capacity: usize,
}

impl<T> DecodedEntries<T> {
    pub fn new(capacity: usize) -> Self {
        Self { entries: RwLock::new(HashMap::new()), capacity }
    }

    /// The value decoded from exactly these bytes of `key`, if it is still kept.
    pub(super) fn get(&self, key: &str, bytes: &Bytes) -> Option<Arc<T>> {
        let entries = self.entries.read().ok()?;
        let (kept, value) = entries.get(key)?;
        same_allocation(kept, bytes).then(|| Arc::clone(value))
    }

    /// Keeps `value` as what `bytes` of `key` decode to, replacing what the key held.
    pub(super) fn keep(&self, key: &str, bytes: Bytes, value: Arc<T>) {
        let Ok(mut entries) = self.entries.write() else { return };
        if entries.len() >= self.capacity && !entries.contains_key(key) {
            entries.clear();
        }
        entries.insert(key.to_owned(), (bytes, value));
    }
}

/// Whether two `Bytes` view the same memory. Empty views never count: they may all share one address.
fn same_allocation(a: &Bytes, b: &Bytes) -> bool {
    !a.is_empty() && a.as_ptr() == b.as_ptr() && a.len() == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_reused_only_for_the_same_bytes() {
        let decoded = DecodedEntries::new(8);
        let bytes = Bytes::from(br#"{"v":1}"#.to_vec());
        decoded.keep("acme/c1", bytes.clone(), Arc::new(1));
        assert_eq!(decoded.get("acme/c1", &bytes.clone()).as_deref(), Some(&1));
        // Equal contents in another allocation (a refill after an invalidation) are decoded again.
        let refilled = Bytes::from(br#"{"v":1}"#.to_vec());
        assert_eq!(decoded.get("acme/c1", &refilled), None);
        assert_eq!(decoded.get("acme/c2", &bytes), None);
        assert_eq!(decoded.get("acme/c1", &bytes.slice(1..)), None);
    }

    #[test]
    fn a_full_memo_starts_over_and_empty_bytes_never_match() {
        let decoded = DecodedEntries::new(2);
        let (a, b, c) = (Bytes::from(vec![1]), Bytes::from(vec![2]), Bytes::from(vec![3]));
        decoded.keep("a", a.clone(), Arc::new('a'));
        decoded.keep("b", b.clone(), Arc::new('b'));
        decoded.keep("b", b.clone(), Arc::new('b'));
        assert!(decoded.get("a", &a).is_some());
        decoded.keep("c", c.clone(), Arc::new('c'));
        assert_eq!((decoded.get("a", &a), decoded.get("c", &c).as_deref()), (None, Some(&'c')));
        decoded.keep("e", Bytes::new(), Arc::new('e'));
        assert_eq!(decoded.get("e", &Bytes::new()), None);
    }
}
