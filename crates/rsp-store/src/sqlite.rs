//! The SQLite adapter: the no-configuration default. WAL mode lets readers run beside the one writer.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rsp_core::ports::{ClientStore, Health, KeyStore, RevocationStore, StoreResult, TenantStore};
use rsp_core::{Client, ClientId, KeyId, ScopeSet, StoreError, StoredKey, Tenant, TenantId, TokenId, UnixTime};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::rows::{self, corrupt};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Storage in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

fn unavailable(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
        _ => StoreError::Unavailable(error.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs pending migrations.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(options, 8).await
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:").map_err(unavailable)?.foreign_keys(true);
        // One connection: each in-memory connection would otherwise be its own database.
        Self::connect(options, 1).await
    }

    async fn connect(options: SqliteConnectOptions, max_connections: u32) -> StoreResult<Self> {
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self { pool })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn tenant_from_row(row: &SqliteRow) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId::parse(row.try_get::<String, _>("id").map_err(unavailable)?).map_err(|_| corrupt("tenant id"))?,
        name: row.try_get("name").map_err(unavailable)?,
        signing_alg: rows::alg_from_text(&row.try_get::<String, _>("signing_alg").map_err(unavailable)?)?,
        created_at: UnixTime(row.try_get("created_at").map_err(unavailable)?),
        updated_at: UnixTime(row.try_get("updated_at").map_err(unavailable)?),
    })
}

fn client_from_row(row: &SqliteRow) -> StoreResult<Client> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(unavailable);
    Ok(Client {
        tenant_id: TenantId::parse(text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        client_id: ClientId::parse(text("client_id")?).map_err(|_| corrupt("client id"))?,
        name: text("name")?,
        kind: rows::kind_from_text(&text("kind")?)?,
        secret_hash: row.try_get("secret_hash").map_err(unavailable)?,
        grant_types: rows::grants_from_text(&text("grant_types")?)?,
        scopes: ScopeSet::parse(&text("scopes")?).map_err(|_| corrupt("scopes"))?,
        audiences: rows::list_from_json(&text("audiences")?)?,
        introspect_audiences: rows::list_from_json(&text("introspect_audiences")?)?,
        created_at: UnixTime(row.try_get("created_at").map_err(unavailable)?),
        updated_at: UnixTime(row.try_get("updated_at").map_err(unavailable)?),
    })
}

fn key_from_row(row: &SqliteRow) -> StoreResult<StoredKey> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(unavailable);
    let time = |name: &str| row.try_get::<Option<i64>, _>(name).map(|t| t.map(UnixTime)).map_err(unavailable);
    Ok(StoredKey {
        tenant_id: TenantId::parse(text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        kid: KeyId::parse(text("kid")?).map_err(|_| corrupt("kid"))?,
        alg: rows::alg_from_text(&text("alg")?)?,
        status: rows::status_from_text(&text("status")?)?,
        created_at: UnixTime(row.try_get("created_at").map_err(unavailable)?),
        retired_at: time("retired_at")?,
        publish_until: time("publish_until")?,
        max_token_ttl_secs: row.try_get("max_token_ttl_secs").map_err(unavailable)?,
        public_jwk: text("public_jwk")?,
        sealed_private_key: row.try_get("sealed_private_key").map_err(unavailable)?,
    })
}

const INSERT_KEY: &str = "INSERT INTO signing_keys (tenant_id, kid, alg, status, created_at, retired_at, \
     publish_until, max_token_ttl_secs, public_jwk, sealed_private_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

fn bind_key<'q>(
    query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>,
    key: &'q StoredKey,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments> {
    query
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
impl TenantStore for SqliteStore {
    async fn create_tenant(&self, tenant: &Tenant, first_key: &StoredKey) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query("INSERT INTO tenants (id, name, signing_alg, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
            .bind(tenant.id.as_str())
            .bind(&tenant.name)
            .bind(tenant.signing_alg.as_str())
            .bind(tenant.created_at.0)
            .bind(tenant.updated_at.0)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        bind_key(sqlx::query(INSERT_KEY), first_key).execute(&mut *tx).await.map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY id").fetch_all(&self.pool).await.map_err(unavailable)?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn update_tenant(&self, tenant: &Tenant) -> StoreResult<()> {
        let done = sqlx::query("UPDATE tenants SET name = ?, signing_alg = ?, updated_at = ? WHERE id = ?")
            .bind(&tenant.name)
            .bind(tenant.signing_alg.as_str())
            .bind(tenant.updated_at.0)
            .bind(tenant.id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn delete_tenant(&self, id: &TenantId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM tenants WHERE id = ?")
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_client(&self, client: &Client) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO clients (tenant_id, client_id, name, kind, secret_hash, grant_types, scopes, audiences, \
             introspect_audiences, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(client.tenant_id.as_str())
        .bind(client.client_id.as_str())
        .bind(&client.name)
        .bind(rows::kind_to_text(client.kind))
        .bind(client.secret_hash.as_deref())
        .bind(rows::grants_to_text(&client.grant_types))
        .bind(client.scopes.to_string())
        .bind(rows::list_to_json(&client.audiences))
        .bind(rows::list_to_json(&client.introspect_audiences))
        .bind(client.created_at.0)
        .bind(client.updated_at.0)
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn get_client(&self, tenant: &TenantId, id: &ClientId) -> StoreResult<Option<Client>> {
        let row = sqlx::query("SELECT * FROM clients WHERE tenant_id = ? AND client_id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn list_clients(&self, tenant: &TenantId) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients WHERE tenant_id = ? ORDER BY created_at, client_id")
            .bind(tenant.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(unavailable)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn update_client(&self, client: &Client) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE clients SET name = ?, secret_hash = ?, grant_types = ?, scopes = ?, audiences = ?, \
             introspect_audiences = ?, updated_at = ? WHERE tenant_id = ? AND client_id = ?",
        )
        .bind(&client.name)
        .bind(client.secret_hash.as_deref())
        .bind(rows::grants_to_text(&client.grant_types))
        .bind(client.scopes.to_string())
        .bind(rows::list_to_json(&client.audiences))
        .bind(rows::list_to_json(&client.introspect_audiences))
        .bind(client.updated_at.0)
        .bind(client.tenant_id.as_str())
        .bind(client.client_id.as_str())
        .execute(&self.pool)
        .await
        .map_err(unavailable)?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    async fn delete_client(&self, tenant: &TenantId, id: &ClientId) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM clients WHERE tenant_id = ? AND client_id = ?")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        if done.rows_affected() == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
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

    async fn rotate_key(&self, new_key: &StoredKey, now: UnixTime, leeway_secs: i64) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        sqlx::query(
            "UPDATE signing_keys SET status = 'retired', retired_at = ?, \
             publish_until = ? + max_token_ttl_secs + ? WHERE tenant_id = ? AND status = 'active'",
        )
        .bind(now.0)
        .bind(now.0)
        .bind(leeway_secs)
        .bind(new_key.tenant_id.as_str())
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
        bind_key(sqlx::query(INSERT_KEY), new_key).execute(&mut *tx).await.map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)
    }

    async fn record_token_ttl(&self, tenant: &TenantId, kid: &KeyId, ttl_secs: i64) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signing_keys SET max_token_ttl_secs = ? WHERE tenant_id = ? AND kid = ? AND max_token_ttl_secs < ?",
        )
        .bind(ttl_secs)
        .bind(tenant.as_str())
        .bind(kid.as_str())
        .bind(ttl_secs)
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
        let count =
            |name: &str| row.try_get::<i64, _>(name).map(|n| u64::try_from(n).unwrap_or(0)).map_err(unavailable);
        Ok((count("active")?, count("retired")?))
    }
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn revoke_token(&self, tenant: &TenantId, jti: &TokenId, expires_at: UnixTime) -> StoreResult<()> {
        sqlx::query("INSERT INTO revoked_tokens (tenant_id, jti, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(tenant.as_str())
            .bind(jti.as_str())
            .bind(expires_at.0)
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
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

#[async_trait]
impl Health for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(unavailable)?;
        Ok(())
    }
}

mod policy;
#[cfg(test)]
mod tests;
