//! The policy store over PostgreSQL: append-only policy-set versions and a versioned entity table.

use async_trait::async_trait;
use rsp_core::policy::{PolicySetContent, PolicySetVersion, StoredEntity};
use rsp_core::ports::{PolicyStore, StoreResult};
use rsp_core::{Event, TenantId, UnixTime};

use super::{PostgresStore, outbox};
use crate::rows::{self, Columns, db_error, entity_from_row, policy_history_from_row, policy_version_from_row, to_i64};

#[async_trait]
impl PolicyStore for PostgresStore {
    async fn append_policy_set(
        &self,
        tenant: &TenantId,
        content: &PolicySetContent,
        created_at: UnixTime,
        created_by: &str,
        events: &[Event],
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        // Writers of one tenant take turns on its row, so two instances appending at once get consecutive
        // versions instead of one of them failing on the primary key.
        sqlx::query("SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE")
            .bind(tenant.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let next = sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM policy_sets WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?
            .int("next")?;
        sqlx::query(
            "INSERT INTO policy_sets (tenant_id, version, policies, schema_text, schema_format, template_links, \
             created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(tenant.as_str())
        .bind(next)
        .bind(&content.policies)
        .bind(content.schema.as_ref().map(|(_, text)| text.as_str()))
        .bind(content.schema.as_ref().map(|(format, _)| format.as_str()))
        .bind(&content.template_links)
        .bind(created_at.0)
        .bind(created_by)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        outbox::append(&mut tx, &rows::about_version(events, next)).await?;
        tx.commit().await.map_err(db_error)?;
        rows::to_u64(next, "policy version")
    }

    async fn latest_policy_set(&self, tenant: &TenantId) -> StoreResult<Option<PolicySetVersion>> {
        let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1")
            .bind(tenant.as_str())
            .fetch_optional(self.reader())
            .await
            .map_err(db_error)?;
        row.map(|r| policy_version_from_row(tenant, &r)).transpose()
    }

    async fn policy_set(&self, tenant: &TenantId, version: u64) -> StoreResult<Option<PolicySetVersion>> {
        let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = $1 AND version = $2")
            .bind(tenant.as_str())
            .bind(to_i64(version)?)
            .fetch_optional(self.reader())
            .await
            .map_err(db_error)?;
        row.map(|r| policy_version_from_row(tenant, &r)).transpose()
    }

    async fn list_policy_versions(&self, tenant: &TenantId) -> StoreResult<Vec<(u64, UnixTime, String)>> {
        let rows = sqlx::query(
            "SELECT version, created_at, created_by FROM policy_sets WHERE tenant_id = $1 ORDER BY version DESC",
        )
        .bind(tenant.as_str())
        .fetch_all(self.reader())
        .await
        .map_err(db_error)?;
        rows.iter().map(policy_history_from_row).collect()
    }

    async fn entities(&self, tenant: &TenantId) -> StoreResult<(u64, Vec<StoredEntity>)> {
        // One snapshot for both statements, so the version always describes the entities returned.
        let mut tx =
            self.reader().begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await.map_err(db_error)?;
        let version = sqlx::query("SELECT version FROM policy_entity_versions WHERE tenant_id = $1")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?
            .map(|row| row.int("version"))
            .transpose()?;
        let rows = sqlx::query(
            "SELECT entity_type, entity_id, body FROM policy_entities WHERE tenant_id = $1 \
             ORDER BY entity_type, entity_id",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        let entities = rows.iter().map(entity_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok((rows::to_u64(version.unwrap_or(0), "entity version")?, entities))
    }

    async fn write_entities(
        &self,
        tenant: &TenantId,
        upserts: &[StoredEntity],
        deletes: &[(String, String)],
        events: &[Event],
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        for entity in upserts {
            sqlx::query(
                "INSERT INTO policy_entities (tenant_id, entity_type, entity_id, body) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant_id, entity_type, entity_id) DO UPDATE SET body = excluded.body",
            )
            .bind(tenant.as_str())
            .bind(&entity.entity_type)
            .bind(&entity.entity_id)
            .bind(&entity.json)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        for (entity_type, entity_id) in deletes {
            sqlx::query("DELETE FROM policy_entities WHERE tenant_id = $1 AND entity_type = $2 AND entity_id = $3")
                .bind(tenant.as_str())
                .bind(entity_type)
                .bind(entity_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        let version = sqlx::query(
            "INSERT INTO policy_entity_versions (tenant_id, version) VALUES ($1, 1) ON CONFLICT (tenant_id) \
             DO UPDATE SET version = policy_entity_versions.version + 1 RETURNING version",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_error)?
        .int("version")?;
        outbox::append(&mut tx, &rows::about_version(events, version)).await?;
        tx.commit().await.map_err(db_error)?;
        rows::to_u64(version, "entity version")
    }
}
