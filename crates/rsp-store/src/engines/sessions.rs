//! Browser sessions and pending authorization requests, for both engines. Reads go to the primary: the
//! request right after a login must find the session it created, whatever the replica lag.

use rsp_core::ports::StoreResult;
use rsp_core::session::{BrowserSession, PendingAuthorization};
use rsp_core::{TenantId, UnixTime, UserId};

use crate::rows::{Columns, corrupt, list_from_json};

pub(crate) fn session_from_row(row: &impl Columns) -> StoreResult<BrowserSession> {
    Ok(BrowserSession {
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        session_hash: row.text("session_hash")?,
        user_id: UserId::parse(row.text("user_id")?).map_err(|_| corrupt("user id"))?,
        auth_time: UnixTime(row.int("auth_time")?),
        amr: list_from_json(&row.text("amr")?)?,
        created_at: UnixTime(row.int("created_at")?),
        expires_at: UnixTime(row.int("expires_at")?),
    })
}

pub(crate) fn pending_from_row(row: &impl Columns) -> StoreResult<PendingAuthorization> {
    Ok(PendingAuthorization {
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        pending_hash: row.text("pending_hash")?,
        params: row.text("params")?,
        expires_at: UnixTime(row.int("expires_at")?),
    })
}

/// Implements `SessionStore` for `$store` (see [`crate::engines`] for what it must provide).
macro_rules! session_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl rsp_core::ports::SessionStore for $store {
            async fn create_session(
                &self,
                session: &rsp_core::session::BrowserSession,
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO browser_sessions (tenant_id, session_hash, user_id, auth_time, amr, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(session.tenant_id.as_str())
                .bind(session.session_hash.as_str())
                .bind(session.user_id.as_str())
                .bind(session.auth_time.0)
                .bind($crate::rows::list_to_json(&session.amr))
                .bind(session.created_at.0)
                .bind(session.expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await
            }

            async fn find_session(
                &self,
                tenant: &rsp_core::TenantId,
                session_hash: &str,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::session::BrowserSession>> {
                let row = sqlx::query(
                    "SELECT * FROM browser_sessions WHERE tenant_id = $1 AND session_hash = $2 AND expires_at > $3",
                )
                .bind(tenant.as_str())
                .bind(session_hash)
                .bind(now.0)
                .fetch_optional(self.primary())
                .await
                .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::engines::sessions::session_from_row).transpose()
            }

            async fn delete_session(
                &self,
                tenant: &rsp_core::TenantId,
                session_hash: &str,
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM browser_sessions WHERE tenant_id = $1 AND session_hash = $2")
                    .bind(tenant.as_str())
                    .bind(session_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(())
            }

            async fn delete_user_sessions(
                &self,
                tenant: &rsp_core::TenantId,
                user: &rsp_core::UserId,
            ) -> rsp_core::ports::StoreResult<u64> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM browser_sessions WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(done.rows_affected())
            }

            async fn save_pending(
                &self,
                pending: &rsp_core::session::PendingAuthorization,
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO pending_authorizations (tenant_id, pending_hash, params, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(pending.tenant_id.as_str())
                .bind(pending.pending_hash.as_str())
                .bind(pending.params.as_str())
                .bind(pending.expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(())
            }

            async fn find_pending(
                &self,
                tenant: &rsp_core::TenantId,
                pending_hash: &str,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::session::PendingAuthorization>> {
                let row = sqlx::query(
                    "SELECT * FROM pending_authorizations WHERE tenant_id = $1 AND pending_hash = $2 \
                     AND expires_at > $3",
                )
                .bind(tenant.as_str())
                .bind(pending_hash)
                .bind(now.0)
                .fetch_optional(self.primary())
                .await
                .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::engines::sessions::pending_from_row).transpose()
            }

            async fn delete_pending(
                &self,
                tenant: &rsp_core::TenantId,
                pending_hash: &str,
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query("DELETE FROM pending_authorizations WHERE tenant_id = $1 AND pending_hash = $2")
                    .bind(tenant.as_str())
                    .bind(pending_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(())
            }

            async fn purge_expired_sessions(&self, now: rsp_core::UnixTime) -> rsp_core::ports::StoreResult<u64> {
                let mut tx = self.write_tx().await?;
                let sessions = sqlx::query("DELETE FROM browser_sessions WHERE expires_at <= $1")
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                let pending = sqlx::query("DELETE FROM pending_authorizations WHERE expires_at <= $1")
                    .bind(now.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(sessions.rows_affected().saturating_add(pending.rows_affected()))
            }
        }
    };
}

pub(crate) use session_store;
