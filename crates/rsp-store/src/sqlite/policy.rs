//! The policy store over SQLite: append-only policy-set versions and a versioned entity table.

use async_trait::async_trait;
use rsp_core::policy::{PolicySetContent, PolicySetVersion, StoredEntity};
use rsp_core::ports::{PolicyStore, StoreResult};
use rsp_core::{Event, TenantId, UnixTime};

use super::{SqliteStore, outbox, unavailable};
use crate::rows::{self, Columns, entity_from_row, policy_history_from_row, policy_version_from_row, to_i64};

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn append_policy_set(
        &self,
        tenant: &TenantId,
        content: &PolicySetContent,
        created_at: UnixTime,
        created_by: &str,
        events: &[Event],
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM policy_sets WHERE tenant_id = ?")
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?
                .int("next")?;
        sqlx::query(
            "INSERT INTO policy_sets (tenant_id, version, policies, schema_text, schema_format, template_links, \
             created_at, created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
        .map_err(unavailable)?;
        outbox::append(&mut tx, &rows::about_version(events, next)).await?;
        tx.commit().await.map_err(unavailable)?;
        rows::to_u64(next, "policy version")
    }

    async fn latest_policy_set(&self, tenant: &TenantId) -> StoreResult<Option<PolicySetVersion>> {
        let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = ? ORDER BY version DESC LIMIT 1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| policy_version_from_row(tenant, &r)).transpose()
    }

    async fn policy_set(&self, tenant: &TenantId, version: u64) -> StoreResult<Option<PolicySetVersion>> {
        let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = ? AND version = ?")
            .bind(tenant.as_str())
            .bind(to_i64(version)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| policy_version_from_row(tenant, &r)).transpose()
    }

    async fn list_policy_versions(&self, tenant: &TenantId) -> StoreResult<Vec<(u64, UnixTime, String)>> {
        let rows = sqlx::query(
            "SELECT version, created_at, created_by FROM policy_sets WHERE tenant_id = ? ORDER BY version DESC",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter().map(policy_history_from_row).collect()
    }

    async fn entities(&self, tenant: &TenantId) -> StoreResult<(u64, Vec<StoredEntity>)> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let version: Option<i64> = sqlx::query("SELECT version FROM policy_entity_versions WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .map(|row| row.int("version"))
            .transpose()?;
        let rows = sqlx::query(
            "SELECT entity_type, entity_id, body FROM policy_entities WHERE tenant_id = ? \
             ORDER BY entity_type, entity_id",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
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
                "INSERT INTO policy_entities (tenant_id, entity_type, entity_id, body) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (tenant_id, entity_type, entity_id) DO UPDATE SET body = excluded.body",
            )
            .bind(tenant.as_str())
            .bind(&entity.entity_type)
            .bind(&entity.entity_id)
            .bind(&entity.json)
            .execute(&mut *tx)
            .await
            .map_err(unavailable)?;
        }
        for (entity_type, entity_id) in deletes {
            sqlx::query("DELETE FROM policy_entities WHERE tenant_id = ? AND entity_type = ? AND entity_id = ?")
                .bind(tenant.as_str())
                .bind(entity_type)
                .bind(entity_id)
                .execute(&mut *tx)
                .await
                .map_err(unavailable)?;
        }
        let version: i64 = sqlx::query(
            "INSERT INTO policy_entity_versions (tenant_id, version) VALUES (?, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET version = version + 1 RETURNING version",
        )
        .bind(tenant.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(unavailable)?
        .int("version")?;
        outbox::append(&mut tx, &rows::about_version(events, version)).await?;
        tx.commit().await.map_err(unavailable)?;
        rows::to_u64(version, "entity version")
    }
}
