//! The login throttle's counters for both engines. A failure is one upsert per counter, so two replicas
//! counting at once both land; the window is applied in the statement (a stale counter starts over).

use rsp_core::UnixTime;
use rsp_core::ports::StoreResult;

use crate::rows::corrupt;

pub(crate) fn count(value: i64) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt("login failure count"))
}

pub(crate) fn at(value: i64) -> UnixTime {
    UnixTime(value)
}

/// Implements `LoginFailureStore` for `$store` (see [`crate::engines`] for what it must provide).
macro_rules! login_failure_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl rsp_core::ports::LoginFailureStore for $store {
            async fn login_failures(
                &self,
                tenant: &rsp_core::TenantId,
                keys: &[&str],
                since: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<Vec<(String, u32, rsp_core::UnixTime)>> {
                let mut found = Vec::with_capacity(keys.len());
                for key in keys {
                    let row: Option<(i64, i64)> = sqlx::query_as(
                        "SELECT failures, last_failure_at FROM login_failures \
                         WHERE tenant_id = $1 AND throttle_key = $2 AND last_failure_at > $3",
                    )
                    .bind(tenant.as_str())
                    .bind(*key)
                    .bind(since.0)
                    .fetch_optional(self.primary())
                    .await
                    .map_err($crate::rows::db_error)?;
                    if let Some((failures, last)) = row {
                        let failures = $crate::engines::login_failures::count(failures)?;
                        found.push(((*key).to_owned(), failures, $crate::engines::login_failures::at(last)));
                    }
                }
                Ok(found)
            }

            async fn record_login_failure(
                &self,
                tenant: &rsp_core::TenantId,
                keys: &[&str],
                now: rsp_core::UnixTime,
                since: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<Vec<u32>> {
                let mut tx = self.write_tx().await?;
                let mut counts = Vec::with_capacity(keys.len());
                for key in keys {
                    let failures: i64 = sqlx::query_scalar(
                        "INSERT INTO login_failures (tenant_id, throttle_key, failures, last_failure_at) \
                         VALUES ($1, $2, 1, $3) ON CONFLICT (tenant_id, throttle_key) DO UPDATE SET \
                         failures = CASE WHEN login_failures.last_failure_at > $4 \
                         THEN login_failures.failures + 1 ELSE 1 END, last_failure_at = $3 RETURNING failures",
                    )
                    .bind(tenant.as_str())
                    .bind(*key)
                    .bind(now.0)
                    .bind(since.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                    counts.push($crate::engines::login_failures::count(failures)?);
                }
                self.commit_with_events(tx, &[]).await?;
                Ok(counts)
            }

            async fn clear_login_failures(
                &self,
                tenant: &rsp_core::TenantId,
                keys: &[&str],
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                for key in keys {
                    sqlx::query("DELETE FROM login_failures WHERE tenant_id = $1 AND throttle_key = $2")
                        .bind(tenant.as_str())
                        .bind(*key)
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::rows::db_error)?;
                }
                self.commit_with_events(tx, &[]).await
            }

            async fn purge_login_failures(&self, since: rsp_core::UnixTime) -> rsp_core::ports::StoreResult<u64> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM login_failures WHERE last_failure_at <= $1")
                    .bind(since.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use login_failure_store;
