//! The `EventBus` port over either engine, written once: what differs between them is behind a few
//! inherent methods of each bus, and everything else is the same code over [`super::statements`].

/// Runs `$statement`, a DELETE whose parameters are the `$bind`s and then a batch size, until a run deletes
/// less than a batch, so that no statement holds its locks (SQLite's: the one write lock) for long.
/// Evaluates to the rows deleted, or returns the error as unavailable.
macro_rules! delete_in_batches {
    ($pool:expr, $statement:expr $(, $bind:expr)*) => {{
        let mut deleted = 0;
        loop {
            let done = sqlx::query($statement)
                $(.bind($bind))*
                .bind($crate::sql_bus::TRIM_BATCH)
                .execute($pool)
                .await
                .map_err($crate::sql_bus::unavailable)?;
            deleted += done.rows_affected();
            if done.rows_affected() < $crate::sql_bus::TRIM_BATCH.unsigned_abs() {
                break deleted;
            }
        }
    }};
}

pub(crate) use delete_in_batches;

/// Implements `EventBus`, and the public `trim` and `trim_dead_letters`, for `$bus`, a struct with a `pool`
/// and `groups` ([`super::KnownGroups`]) field, whose connections are `$conn`. Besides its `RECLAIM`, `DUE`,
/// `NEW`, `STATS_HELD`, `STATS_ALL` and `OLDEST_ALL` statements and a `bury(connection, group, seq, attempt,
/// error, now)` function in scope, the engine provides:
/// - `receive_once(group, consumer, max, reclaim_after)`: one receive, calling `claim_in` in its transaction;
/// - `publish_events(events)`, with `events` not empty;
/// - `ack_seqs(group, seqs)`: deletes the deliveries of those receipts;
/// - `bury(group, seq, attempt, error, now)`: moves a delivery still at `attempt` to the dead letters;
/// - `try_claim(group, event, until_ms, now)`: the outcome code of [`super::claim_outcome`];
/// - `try_claim_many(group, events, until_ms, now)`: the same for several events in one transaction;
/// - `write()`: a write transaction;
/// - `snapshot()`: a read transaction whose statements all see one moment;
/// - `written_watch()`: where every writer announces its events ([`super::Written`]), a watch of them.
///
/// A macro rather than generic functions: the port is declared in `rsp_core`, and bounds over
/// `sqlx::Database` for every bound type and executor would hide the SQL they serve.
macro_rules! event_bus_port {
    ($bus:ty, $conn:ty) => {
        impl $bus {
            /// Claims idle pending rows, then due retries, then new rows, `max` in all, through `tx`. Rows
            /// that cannot be delivered go to the dead letters in the same transaction.
            async fn claim_in(
                tx: &mut $conn,
                group: &str,
                consumer: &str,
                max: usize,
                now: i64,
                idle_since: i64,
            ) -> rsp_core::bus::BusResult<Vec<rsp_core::bus::Delivery>> {
                use $crate::sql_bus::{self, ClaimedRow, limit, unavailable};
                let mut out = Vec::new();
                for (statement, threshold) in [(RECLAIM, idle_since), (DUE, now), (NEW, now)] {
                    if out.len() >= max {
                        break;
                    }
                    let rows = sqlx::query(statement)
                        .bind(group)
                        .bind(consumer)
                        .bind(now)
                        .bind(threshold)
                        .bind(limit(max - out.len()))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(unavailable)?;
                    let rows = rows.iter().map(ClaimedRow::from_row).collect::<Result<Vec<_>, _>>()?;
                    let (ready, broken) = sql_bus::decode(rows);
                    for row in broken {
                        sql_bus::log_broken(group, &row);
                        bury(&mut *tx, group, row.seq, row.attempt, &row.reason, now).await?;
                    }
                    out.extend(ready);
                }
                Ok(out)
            }

            /// Deletes events older than `older_than_ms` that every group has acknowledged (the analogue of a
            /// stream's MAXLEN), and handled marks past their day. Returns how many events went.
            pub async fn trim(&self, older_than_ms: u64) -> rsp_core::bus::BusResult<u64> {
                use $crate::sql_bus::statements::{TRIM, TRIM_HANDLED};
                use $crate::sql_bus::{now_ms, unavailable};
                let now = now_ms();
                let cutoff = now.saturating_sub(i64::try_from(older_than_ms).unwrap_or(i64::MAX));
                let deleted = $crate::sql_bus::port::delete_in_batches!(&self.pool, TRIM, cutoff);
                sqlx::query(TRIM_HANDLED).bind(now).execute(&self.pool).await.map_err(unavailable)?;
                Ok(deleted)
            }

            /// Keeps each group's newest `kept_per_group` dead letters and deletes the rest (the analogue of
            /// the capped dead-letter streams of the Redis bus), so a handler that fails forever cannot fill
            /// the disk. Returns how many went.
            pub async fn trim_dead_letters(&self, kept_per_group: u64) -> rsp_core::bus::BusResult<u64> {
                use $crate::sql_bus::statements::{DEAD_LETTER_GROUPS, TRIM_DEAD_LETTERS};
                use $crate::sql_bus::unavailable;
                let kept = i64::try_from(kept_per_group).unwrap_or(i64::MAX);
                let groups: Vec<(String,)> =
                    sqlx::query_as(DEAD_LETTER_GROUPS).fetch_all(&self.pool).await.map_err(unavailable)?;
                let mut deleted = 0;
                for (group,) in groups {
                    deleted += $crate::sql_bus::port::delete_in_batches!(&self.pool, TRIM_DEAD_LETTERS, &group, kept);
                }
                Ok(deleted)
            }
        }

        #[async_trait::async_trait]
        impl rsp_core::bus::EventBus for $bus {
            async fn publish(&self, events: &[rsp_core::event::Event]) -> rsp_core::bus::BusResult<()> {
                if events.is_empty() {
                    return Ok(());
                }
                self.publish_events(events).await
            }

            async fn receive(
                &self,
                group: &str,
                consumer: &str,
                max: usize,
                wait: std::time::Duration,
                reclaim_after: std::time::Duration,
            ) -> rsp_core::bus::BusResult<Vec<rsp_core::bus::Delivery>> {
                if max == 0 {
                    return Ok(Vec::new());
                }
                let mut poll = $crate::sql_bus::Poll::new(wait, self.written_watch());
                loop {
                    let deliveries = self.receive_once(group, consumer, max, reclaim_after).await?;
                    if !deliveries.is_empty() || !poll.pause().await {
                        return Ok(deliveries);
                    }
                }
            }

            async fn ack(&self, group: &str, deliveries: &[rsp_core::bus::Delivery]) -> rsp_core::bus::BusResult<()> {
                if deliveries.is_empty() {
                    return Ok(());
                }
                let seqs = deliveries.iter().map($crate::sql_bus::receipt_seq).collect::<Result<Vec<i64>, _>>()?;
                self.ack_seqs(group, seqs).await
            }

            async fn retry_later(
                &self,
                group: &str,
                delivery: &rsp_core::bus::Delivery,
                error: &str,
                delay: std::time::Duration,
            ) -> rsp_core::bus::BusResult<()> {
                use $crate::sql_bus::{attempt_of, millis, now_ms, receipt_seq, unavailable};
                sqlx::query($crate::sql_bus::statements::RETRY)
                    .bind(group)
                    .bind(receipt_seq(delivery)?)
                    .bind(attempt_of(delivery))
                    .bind(now_ms().saturating_add(millis(delay)))
                    .bind(error)
                    .execute(&self.pool)
                    .await
                    .map_err(unavailable)?;
                Ok(())
            }

            async fn dead_letter(
                &self,
                group: &str,
                delivery: &rsp_core::bus::Delivery,
                error: &str,
            ) -> rsp_core::bus::BusResult<()> {
                let seq = $crate::sql_bus::receipt_seq(delivery)?;
                self.bury(group, seq, $crate::sql_bus::attempt_of(delivery), error, $crate::sql_bus::now_ms()).await
            }

            async fn claim(
                &self,
                group: &str,
                event: &rsp_core::event::EventId,
                lease: std::time::Duration,
            ) -> rsp_core::bus::BusResult<rsp_core::bus::Claim> {
                let now = $crate::sql_bus::now_ms();
                let until_ms = now.saturating_add($crate::sql_bus::millis(lease));
                Ok($crate::sql_bus::claim_outcome(self.try_claim(group, event, until_ms, now).await?))
            }

            async fn claim_many(
                &self,
                group: &str,
                events: &[rsp_core::event::EventId],
                lease: std::time::Duration,
            ) -> Vec<rsp_core::bus::BusResult<rsp_core::bus::Claim>> {
                let now = $crate::sql_bus::now_ms();
                let until_ms = now.saturating_add($crate::sql_bus::millis(lease));
                match self.try_claim_many(group, events, until_ms, now).await {
                    Ok(codes) => codes.into_iter().map(|code| Ok($crate::sql_bus::claim_outcome(code))).collect(),
                    // Nothing was claimed: every event stays pending and is received again later.
                    Err(error) => {
                        let reason = error.to_string();
                        events.iter().map(|_| Err(rsp_core::bus::BusError::Unavailable(reason.clone()))).collect()
                    }
                }
            }

            async fn complete_many(
                &self,
                group: &str,
                events: &[rsp_core::event::EventId],
            ) -> rsp_core::bus::BusResult<()> {
                let until_ms = $crate::sql_bus::now_ms().saturating_add($crate::sql_bus::HANDLED_FOR_MS);
                let mut tx = self.write().await?;
                for event in events {
                    sqlx::query($crate::sql_bus::statements::COMPLETE)
                        .bind(group)
                        .bind(event.as_str())
                        .bind(until_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::sql_bus::unavailable)?;
                }
                tx.commit().await.map_err($crate::sql_bus::unavailable)
            }

            async fn complete(&self, group: &str, event: &rsp_core::event::EventId) -> rsp_core::bus::BusResult<()> {
                self.complete_many(group, std::slice::from_ref(event)).await
            }

            async fn release(&self, group: &str, event: &rsp_core::event::EventId) -> rsp_core::bus::BusResult<()> {
                sqlx::query($crate::sql_bus::statements::RELEASE)
                    .bind(group)
                    .bind(event.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err($crate::sql_bus::unavailable)?;
                Ok(())
            }

            async fn dead_letters(
                &self,
                group: &str,
                max: usize,
            ) -> rsp_core::bus::BusResult<Vec<rsp_core::bus::DeadLetter>> {
                let rows = sqlx::query($crate::sql_bus::statements::DEAD_LETTERS)
                    .bind(group)
                    .bind($crate::sql_bus::limit(max))
                    .fetch_all(&self.pool)
                    .await
                    .map_err($crate::sql_bus::unavailable)?;
                let letters = rows.iter().map(|row| $crate::sql_bus::dead_letter_from_row(group, row));
                Ok(letters.collect::<Result<Vec<_>, _>>()?.into_iter().flatten().collect())
            }

            async fn stats(&self, group: &str) -> rsp_core::bus::BusResult<rsp_core::bus::BusStats> {
                use $crate::sql_bus::statements::{GROUP_EXISTS, OLDEST_HELD, STATS_DEAD};
                use $crate::sql_bus::unavailable;
                let now = $crate::sql_bus::now_ms();
                // One snapshot for every count, so they describe the same moment.
                let mut tx = self.snapshot().await?;
                let exists: i64 =
                    sqlx::query_scalar(GROUP_EXISTS).bind(group).fetch_one(&mut *tx).await.map_err(unavailable)?;
                let (held, oldest) = if exists > 0 { (STATS_HELD, OLDEST_HELD) } else { (STATS_ALL, OLDEST_ALL) };
                let mut stats = $crate::sql_bus::StatsBuilder::default();
                for row in sqlx::query(held).bind(group).fetch_all(&mut *tx).await.map_err(unavailable)? {
                    stats.add_row(&row)?;
                }
                let oldest = sqlx::query_scalar(oldest).bind(group).fetch_optional(&mut *tx);
                stats.oldest(oldest.await.map_err(unavailable)?);
                let dead = sqlx::query_scalar(STATS_DEAD).bind(group).fetch_one(&mut *tx);
                stats.dead_letters(dead.await.map_err(unavailable)?);
                tx.commit().await.map_err(unavailable)?;
                Ok(stats.finish(now))
            }
        }
    };
}

pub(crate) use event_bus_port;
