//! Tenants and their clients over PostgreSQL.

use async_trait::async_trait;
use rsp_core::ports::{ClientStore, StoreResult, TenantStore};
use rsp_core::{Client, ClientId, Event, StoredKey, Tenant, TenantId};

use super::keys::insert_key;
use super::{PostgresStore, outbox};
use crate::rows::{self, client_from_row, db_error, found, tenant_from_row};

#[async_trait]
impl TenantStore for PostgresStore {
    async fn create_tenant(&self, tenant: &Tenant, first_key: &StoredKey, events: &[Event]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("INSERT INTO tenants (id, name, signing_alg, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(tenant.id.as_str())
            .bind(&tenant.name)
            .bind(tenant.signing_alg.as_str())
            .bind(tenant.created_at.0)
            .bind(tenant.updated_at.0)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        insert_key(first_key).execute(&mut *tx).await.map_err(db_error)?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db_error)?;
        row.as_ref().map(tenant_from_row).transpose()
    }

    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows = sqlx::query("SELECT * FROM tenants ORDER BY id").fetch_all(self.reader()).await.map_err(db_error)?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn update_tenant(&self, tenant: &Tenant, events: &[Event]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE tenants SET name = $1, signing_alg = $2, updated_at = $3 WHERE id = $4")
            .bind(&tenant.name)
            .bind(tenant.signing_alg.as_str())
            .bind(tenant.updated_at.0)
            .bind(tenant.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        found(done.rows_affected())?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_tenant(&self, id: &TenantId, events: &[Event]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM tenants WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        found(done.rows_affected())?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn create_client(&self, client: &Client, events: &[Event]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO clients (tenant_id, client_id, name, kind, secret_hash, grant_types, scopes, audiences, \
             introspect_audiences, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn get_client(&self, tenant: &TenantId, id: &ClientId) -> StoreResult<Option<Client>> {
        let row = sqlx::query("SELECT * FROM clients WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db_error)?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn list_clients(&self, tenant: &TenantId) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query("SELECT * FROM clients WHERE tenant_id = $1 ORDER BY created_at, client_id")
            .bind(tenant.as_str())
            .fetch_all(self.reader())
            .await
            .map_err(db_error)?;
        rows.iter().map(client_from_row).collect()
    }

    async fn update_client(&self, client: &Client, events: &[Event]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE clients SET name = $1, secret_hash = $2, grant_types = $3, scopes = $4, audiences = $5, \
             introspect_audiences = $6, updated_at = $7 WHERE tenant_id = $8 AND client_id = $9",
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
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        found(done.rows_affected())?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }

    async fn delete_client(&self, tenant: &TenantId, id: &ClientId, events: &[Event]) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("DELETE FROM clients WHERE tenant_id = $1 AND client_id = $2")
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        found(done.rows_affected())?;
        outbox::append(&mut tx, events).await?;
        tx.commit().await.map_err(db_error)
    }
}
