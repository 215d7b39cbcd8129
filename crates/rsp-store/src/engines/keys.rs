//! Signing keys and revocations, for both engines.

use rsp_core::StoredKey;
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

/// The insert of one signing key, bound and ready to run in the caller's transaction (a tenant's first key
/// and every rotation write it).
pub(crate) fn insert_key<'q, DB>(key: &StoredKey) -> Query<'q, DB, DB::Arguments>
where
    DB: Database,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> &'t [u8]: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
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

/// Implements `KeyStore` and `RevocationStore` for `$store` (see [`crate::engines`] for what it must
/// provide).
macro_rules! key_stores {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl rsp_core::ports::KeyStore for $store {
            async fn published_keys(
                &self,
                tenant: &rsp_core::TenantId,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<Vec<rsp_core::StoredKey>> {
                let rows = sqlx::query(
                    "SELECT * FROM signing_keys WHERE tenant_id = $1 AND (status = 'active' OR publish_until > $2) \
                     ORDER BY created_at DESC, kid",
                )
                .bind(tenant.as_str())
                .bind(now.0)
                .fetch_all(self.reader())
                .await
                .map_err($crate::rows::db_error)?;
                rows.iter().map($crate::rows::key_from_row).collect()
            }

            async fn rotate_key(
                &self,
                new_key: &rsp_core::StoredKey,
                now: rsp_core::UnixTime,
                leeway_secs: i64,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                use $crate::rows::db_error;
                let mut tx = self.write_tx().await?;
                // Two instances rotating at once take turns, so the second retires the first's new key
                // instead of failing on the one-active-key index.
                Self::lock_tenant(&mut tx, &new_key.tenant_id).await?;
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
                $crate::engines::keys::insert_key(new_key).execute(&mut *tx).await.map_err(db_error)?;
                self.commit_with_events(tx, events).await
            }

            async fn record_token_ttl(
                &self,
                tenant: &rsp_core::TenantId,
                kid: &rsp_core::KeyId,
                ttl_secs: i64,
            ) -> rsp_core::ports::StoreResult<()> {
                rsp_core::context::note_write();
                sqlx::query(
                    "UPDATE signing_keys SET max_token_ttl_secs = $1 WHERE tenant_id = $2 AND kid = $3 \
                     AND max_token_ttl_secs < $1",
                )
                .bind(ttl_secs)
                .bind(tenant.as_str())
                .bind(kid.as_str())
                .execute(self.primary())
                .await
                .map_err($crate::rows::db_error)?;
                Ok(())
            }

            /// From the primary: the key gauge is read rarely and should not lag.
            async fn count_published_keys(&self, now: rsp_core::UnixTime) -> rsp_core::ports::StoreResult<(u64, u64)> {
                use $crate::rows::Columns as _;
                let row = sqlx::query(
                    "SELECT COUNT(*) FILTER (WHERE status = 'active') AS active, \
                     COUNT(*) FILTER (WHERE status = 'retired' AND publish_until > $1) AS retired FROM signing_keys",
                )
                .bind(now.0)
                .fetch_one(self.primary())
                .await
                .map_err($crate::rows::db_error)?;
                let count = |name: &str| row.int(name).map(|n| u64::try_from(n).unwrap_or(0));
                Ok((count("active")?, count("retired")?))
            }
        }

        #[async_trait::async_trait]
        impl rsp_core::ports::RevocationStore for $store {
            async fn revoke_token(
                &self,
                tenant: &rsp_core::TenantId,
                jti: &rsp_core::TokenId,
                expires_at: rsp_core::UnixTime,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO revoked_tokens (tenant_id, jti, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(tenant.as_str())
                .bind(jti.as_str())
                .bind(expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, events).await
            }

            /// Always the primary: a revocation must take effect on every instance at once.
            async fn is_revoked(
                &self,
                tenant: &rsp_core::TenantId,
                jti: &rsp_core::TokenId,
            ) -> rsp_core::ports::StoreResult<bool> {
                let row = sqlx::query("SELECT 1 FROM revoked_tokens WHERE tenant_id = $1 AND jti = $2")
                    .bind(tenant.as_str())
                    .bind(jti.as_str())
                    .fetch_optional(self.primary())
                    .await
                    .map_err($crate::rows::db_error)?;
                Ok(row.is_some())
            }

            async fn purge_expired_revocations(
                &self,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<u64> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
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

pub(crate) use key_stores;
