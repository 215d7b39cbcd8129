//! One received batch, from claims to the final acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use rsp_core::bus::{BusResult, Claim, Delivery};
use rsp_core::event::EventId;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Consumer, HandlerError, backoff, stopping};

/// What became of a batch so far: deliveries to acknowledge now, and successes whose completion is being
/// stored (acknowledged once it is).
#[derive(Default)]
struct Outcome {
    ack: Vec<Delivery>,
    completing: Vec<(Delivery, JoinHandle<BusResult<()>>)>,
}

impl Consumer {
    pub(super) async fn process(&self, deliveries: Vec<Delivery>, shutdown: &watch::Receiver<bool>) {
        if deliveries.is_empty() {
            return;
        }
        let group = &self.config.group;
        let lease = self.config.claim_lease;
        let ids: Vec<EventId> = deliveries.iter().map(|d| d.event.id.clone()).collect();
        let claims = self.bus.claim_many(group, &ids, lease).await;
        let mut outcome = Outcome::default();
        let mut claimed = Vec::with_capacity(deliveries.len());
        for (delivery, claim) in deliveries.into_iter().zip(claims) {
            match claim {
                Ok(Claim::Claimed) => claimed.push(delivery),
                // A duplicate copy: the other one is done, or being handled as a first delivery whose own
                // failure would retry that copy.
                Ok(Claim::AlreadyHandled) | Ok(Claim::InProgress) if is_duplicate(&claim, &delivery) => {
                    self.metrics.duplicate.increment(1);
                    outcome.ack.push(delivery);
                }
                // A redelivery still claimed: most likely by this event's previous consumer, which died
                // mid-handler. Try again once that claim has lapsed.
                Ok(_) => self.retry(&delivery, "event is claimed by another delivery", lease).await,
                // Left pending: it is reclaimed after `reclaim_after`.
                Err(error) => tracing::warn!(%group, event = %delivery.event.id, %error, "claim failed"),
            }
        }
        match self.handled_as_batch(&claimed).await {
            Some(true) => {
                outcome.ack.extend(claimed);
                self.acknowledge(outcome).await;
                return;
            }
            // Handled, but the completion was not stored: left pending, redelivered after the claims
            // lapse, and handled again (handlers tolerate that).
            Some(false) => {
                self.acknowledge(outcome).await;
                return;
            }
            None => {}
        }
        let mut claimed = claimed.into_iter();
        for delivery in claimed.by_ref() {
            self.handle(delivery, &mut outcome).await;
            if stopping(shutdown) {
                break;
            }
        }
        self.hand_back(claimed.map(|delivery| (delivery, Ok(Claim::Claimed))).collect()).await;
        self.acknowledge(outcome).await;
    }

    /// Offers the claimed events to the handler as one batch: `None` when it did not handle them all (each
    /// is then handled alone), else whether their completion is stored (so they may be acknowledged).
    async fn handled_as_batch(&self, claimed: &[Delivery]) -> Option<bool> {
        if claimed.is_empty() {
            return None;
        }
        let group = &self.config.group;
        let events: Vec<_> = claimed.iter().map(|d| d.event.clone()).collect();
        match self.handler.handle_batch(&events).await? {
            Err(error) => {
                tracing::debug!(%group, count = events.len(), %error, "batch failed; handling its events one by one");
                None
            }
            Ok(()) => {
                for event in &events {
                    self.metrics.handled(event);
                }
                let ids: Vec<EventId> = events.iter().map(|event| event.id.clone()).collect();
                match self.bus.complete_many(group, &ids).await {
                    Ok(()) => Some(true),
                    Err(error) => {
                        tracing::warn!(%group, count = ids.len(), %error, "batch completion failed");
                        Some(false)
                    }
                }
            }
        }
    }

    async fn handle(&self, delivery: Delivery, outcome: &mut Outcome) {
        let group = &self.config.group;
        match self.handler.handle(&delivery.event).await {
            Ok(()) => {
                self.metrics.handled(&delivery.event);
                let bus = Arc::clone(&self.bus);
                let (group, id) = (group.clone(), delivery.event.id.clone());
                let completion = tokio::spawn(async move { bus.complete(&group, &id).await });
                outcome.completing.push((delivery, completion));
            }
            Err(error) => {
                if let Err(e) = self.bus.release(group, &delivery.event.id).await {
                    tracing::warn!(%group, event = %delivery.event.id, error = %e, "claim release failed");
                }
                let last = matches!(error, HandlerError::Permanent(_)) || delivery.attempt >= self.config.max_attempts;
                if last {
                    self.metrics.dead.increment(1);
                    tracing::warn!(%group, event = %delivery.event.id, attempt = delivery.attempt, %error, "event dead-lettered");
                    if let Err(e) = self.bus.dead_letter(group, &delivery, &error.to_string()).await {
                        tracing::error!(%group, event = %delivery.event.id, error = %e, "dead letter failed");
                    }
                } else {
                    let delay = backoff::delay(self.config.backoff_base, self.config.backoff_max, delivery.attempt);
                    self.retry(&delivery, &error.to_string(), delay).await;
                }
            }
        }
    }

    async fn retry(&self, delivery: &Delivery, error: &str, delay: Duration) {
        self.metrics.retry.increment(1);
        if let Err(e) = self.bus.retry_later(&self.config.group, delivery, error, delay).await {
            // Still pending: reclaimed after `reclaim_after`.
            tracing::warn!(group = %self.config.group, event = %delivery.event.id, error = %e, "retry scheduling failed");
        }
    }

    /// Deliveries of the batch not started before a stop: claims dropped and made available at once, rather
    /// than left pending until `reclaim_after`.
    async fn hand_back(&self, rest: Vec<(Delivery, BusResult<Claim>)>) {
        let group = &self.config.group;
        for (delivery, claim) in rest {
            if matches!(claim, Ok(Claim::Claimed)) {
                let _ = self.bus.release(group, &delivery.event.id).await;
            }
            if let Err(e) = self.bus.retry_later(group, &delivery, "consumer stopped", Duration::ZERO).await {
                tracing::warn!(%group, event = %delivery.event.id, error = %e, "hand-back failed");
            }
        }
    }

    async fn acknowledge(&self, outcome: Outcome) {
        let group = &self.config.group;
        let mut ack = outcome.ack;
        for (delivery, completion) in outcome.completing {
            match completion.await {
                Ok(Ok(())) => ack.push(delivery),
                // Not acknowledged: redelivered later, and handled again since nothing recorded it as done.
                Ok(Err(e)) => tracing::warn!(%group, event = %delivery.event.id, error = %e, "completion failed"),
                Err(e) => tracing::warn!(%group, event = %delivery.event.id, error = %e, "completion task failed"),
            }
        }
        if let Err(e) = self.bus.ack(group, &ack).await {
            tracing::warn!(%group, count = ack.len(), error = %e, "acknowledgement failed; events will be redelivered");
        }
    }
}

fn is_duplicate(claim: &BusResult<Claim>, delivery: &Delivery) -> bool {
    match claim {
        Ok(Claim::AlreadyHandled) => true,
        Ok(Claim::InProgress) => delivery.attempt <= 1,
        _ => false,
    }
}
