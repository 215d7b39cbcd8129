//! Signing keys and revocations over SQLite.

use async_trait::async_trait;
use rsp_core::context::note_write;
use rsp_core::ports::{KeyStore, RevocationStore, StoreResult};
use rsp_core::{Event, KeyId, StoredKey, TenantId, TokenId, UnixTime};
use sqlx::Sqlite;
use sqlx::query::Query;
use sqlx::sqlite::SqliteArguments;

use super::{SqliteStore, outbox, unavailable};
use crate::rows::{Columns, key_from_row};

/// The insert of one signing key, bound and ready to run in the caller's transaction.
pub(super) fn insert_key(key: &StoredKey) -> Query<'_, Sqlite, SqliteArguments> {
    sqlx::query(
        "INSERT INTO signing_keys (tenant_id, kid, alg, status, created_at, retired_at, publish_until, \
         max_token_ttl_secs, public_jwk, sealed_private_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(key.tenant_id.as_str())
    .bind(key.kid.as_str())
    .bind(key.alg.as_str())
    .bind(key.status.as_str())
    .bind(key.created_at.0)
    .bind(key.retired_at.map(|t| t.0))
    .bind(key.publish_until.map(|t| t.0))
    .bind(key.max_token_ttl_secs)
    .bind(key.public_jwk.as_str())
    .bind(key.sealed_private_key.as_slice())
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn published_keys(&self, tenant: &TenantId, now: UnixTime) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys WHERE tenant_id = ? AND (status = 'active' OR publish_until > ?) \
             ORDER BY created_at DESC, kid",
        )
        .bind(tenant.as_str())
        .bind(now.0)
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn rotate_key(
        &self,
        new_key: &StoredKey,
        now: UnixTime,
        leeway_secs: i64,
        events: &[Event],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = ?1, \
             publish_until = ?1 + max_token_ttl_secs + ?2 WHERE tenant_id = ?3 AND status = 'active'",
        )
        .bind(now.0)
        .bind(leeway_secs)
        .bind(new_key.tenant_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        insert_key(new_key).execute(&mut *tx).await.map_err(unavailable)?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn record_token_ttl(&self, tenant: &TenantId, kid: &KeyId, ttl_secs: i64) -> StoreResult<()> {
        note_write();
        sqlx::query(
            "UPDATE signing_keys SET max_token_ttl_secs = ?1 WHERE tenant_id = ?2 AND kid = ?3 \
             AND max_token_ttl_secs < ?1",
        )
        .bind(ttl_secs)
        .bind(tenant.as_str())
        .bind(kid.as_str())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn count_published_keys(&self, now: UnixTime) -> StoreResult<(u64, u64)> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END), 0) AS active, \
             COALESCE(SUM(CASE WHEN status = 'retired' AND publish_until > ? THEN 1 ELSE 0 END), 0) AS retired \
             FROM signing_keys",
        )
        .bind(now.0)
        .fetch_one(&self.pool)
        .await
        .map_err(unavailable)?;
        let count = |name: &str| row.int(name).map(|n| u64::try_from(n).unwrap_or(0));
        Ok((count("active")?, count("retired")?))
    }
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn revoke_token(
        &self,
        tenant: &TenantId,
        jti: &TokenId,
        expires_at: UnixTime,
        events: &[Event],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO revoked_tokens (tenant_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(tenant.as_str())
            .bind(jti.as_str())
            .bind(expires_at.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(unavailable)
    }

    async fn is_revoked(&self, tenant: &TenantId, jti: &TokenId) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE tenant_id = ? AND jti = ?")
            .bind(tenant.as_str())
            .bind(jti.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(row.is_some())
    }
}
