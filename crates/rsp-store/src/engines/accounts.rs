//! Tenants and their clients, for both engines.

use rsp_core::Client;
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

use crate::rows;

/// Binds what an update of a client may change, in the order both the insert and the update number it.
pub(crate) fn bind_client_details<'q, DB>(
    query: Query<'q, DB, DB::Arguments>,
    client: &Client,
) -> Query<'q, DB, DB::Arguments>
where
    DB: Database,
    for<'t> &'t str: Encode<'t, DB> + Type<DB>,
    for<'t> Option<&'t str>: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
{
    query
        .bind(client.name.as_str())
        .bind(client.secret_hash.as_deref())
        .bind(rows::grants_to_text(&client.grant_types))
        .bind(client.scopes.to_string())
        .bind(rows::list_to_json(&client.audiences))
        .bind(rows::list_to_json(&client.introspect_audiences))
        .bind(client.updated_at.0)
        .bind(rows::list_to_json(&client.redirect_uris))
        .bind(rows::list_to_json(&client.post_logout_redirect_uris))
}

/// Implements `TenantStore` and `ClientStore` for `$store` over database `$db` (see [`crate::engines`] for what
/// it must provide).
macro_rules! account_stores {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Runs `change` (an update or delete of one row) in a write transaction with its events; a change
            /// that matched no row is `NotFound` and commits nothing.
            async fn change_existing(
                &self,
                change: sqlx::query::Query<'_, $db, <$db as sqlx::Database>::Arguments>,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                let done = change.execute(&mut *tx).await.map_err($crate::rows::db_error)?;
                $crate::rows::found(done.rows_affected())?;
                self.commit_with_events(tx, events).await
            }
        }

        #[async_trait::async_trait]
        impl rsp_core::ports::TenantStore for $store {
            async fn create_tenant(
                &self,
                tenant: &rsp_core::Tenant,
                first_key: &rsp_core::StoredKey,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                use $crate::rows::db_error;
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO tenants (id, name, signing_alg, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.id.as_str())
                .bind(&tenant.name)
                .bind(tenant.signing_alg.as_str())
                .bind(tenant.created_at.0)
                .bind(tenant.updated_at.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                $crate::engines::keys::insert_key(first_key).execute(&mut *tx).await.map_err(db_error)?;
                self.commit_with_events(tx, events).await
            }

            async fn get_tenant(
                &self,
                id: &rsp_core::TenantId,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::Tenant>> {
                let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::rows::tenant_from_row).transpose()
            }

            async fn list_tenants(&self) -> rsp_core::ports::StoreResult<Vec<rsp_core::Tenant>> {
                let rows = sqlx::query("SELECT * FROM tenants ORDER BY id")
                    .fetch_all(self.reader())
                    .await
                    .map_err($crate::rows::db_error)?;
                rows.iter().map($crate::rows::tenant_from_row).collect()
            }

            async fn update_tenant(
                &self,
                tenant: &rsp_core::Tenant,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                self.change_existing(
                    sqlx::query("UPDATE tenants SET name = $1, signing_alg = $2, updated_at = $3 WHERE id = $4")
                        .bind(&tenant.name)
                        .bind(tenant.signing_alg.as_str())
                        .bind(tenant.updated_at.0)
                        .bind(tenant.id.as_str()),
                    events,
                )
                .await
            }

            async fn delete_tenant(
                &self,
                id: &rsp_core::TenantId,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                self.change_existing(sqlx::query("DELETE FROM tenants WHERE id = $1").bind(id.as_str()), events).await
            }
        }

        #[async_trait::async_trait]
        impl rsp_core::ports::ClientStore for $store {
            async fn create_client(
                &self,
                client: &rsp_core::Client,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                use $crate::rows;
                let mut tx = self.write_tx().await?;
                let insert = sqlx::query(
                    "INSERT INTO clients (tenant_id, client_id, kind, created_at, name, secret_hash, grant_types, \
                     scopes, audiences, introspect_audiences, updated_at, redirect_uris, post_logout_redirect_uris) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .bind(client.tenant_id.as_str())
                .bind(client.client_id.as_str())
                .bind(rows::kind_to_text(client.kind))
                .bind(client.created_at.0);
                $crate::engines::accounts::bind_client_details(insert, client)
                    .execute(&mut *tx)
                    .await
                    .map_err(rows::db_error)?;
                self.commit_with_events(tx, events).await
            }

            async fn get_client(
                &self,
                tenant: &rsp_core::TenantId,
                id: &rsp_core::ClientId,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::Client>> {
                let row = sqlx::query("SELECT * FROM clients WHERE tenant_id = $1 AND client_id = $2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::rows::client_from_row).transpose()
            }

            async fn list_clients(
                &self,
                tenant: &rsp_core::TenantId,
            ) -> rsp_core::ports::StoreResult<Vec<rsp_core::Client>> {
                let rows = sqlx::query("SELECT * FROM clients WHERE tenant_id = $1 ORDER BY created_at, client_id")
                    .bind(tenant.as_str())
                    .fetch_all(self.reader())
                    .await
                    .map_err($crate::rows::db_error)?;
                rows.iter().map($crate::rows::client_from_row).collect()
            }

            async fn update_client(
                &self,
                client: &rsp_core::Client,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                let update = sqlx::query(
                    "UPDATE clients SET name = $1, secret_hash = $2, grant_types = $3, scopes = $4, audiences = $5, \
                     introspect_audiences = $6, updated_at = $7, redirect_uris = $8, post_logout_redirect_uris = $9 \
                     WHERE tenant_id = $10 AND client_id = $11",
                );
                let update = $crate::engines::accounts::bind_client_details(update, client)
                    .bind(client.tenant_id.as_str())
                    .bind(client.client_id.as_str());
                self.change_existing(update, events).await
            }

            async fn delete_client(
                &self,
                tenant: &rsp_core::TenantId,
                id: &rsp_core::ClientId,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                self.change_existing(
                    sqlx::query("DELETE FROM clients WHERE tenant_id = $1 AND client_id = $2")
                        .bind(tenant.as_str())
                        .bind(id.as_str()),
                    events,
                )
                .await
            }
        }
    };
}

pub(crate) use account_stores;
