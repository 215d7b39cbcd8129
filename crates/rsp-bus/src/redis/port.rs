//! [`RedisStreamsBus`] as the [`EventBus`] port: each call is one command, one pipeline or one script.

use std::time::Duration;

use async_trait::async_trait;
use redis::streams::StreamRangeReply;
use rsp_core::bus::{BusError, BusResult, BusStats, Claim, DeadLetter, Delivery, EventBus};
use rsp_core::{Event, EventId};

use super::keys::Receipt;
use super::reply::{self, RawEntry, bus_error};
use super::{RedisStreamsBus, check_names, millis, scripts};

#[async_trait]
impl EventBus for RedisStreamsBus {
    async fn publish(&self, events: &[Event]) -> BusResult<()> {
        self.supported().await?;
        if events.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for event in events {
            pipe.cmd("XADD")
                .arg(self.keys.events(event.priority))
                .arg("MAXLEN")
                .arg("~")
                .arg(self.max_len)
                .arg("*")
                .arg("event")
                .arg(event.to_json())
                .ignore();
        }
        pipe.query_async::<()>(&mut self.connection.clone()).await.map_err(bus_error)
    }

    async fn receive(
        &self,
        group: &str,
        consumer: &str,
        max: usize,
        wait: Duration,
        reclaim_after: Duration,
    ) -> BusResult<Vec<Delivery>> {
        self.supported().await?;
        check_names(group, Some(consumer))?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let kept = self.take_surplus(group, consumer, max);
        if !kept.is_empty() {
            return Ok(kept);
        }
        let keys = self.keys.group(group);
        let scan = if self.reclaim_scan_due(group, reclaim_after) { "1" } else { "0" };
        let args = [group.to_owned(), consumer.to_owned(), max.to_string(), millis(reclaim_after), scan.to_owned()];
        let (next_due_ms, raw): (i64, Vec<RawEntry>) =
            self.group_script(group, &keys, &scripts::RECEIVE, &args).await?;
        let found_any = !raw.is_empty();
        let (deliveries, unreadable) = reply::deliveries(raw);
        self.bury(group, &keys, unreadable).await?;
        if found_any || wait.is_zero() {
            return Ok(deliveries);
        }
        let block = match u64::try_from(next_due_ms) {
            Ok(due) => wait.min(Duration::from_millis(due)),
            Err(_) => wait,
        };
        self.wait_for_new(group, consumer, &keys, max, block).await
    }

    async fn ack(&self, group: &str, deliveries: &[Delivery]) -> BusResult<()> {
        self.supported().await?;
        check_names(group, None)?;
        if deliveries.is_empty() {
            return Ok(());
        }
        let mut args = Vec::with_capacity(1 + 2 * deliveries.len());
        args.push(group.to_owned());
        for delivery in deliveries {
            let receipt = Receipt::parse(&delivery.receipt)?;
            args.push(receipt.slot.to_string());
            args.push(receipt.id);
        }
        let keys = self.keys.group(group);
        let mut invocation = scripts::ACK.prepare_invoke();
        invocation.key(keys.streams()).arg(args);
        invocation.invoke_async::<i64>(&mut self.connection.clone()).await.map(drop).map_err(bus_error)
    }

    async fn retry_later(&self, group: &str, delivery: &Delivery, error: &str, delay: Duration) -> BusResult<()> {
        self.supported().await?;
        check_names(group, None)?;
        let receipt = Receipt::parse(&delivery.receipt)?;
        tracing::debug!(group, event = %delivery.event.id, attempt = delivery.attempt, error, "retry scheduled");
        let args = [
            group.to_owned(),
            receipt.slot.to_string(),
            receipt.id,
            millis(delay),
            delivery.attempt.saturating_add(1).to_string(),
            delivery.event.to_json(),
        ];
        let keys = self.keys.group(group);
        self.group_script::<i64>(group, &keys, &scripts::RETRY, &args).await.map(drop)
    }

    async fn dead_letter(&self, group: &str, delivery: &Delivery, error: &str) -> BusResult<()> {
        self.supported().await?;
        check_names(group, None)?;
        let receipt = Receipt::parse(&delivery.receipt)?;
        let keys = self.keys.group(group);
        self.move_to_dead(group, &keys, &receipt, delivery.event.to_json(), error, delivery.attempt).await
    }

    async fn claim(&self, group: &str, event: &EventId, lease: Duration) -> BusResult<Claim> {
        self.supported().await?;
        check_names(group, None)?;
        let lease_ms = u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1);
        // `SET NX GET` (Redis 7): one round trip both claims and tells why a claim was refused.
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.handled(group, event)).arg("claimed").arg("NX").arg("PX").arg(lease_ms).arg("GET");
        let answer = self.batcher.query(cmd).await.map_err(bus_error)?;
        let previous: Option<String> = redis::from_redis_value(answer)
            .map_err(|e| BusError::Malformed { id: event.to_string(), reason: e.to_string() })?;
        Ok(match previous.as_deref() {
            None => Claim::Claimed,
            Some("done") => Claim::AlreadyHandled,
            Some(_) => Claim::InProgress,
        })
    }

    async fn complete(&self, group: &str, event: &EventId) -> BusResult<()> {
        self.supported().await?;
        check_names(group, None)?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.handled(group, event)).arg("done").arg("EX").arg(self.handled_ttl_secs);
        self.batcher.query(cmd).await.map(drop).map_err(bus_error)
    }

    /// All at once: the batcher pipelines the concurrent `SET`s into one round trip.
    async fn claim_many(&self, group: &str, events: &[EventId], lease: Duration) -> Vec<BusResult<Claim>> {
        futures_util::future::join_all(events.iter().map(|event| self.claim(group, event, lease))).await
    }

    async fn complete_many(&self, group: &str, events: &[EventId]) -> BusResult<()> {
        let done = futures_util::future::join_all(events.iter().map(|event| self.complete(group, event))).await;
        done.into_iter().collect()
    }

    async fn release(&self, group: &str, event: &EventId) -> BusResult<()> {
        self.supported().await?;
        check_names(group, None)?;
        let mut invocation = scripts::RELEASE.prepare_invoke();
        invocation.key(self.keys.handled(group, event));
        invocation.invoke_async::<i64>(&mut self.connection.clone()).await.map(drop).map_err(bus_error)
    }

    async fn dead_letters(&self, group: &str, limit: usize) -> BusResult<Vec<DeadLetter>> {
        self.supported().await?;
        check_names(group, None)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(self.keys.dead(group))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(bus_error)?;
        Ok(reply.ids.iter().filter_map(reply::dead_letter).collect())
    }

    async fn stats(&self, group: &str) -> BusResult<BusStats> {
        self.supported().await?;
        check_names(group, None)?;
        let keys = self.keys.group(group);
        let values: Vec<i64> = self.group_script(group, &keys, &scripts::STATS, &[group.to_owned()]).await?;
        reply::stats(&values)
    }
}
