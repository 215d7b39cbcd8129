//! Signing keys and revocations over PostgreSQL.

use async_trait::async_trait;
use rsp_core::context::note_write;
use rsp_core::ports::{KeyStore, RevocationStore, StoreResult};
use rsp_core::{Event, KeyId, StoredKey, TenantId, TokenId, UnixTime};
use sqlx::Postgres;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;

use super::{PostgresStore, outbox};
use crate::rows::{Columns, db_error, key_from_row};

/// The insert of one signing key, bound and ready to run in the caller's transaction.
pub(super) fn insert_key(key: &StoredKey) -> Query<'_, Postgres, PgArguments> {
    sqlx::query(
        "INSERT INTO signing_keys (tenant_id, kid, alg, status, created_at, retired_at, publish_until, \
         max_token_ttl_secs, public_jwk, sealed_private_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
impl KeyStore for PostgresStore {
    async fn published_keys(&self, tenant: &TenantId, now: UnixTime) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys WHERE tenant_id = $1 AND (status = 'active' OR publish_until > $2) \
             ORDER BY created_at DESC, kid",
        )
        .bind(tenant.as_str())
        .bind(now.0)
        .fetch_all(self.reader())
        .await
        .map_err(db_error)?;
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
        // Two instances rotating at once take turns on the tenant row, so the second retires the first's
        // new key instead of failing on the one-active-key index.
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
            .bind(new_key.tenant_id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1, \
             publish_until = $1 + max_token_ttl_secs + $2 WHERE tenant_id = $3 AND status = 'active'",
        )
        .bind(now.0)
        .bind(leeway_secs)
        .bind(new_key.tenant_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        insert_key(new_key).execute(&mut *tx).await.map_err(db_error)?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn record_token_ttl(&self, tenant: &TenantId, kid: &KeyId, ttl_secs: i64) -> StoreResult<()> {
        note_write();
        sqlx::query(
            "UPDATE signing_keys SET max_token_ttl_secs = $1 WHERE tenant_id = $2 AND kid = $3 \
             AND max_token_ttl_secs < $1",
        )
        .bind(ttl_secs)
        .bind(tenant.as_str())
        .bind(kid.as_str())
        .execute(self.primary())
        .await
        .map_err(db_error)?;
        Ok(())
    }

    async fn count_published_keys(&self, now: UnixTime) -> StoreResult<(u64, u64)> {
        let row = sqlx::query(
            "SELECT COUNT(*) FILTER (WHERE status = 'active') AS active, \
             COUNT(*) FILTER (WHERE status = 'retired' AND publish_until > $1) AS retired FROM signing_keys",
        )
        .bind(now.0)
        .fetch_one(self.primary())
        .await
        .map_err(db_error)?;
        let count = |name: &str| row.int(name).map(|n| u64::try_from(n).unwrap_or(0));
        Ok((count("active")?, count("retired")?))
    }
}

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn revoke_token(
        &self,
        tenant: &TenantId,
        jti: &TokenId,
        expires_at: UnixTime,
        events: &[Event],
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO revoked_tokens (tenant_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant.as_str())
        .bind(jti.as_str())
        .bind(expires_at.0)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }

    /// Always the primary: a revocation must take effect on every instance at once.
    async fn is_revoked(&self, tenant: &TenantId, jti: &TokenId) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE tenant_id = $1 AND jti = $2")
            .bind(tenant.as_str())
            .bind(jti.as_str())
            .fetch_optional(self.primary())
            .await
            .map_err(db_error)?;
        Ok(row.is_some())
    }
}
