//! Turning Redis answers into the port's types, and Redis errors into [`BusError`]s.

use redis::streams::StreamId;
use redis::{ErrorKind, RedisError};
use rsp_core::Event;
use rsp_core::bus::{BusError, BusStats, DeadLetter, Delivery};

use super::keys::Receipt;

/// One entry as the receive script answers it: (slot, entry id, attempt, event JSON).
pub(crate) type RawEntry = (i64, String, i64, String);

/// An entry whose body is not an event: it cannot be handed to a handler, so the bus dead-letters it.
#[derive(Debug)]
pub(crate) struct Unreadable {
    pub receipt: Receipt,
    pub body: String,
    pub reason: String,
}

pub(crate) fn bus_error(error: RedisError) -> BusError {
    match error.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            BusError::Malformed { id: "redis reply".into(), reason: error.to_string() }
        }
        _ => BusError::Unavailable(error.to_string()),
    }
}

/// The group does not exist on a stream (never created, or the keys were deleted since).
pub(crate) fn is_missing_group(error: &RedisError) -> bool {
    error.code() == Some("NOGROUP") || error.to_string().contains("NOGROUP")
}

/// Sorts raw entries into deliveries and bodies that are not events.
pub(crate) fn deliveries(raw: Vec<RawEntry>) -> (Vec<Delivery>, Vec<Unreadable>) {
    let mut good = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for (slot, id, attempt, body) in raw {
        let receipt = match u8::try_from(slot).ok().map(|slot| Receipt::new(slot, id.clone())) {
            Some(receipt) => receipt,
            None => continue,
        };
        let attempt = u32::try_from(attempt.max(1)).unwrap_or(u32::MAX);
        match Event::from_json(&body) {
            Ok(event) => good.push(Delivery { event, receipt: receipt.encode(), attempt }),
            Err(e) => bad.push(Unreadable { receipt, body, reason: format!("not an event: {e}") }),
        }
    }
    (good, bad)
}

/// An entry of a blocking read of the event streams: always a first delivery.
pub(crate) fn first_delivery(slot: u8, entry: &StreamId) -> Result<Delivery, Unreadable> {
    let receipt = Receipt::new(slot, entry.id.clone());
    let body: String = entry.get("event").unwrap_or_default();
    match Event::from_json(&body) {
        Ok(event) => Ok(Delivery { event, receipt: receipt.encode(), attempt: 1 }),
        Err(e) => Err(Unreadable { receipt, body, reason: format!("not an event: {e}") }),
    }
}

/// A dead-letter stream entry, or `None` for one whose body is not an event (kept in Redis, skipped here).
pub(crate) fn dead_letter(entry: &StreamId) -> Option<DeadLetter> {
    let body: String = entry.get("event")?;
    let event = Event::from_json(&body).ok()?;
    Some(DeadLetter {
        event,
        group: entry.get("group").unwrap_or_default(),
        attempts: entry.get("attempts").unwrap_or_default(),
        error: entry.get("error").unwrap_or_default(),
        dead_at_ms: entry.get("dead_at_ms").unwrap_or_default(),
    })
}

/// The stats script's answer: depth by rank (5), pending, dead letters, oldest age in ms.
pub(crate) fn stats(values: &[i64]) -> Result<BusStats, BusError> {
    let unsigned = |i: usize| values.get(i).map(|&v| u64::try_from(v).unwrap_or(0));
    let malformed =
        || BusError::Malformed { id: "stats".into(), reason: format!("expected 8 numbers, got {values:?}") };
    let mut depth = [0; 5];
    for (i, slot) in depth.iter_mut().enumerate() {
        *slot = unsigned(i).ok_or_else(malformed)?;
    }
    Ok(BusStats {
        depth,
        pending: unsigned(5).ok_or_else(malformed)?,
        dead_letters: unsigned(6).ok_or_else(malformed)?,
        oldest_unacked_ms: unsigned(7).ok_or_else(malformed)?,
    })
}

#[cfg(test)]
mod tests {
    use rsp_core::{EventKind, Priority, TenantId};

    use super::*;

    #[test]
    fn raw_entries_become_deliveries_or_unreadables() {
        let event = Event::new(TenantId::parse("acme").unwrap(), EventKind::TOKEN_ISSUED, Priority::Low);
        let raw = vec![(4, "1-0".to_owned(), 1, event.to_json()), (9, "2-0".to_owned(), 3, "{nope".to_owned())];
        let (good, bad) = deliveries(raw);
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].event, event);
        assert_eq!(good[0].receipt, "4:1-0");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].receipt, Receipt::new(9, "2-0"));
    }

    #[test]
    fn stats_need_eight_numbers() {
        let stats = stats(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap();
        assert_eq!(stats.depth, [1, 2, 3, 4, 5]);
        assert_eq!((stats.pending, stats.dead_letters, stats.oldest_unacked_ms), (6, 7, 8));
        assert!(super::stats(&[1, 2]).is_err());
    }
}
