//! What goes over the wire to Redis: key names, the encoding of stored entries, and the channel message.

use bytes::Bytes;
use rsp_core::cache::{CacheKind, Cached, Invalidation};
use serde::{Deserialize, Serialize};

/// Key names under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
    channel: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned(), channel: format!("{prefix}:invalidate") }
    }

    /// `{prefix}:c:{kind}:{key}`.
    pub(crate) fn entry(&self, kind: CacheKind, key: &str) -> String {
        format!("{}:c:{}:{}", self.prefix, kind.as_str(), key)
    }

    /// The pub/sub channel every replica of this prefix listens on.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// The `SCAN MATCH` pattern of the keys a prefix, kind or global invalidation drops; `None` for a single
    /// key. Glob characters of the caller's prefix are escaped, so `acme*` matches only itself.
    pub(crate) fn pattern(&self, invalidation: &Invalidation) -> Option<String> {
        let prefix = escape_glob(&self.prefix);
        match invalidation {
            Invalidation::Key { .. } => None,
            Invalidation::Prefix { kind, prefix: keys } => {
                Some(format!("{prefix}:c:{}:{}*", kind.as_str(), escape_glob(keys)))
            }
            Invalidation::Kind { kind } => Some(format!("{prefix}:c:{}:*", kind.as_str())),
            Invalidation::All => Some(format!("{prefix}:c:*")),
        }
    }
}

fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// One Redis value, decoded. The first byte says which; the rest is the caller's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    Value(Bytes),
    Absent,
    /// An invalidated key: reads miss, and fills (`SET … NX`) cannot replace it until it expires.
    Tombstone,
}

const VALUE: u8 = b'v';
const ABSENT: u8 = b'n';
const TOMBSTONE: u8 = b't';

pub(crate) fn encode(cached: &Cached) -> Vec<u8> {
    match cached {
        Cached::Value(bytes) => {
            let mut out = Vec::with_capacity(bytes.len() + 1);
            out.push(VALUE);
            out.extend_from_slice(bytes);
            out
        }
        Cached::Absent => vec![ABSENT],
    }
}

pub(crate) const TOMBSTONE_VALUE: &[u8] = &[TOMBSTONE];

/// `None` for bytes this version does not understand: the caller treats them as a miss.
pub(crate) fn decode(mut bytes: Bytes) -> Option<Stored> {
    let tag = *bytes.first()?;
    let body = bytes.split_off(1);
    match (tag, body.is_empty()) {
        (VALUE, _) => Some(Stored::Value(body)),
        (ABSENT, true) => Some(Stored::Absent),
        (TOMBSTONE, true) => Some(Stored::Tombstone),
        _ => None,
    }
}

/// The channel message: the invalidation plus the replica that made it, so it can skip its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Message {
    pub(crate) origin: String,
    #[serde(flatten)]
    pub(crate) invalidation: Invalidation,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_laid_out_under_the_prefix() {
        let keys = Keys::new("t1");
        assert_eq!(keys.entry(CacheKind::Client, "acme/c1"), "t1:c:client:acme/c1");
        assert_eq!(keys.channel(), "t1:invalidate");
        assert_eq!(keys.pattern(&Invalidation::key(CacheKind::Client, "acme/c1")), None);
        assert_eq!(
            keys.pattern(&Invalidation::prefix(CacheKind::Client, "a*[b]?/")).unwrap(),
            r"t1:c:client:a\*\[b\]\?/*"
        );
        assert_eq!(keys.pattern(&Invalidation::Kind { kind: CacheKind::Decision }).unwrap(), "t1:c:decision:*");
        assert_eq!(keys.pattern(&Invalidation::All).unwrap(), "t1:c:*");
    }

    #[test]
    fn entries_round_trip() {
        let value = Cached::Value(Bytes::from_static(b"{\"a\":1}"));
        assert_eq!(decode(Bytes::from(encode(&value))), Some(Stored::Value(Bytes::from_static(b"{\"a\":1}"))));
        assert_eq!(decode(Bytes::from(encode(&Cached::Value(Bytes::new())))), Some(Stored::Value(Bytes::new())));
        assert_eq!(decode(Bytes::from(encode(&Cached::Absent))), Some(Stored::Absent));
        assert_eq!(decode(Bytes::from_static(TOMBSTONE_VALUE)), Some(Stored::Tombstone));
        assert_eq!(decode(Bytes::new()), None);
        assert_eq!(decode(Bytes::from_static(b"x1")), None);
        assert_eq!(decode(Bytes::from_static(b"n1")), None);
    }

    #[test]
    fn messages_carry_the_invalidation_and_its_origin() {
        let message = Message { origin: "r1".to_owned(), invalidation: Invalidation::key(CacheKind::Client, "a/b") };
        let json = serde_json::to_value(&message).unwrap();
        assert_eq!(json, serde_json::json!({"origin": "r1", "scope": "key", "kind": "client", "key": "a/b"}));
        assert_eq!(serde_json::from_value::<Message>(json).unwrap(), message);
        let all: Message = serde_json::from_str(r#"{"origin":"r2","scope":"all"}"#).unwrap();
        assert_eq!(all.invalidation, Invalidation::All);
        assert!(serde_json::from_str::<Message>(r#"{"origin":"r2","scope":"key","kind":"nope","key":"k"}"#).is_err());
    }
}
