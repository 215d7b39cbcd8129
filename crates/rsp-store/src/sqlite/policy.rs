//! The policy store over SQLite: append-only policy-set versions and a versioned entity table.

use async_trait::async_trait;
use rsp_core::policy::{PolicySetContent, PolicySetVersion, SchemaFormat, StoredEntity};
use rsp_core::ports::{PolicyStore, StoreResult};
use rsp_core::{TenantId, UnixTime};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use super::{SqliteStore, unavailable};
use crate::rows::corrupt;

fn version_from_row(tenant: &TenantId, row: &SqliteRow) -> StoreResult<PolicySetVersion> {
    let text = |name: &str| row.try_get::<String, _>(name).map_err(unavailable);
    let schema_text: Option<String> = row.try_get("schema_text").map_err(unavailable)?;
    let schema_format: Option<String> = row.try_get("schema_format").map_err(unavailable)?;
    let schema = match (schema_format, schema_text) {
        (Some(format), Some(text)) => {
            Some((SchemaFormat::parse(&format).ok_or_else(|| corrupt("schema format"))?, text))
        }
        _ => None,
    };
    let version: i64 = row.try_get("version").map_err(unavailable)?;
    Ok(PolicySetVersion {
        tenant_id: tenant.clone(),
        version: u64::try_from(version).map_err(|_| corrupt("policy version"))?,
        content: PolicySetContent { policies: text("policies")?, schema, template_links: text("template_links")? },
        created_at: UnixTime(row.try_get("created_at").map_err(unavailable)?),
        created_by: text("created_by")?,
    })
}

fn to_i64(version: u64) -> StoreResult<i64> {
    i64::try_from(version).map_err(|_| corrupt("policy version"))
}

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn append_policy_set(
        &self,
        tenant: &TenantId,
        content: &PolicySetContent,
        created_at: UnixTime,
        created_by: &str,
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let next: i64 =
            sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM policy_sets WHERE tenant_id = ?")
                .bind(tenant.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(unavailable)?
                .try_get("next")
                .map_err(unavailable)?;
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
        tx.commit().await.map_err(unavailable)?;
        u64::try_from(next).map_err(|_| corrupt("policy version"))
    }

    async fn latest_policy_set(&self, tenant: &TenantId) -> StoreResult<Option<PolicySetVersion>> {
        let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = ? ORDER BY version DESC LIMIT 1")
            .bind(tenant.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| version_from_row(tenant, &r)).transpose()
    }

    async fn policy_set(&self, tenant: &TenantId, version: u64) -> StoreResult<Option<PolicySetVersion>> {
        let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = ? AND version = ?")
            .bind(tenant.as_str())
            .bind(to_i64(version)?)
            .fetch_optional(&self.pool)
            .await
            .map_err(unavailable)?;
        row.map(|r| version_from_row(tenant, &r)).transpose()
    }

    async fn list_policy_versions(&self, tenant: &TenantId) -> StoreResult<Vec<(u64, UnixTime, String)>> {
        let rows = sqlx::query(
            "SELECT version, created_at, created_by FROM policy_sets WHERE tenant_id = ? ORDER BY version DESC",
        )
        .bind(tenant.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(unavailable)?;
        rows.iter()
            .map(|row| {
                let version: i64 = row.try_get("version").map_err(unavailable)?;
                Ok((
                    u64::try_from(version).map_err(|_| corrupt("policy version"))?,
                    UnixTime(row.try_get("created_at").map_err(unavailable)?),
                    row.try_get("created_by").map_err(unavailable)?,
                ))
            })
            .collect()
    }

    async fn entities(&self, tenant: &TenantId) -> StoreResult<(u64, Vec<StoredEntity>)> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
        let version: Option<i64> = sqlx::query("SELECT version FROM policy_entity_versions WHERE tenant_id = ?")
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(unavailable)?
            .map(|row| row.try_get("version"))
            .transpose()
            .map_err(unavailable)?;
        let rows = sqlx::query(
            "SELECT entity_type, entity_id, body FROM policy_entities WHERE tenant_id = ? \
             ORDER BY entity_type, entity_id",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        let entities = rows
            .iter()
            .map(|row| {
                Ok(StoredEntity {
                    entity_type: row.try_get("entity_type").map_err(unavailable)?,
                    entity_id: row.try_get("entity_id").map_err(unavailable)?,
                    json: row.try_get("body").map_err(unavailable)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let version = u64::try_from(version.unwrap_or(0)).map_err(|_| corrupt("entity version"))?;
        Ok((version, entities))
    }

    async fn write_entities(
        &self,
        tenant: &TenantId,
        upserts: &[StoredEntity],
        deletes: &[(String, String)],
    ) -> StoreResult<u64> {
        let mut tx = self.pool.begin().await.map_err(unavailable)?;
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
        .try_get("version")
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        u64::try_from(version).map_err(|_| corrupt("entity version"))
    }
}
