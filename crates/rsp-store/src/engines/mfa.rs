//! Second factors for both engines: TOTP enrolments, recovery codes and login challenges. The rules that
//! must hold across replicas are single conditional statements: a time step is accepted by the `UPDATE`
//! whose `last_used_step < $step` guard matched, a recovery code by the `DELETE` that removed it.

use rsp_core::mfa::{MfaChallenge, TotpEnrolment};
use rsp_core::ports::StoreResult;
use rsp_core::{TenantId, UnixTime, UserId};

use crate::rows::{Columns, corrupt};

pub(crate) fn enrolment_from_row(row: &impl Columns) -> StoreResult<TotpEnrolment> {
    Ok(TotpEnrolment {
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        user_id: UserId::parse(row.text("user_id")?).map_err(|_| corrupt("user id"))?,
        secret_sealed: row.bytes("secret_sealed")?,
        created_at: UnixTime(row.int("created_at")?),
        confirmed_at: row.opt_int("confirmed_at")?.map(UnixTime),
        last_used_step: row.opt_int("last_used_step")?,
        failed_attempts: u32::try_from(row.int("failed_attempts")?).map_err(|_| corrupt("failed attempts"))?,
        last_failure_at: row.opt_int("last_failure_at")?.map(UnixTime),
    })
}

pub(crate) fn challenge_from_row(row: &impl Columns) -> StoreResult<MfaChallenge> {
    Ok(MfaChallenge {
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        challenge_hash: row.text("challenge_hash")?,
        user_id: UserId::parse(row.text("user_id")?).map_err(|_| corrupt("user id"))?,
        auth_time: UnixTime(row.int("auth_time")?),
        expires_at: UnixTime(row.int("expires_at")?),
    })
}

pub(crate) fn failures(value: i64) -> StoreResult<u32> {
    u32::try_from(value).map_err(|_| corrupt("failed attempts"))
}

/// Implements `MfaStore` for `$store` (see [`crate::engines`] for what it must provide).
macro_rules! mfa_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl rsp_core::ports::MfaStore for $store {
            async fn save_pending_totp(
                &self,
                enrolment: &rsp_core::mfa::TotpEnrolment,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "INSERT INTO user_totp (tenant_id, user_id, secret_sealed, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, \
                     created_at = excluded.created_at, last_used_step = NULL, failed_attempts = 0, \
                     last_failure_at = NULL WHERE user_totp.confirmed_at IS NULL",
                )
                .bind(enrolment.tenant_id.as_str())
                .bind(enrolment.user_id.as_str())
                .bind(enrolment.secret_sealed.as_slice())
                .bind(enrolment.created_at.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                if done.rows_affected() == 0 {
                    return Err(rsp_core::StoreError::Conflict("TOTP is already enabled".into()));
                }
                self.commit_with_events(tx, events).await
            }

            async fn find_totp(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::mfa::TotpEnrolment>> {
                let row = sqlx::query("SELECT * FROM user_totp WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .fetch_optional(self.primary())
                    .await
                    .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::engines::mfa::enrolment_from_row).transpose()
            }

            async fn confirm_totp(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
                step: i64,
                recovery_hashes: &[String],
                display_sealed: &[u8],
                now: rsp_core::UnixTime,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE user_totp SET confirmed_at = $3, last_used_step = $4, failed_attempts = 0, \
                     last_failure_at = NULL, recovery_display_sealed = $5 \
                     WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NULL",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(now.0)
                .bind(step)
                .bind(display_sealed)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query("DELETE FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                for hash in recovery_hashes {
                    sqlx::query("INSERT INTO user_recovery_codes (tenant_id, user_id, code_hash) VALUES ($1, $2, $3)")
                        .bind(tenant.as_str())
                        .bind(user.as_str())
                        .bind(hash.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err($crate::rows::db_error)?;
                }
                self.commit_with_events(tx, events).await?;
                Ok(true)
            }

            async fn use_totp_step(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
                step: i64,
            ) -> rsp_core::ports::StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE user_totp SET last_used_step = $3, failed_attempts = 0, last_failure_at = NULL \
                     WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NOT NULL \
                     AND (last_used_step IS NULL OR last_used_step < $3)",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(step)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_totp_failure(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<u32> {
                let mut tx = self.write_tx().await?;
                let count: Option<i64> = sqlx::query_scalar(
                    "UPDATE user_totp SET failed_attempts = failed_attempts + 1, last_failure_at = $3 \
                     WHERE tenant_id = $1 AND user_id = $2 RETURNING failed_attempts",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                $crate::engines::mfa::failures(count.unwrap_or(0))
            }

            async fn use_recovery_code(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
                code_hash: &str,
            ) -> rsp_core::ports::StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "DELETE FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND code_hash = $3",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .bind(code_hash)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                if done.rows_affected() == 1 {
                    sqlx::query(
                        "UPDATE user_totp SET failed_attempts = 0, last_failure_at = NULL \
                         WHERE tenant_id = $1 AND user_id = $2",
                    )
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                }
                self.commit_with_events(tx, &[]).await?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_recovery_codes(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
            ) -> rsp_core::ports::StoreResult<u64> {
                let count: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2")
                        .bind(tenant.as_str())
                        .bind(user.as_str())
                        .fetch_one(self.primary())
                        .await
                        .map_err($crate::rows::db_error)?;
                $crate::rows::to_u64(count, "recovery code count")
            }

            async fn take_recovery_display(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
            ) -> rsp_core::ports::StoreResult<Option<Vec<u8>>> {
                let mut tx = self.write_tx().await?;
                let sealed: Option<Option<Vec<u8>>> = sqlx::query_scalar(
                    "SELECT recovery_display_sealed FROM user_totp WHERE tenant_id = $1 AND user_id = $2",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                let Some(sealed) = sealed.flatten() else { return Ok(None) };
                // The guard makes a racing reader that saw the same value lose here.
                let done = sqlx::query(
                    "UPDATE user_totp SET recovery_display_sealed = NULL WHERE tenant_id = $1 AND user_id = $2 \
                     AND recovery_display_sealed IS NOT NULL",
                )
                .bind(tenant.as_str())
                .bind(user.as_str())
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok((done.rows_affected() == 1).then_some(sealed))
            }

            async fn delete_totp(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM user_recovery_codes WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                let done = sqlx::query("DELETE FROM user_totp WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                self.commit_with_events(tx, events).await?;
                Ok(true)
            }

            async fn save_mfa_challenge(
                &self,
                challenge: &rsp_core::mfa::MfaChallenge,
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO mfa_challenges (tenant_id, challenge_hash, user_id, auth_time, expires_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, challenge_hash) DO UPDATE SET \
                     user_id = excluded.user_id, auth_time = excluded.auth_time, expires_at = excluded.expires_at",
                )
                .bind(challenge.tenant_id.as_str())
                .bind(challenge.challenge_hash.as_str())
                .bind(challenge.user_id.as_str())
                .bind(challenge.auth_time.0)
                .bind(challenge.expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await
            }

            async fn find_mfa_challenge(
                &self,
                tenant: &rsp_core::TenantId,
                challenge_hash: &str,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::mfa::MfaChallenge>> {
                let row = sqlx::query(
                    "SELECT * FROM mfa_challenges WHERE tenant_id = $1 AND challenge_hash = $2 AND expires_at > $3",
                )
                .bind(tenant.as_str())
                .bind(challenge_hash)
                .bind(now.0)
                .fetch_optional(self.primary())
                .await
                .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::engines::mfa::challenge_from_row).transpose()
            }

            async fn delete_mfa_challenge(
                &self,
                tenant: &rsp_core::TenantId,
                challenge_hash: &str,
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM mfa_challenges WHERE tenant_id = $1 AND challenge_hash = $2")
                    .bind(tenant.as_str())
                    .bind(challenge_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await
            }

            async fn purge_expired_mfa_challenges(
                &self,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<u64> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM mfa_challenges WHERE expires_at <= $1")
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use mfa_store;
