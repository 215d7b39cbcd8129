//! Redis key names and stream slots: the one place that knows how the bus lays itself out in Redis.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{prefix}:events:{priority}` | stream | published events, one stream per priority, shared by all groups |
//! | `{prefix}:retry:{group}:{priority}` | sorted set | failed events waiting for their retry, scored by due time |
//! | `{prefix}:retry-age:{group}` | sorted set | the same members scored by first publication (for `stats`) |
//! | `{prefix}:redeliver:{group}:{priority}` | stream | retries now due, read by the group like new events |
//! | `{prefix}:dead:{group}` | stream | dead letters with their error and attempts |
//! | `{prefix}:handled:{group}:{event id}` | string | `claimed` (with a lease) or `done` (for a day) |
//!
//! Scripts receive a group's keys in a fixed order (see [`GroupKeys`]); a *slot* is a 1-based index into it
//! naming a stream a delivery came from, and is part of the delivery's receipt.

use rsp_core::bus::BusError;
use rsp_core::{EventId, Priority};

/// Slots 1-5: event streams; 6-10: redelivery streams (both by priority rank).
pub(crate) const STREAM_SLOTS: u8 = 10;

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.to_owned() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn events(&self, priority: Priority) -> String {
        format!("{}:events:{}", self.prefix, priority.as_str())
    }

    pub fn handled(&self, group: &str, event: &EventId) -> String {
        format!("{}:handled:{group}:{event}", self.prefix)
    }

    pub fn dead(&self, group: &str) -> String {
        format!("{}:dead:{group}", self.prefix)
    }

    /// Every key a group's scripts touch, in slot order.
    pub fn group(&self, group: &str) -> GroupKeys {
        let p = &self.prefix;
        let by_priority =
            |kind: &str| Priority::ALL.map(|priority| format!("{p}:{kind}:{group}:{}", priority.as_str()));
        let mut keys: Vec<String> = Priority::ALL.iter().map(|&priority| self.events(priority)).collect();
        keys.extend(by_priority("redeliver"));
        keys.extend(by_priority("retry"));
        keys.push(format!("{p}:retry-age:{group}"));
        keys.push(self.dead(group));
        GroupKeys(keys)
    }
}

/// A group's keys: 1-5 event streams, 6-10 redelivery streams, 11-15 retry schedules, 16 retry ages,
/// 17 dead letters.
#[derive(Debug, Clone)]
pub(crate) struct GroupKeys(Vec<String>);

impl GroupKeys {
    pub fn all(&self) -> &[String] {
        &self.0
    }

    /// The streams a group reads (slots 1-10), for creating the group on them.
    pub fn streams(&self) -> &[String] {
        self.0.get(..usize::from(STREAM_SLOTS)).unwrap_or_default()
    }

    /// The slot of an event stream, from the key name Redis answers a blocking read with.
    pub fn event_slot(&self, key: &str) -> Option<u8> {
        let position = self.0.iter().take(Priority::ALL.len()).position(|k| k == key)?;
        u8::try_from(position + 1).ok()
    }
}

/// Where a delivery came from: the stream slot and the entry id. Its text form is the delivery's receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    pub slot: u8,
    pub id: String,
}

impl Receipt {
    pub fn new(slot: u8, id: impl Into<String>) -> Self {
        Self { slot, id: id.into() }
    }

    pub fn encode(&self) -> String {
        format!("{}:{}", self.slot, self.id)
    }

    pub fn parse(receipt: &str) -> Result<Self, BusError> {
        let malformed = || BusError::Malformed { id: receipt.to_owned(), reason: "not a redis bus receipt".into() };
        let (slot, id) = receipt.split_once(':').ok_or_else(malformed)?;
        let slot: u8 = slot.parse().map_err(|_| malformed())?;
        let id_ok = id.split_once('-').is_some_and(|(ms, seq)| {
            !ms.is_empty() && !seq.is_empty() && ms.bytes().chain(seq.bytes()).all(|b| b.is_ascii_digit())
        });
        if !(1..=STREAM_SLOTS).contains(&slot) || !id_ok {
            return Err(malformed());
        }
        Ok(Self::new(slot, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_follow_the_slot_order() {
        let keys = Keys::new("t").group("audit");
        assert_eq!(keys.all().len(), 17);
        assert_eq!(keys.all()[0], "t:events:critical");
        assert_eq!(keys.all()[5], "t:redeliver:audit:critical");
        assert_eq!(keys.all()[14], "t:retry:audit:background");
        assert_eq!(keys.all()[15], "t:retry-age:audit");
        assert_eq!(keys.all()[16], "t:dead:audit");
        assert_eq!(keys.streams().len(), 10);
        assert_eq!(keys.event_slot("t:events:low"), Some(4));
        assert_eq!(keys.event_slot("t:redeliver:audit:low"), None);
    }

    #[test]
    fn receipts_round_trip_and_refuse_garbage() {
        let receipt = Receipt::new(7, "1700000000000-3");
        assert_eq!(Receipt::parse(&receipt.encode()).unwrap(), receipt);
        for bad in ["", "7", "0:1-1", "11:1-1", "x:1-1", "3:1", "3:a-1", "3:1-", "3:-1"] {
            assert!(Receipt::parse(bad).is_err(), "{bad}");
        }
    }
}
