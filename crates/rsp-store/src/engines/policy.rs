//! The policy store, for both engines: append-only policy-set versions and a versioned entity table.

/// Implements `PolicyStore` for `$store` (see [`crate::engines`] for what it must provide).
macro_rules! policy_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl rsp_core::ports::PolicyStore for $store {
            async fn append_policy_set(
                &self,
                tenant: &rsp_core::TenantId,
                content: &rsp_core::policy::PolicySetContent,
                created_at: rsp_core::UnixTime,
                created_by: &str,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<u64> {
                use $crate::rows::{self, Columns as _, db_error};
                let mut tx = self.write_tx().await?;
                // Writers of one tenant take turns, so two instances appending at once get consecutive
                // versions instead of one of them failing on the primary key.
                Self::lock_tenant(&mut tx, tenant).await?;
                let next =
                    sqlx::query("SELECT COALESCE(MAX(version), 0) + 1 AS next FROM policy_sets WHERE tenant_id = $1")
                        .bind(tenant.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db_error)?
                        .int("next")?;
                sqlx::query(
                    "INSERT INTO policy_sets (tenant_id, version, policies, schema_text, schema_format, \
                     template_links, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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
                self.commit_with_events(tx, &rows::about_version(events, next)).await?;
                rows::to_u64(next, "policy version")
            }

            async fn latest_policy_set(
                &self,
                tenant: &rsp_core::TenantId,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::policy::PolicySetVersion>> {
                let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1")
                    .bind(tenant.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::rows::db_error)?;
                row.map(|r| $crate::rows::policy_version_from_row(tenant, &r)).transpose()
            }

            async fn policy_set(
                &self,
                tenant: &rsp_core::TenantId,
                version: u64,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::policy::PolicySetVersion>> {
                let row = sqlx::query("SELECT * FROM policy_sets WHERE tenant_id = $1 AND version = $2")
                    .bind(tenant.as_str())
                    .bind($crate::rows::to_i64(version)?)
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::rows::db_error)?;
                row.map(|r| $crate::rows::policy_version_from_row(tenant, &r)).transpose()
            }

            async fn list_policy_versions(
                &self,
                tenant: &rsp_core::TenantId,
            ) -> rsp_core::ports::StoreResult<Vec<(u64, rsp_core::UnixTime, String)>> {
                let rows = sqlx::query(
                    "SELECT version, created_at, created_by FROM policy_sets WHERE tenant_id = $1 \
                     ORDER BY version DESC",
                )
                .bind(tenant.as_str())
                .fetch_all(self.reader())
                .await
                .map_err($crate::rows::db_error)?;
                rows.iter().map($crate::rows::policy_history_from_row).collect()
            }

            async fn entities(
                &self,
                tenant: &rsp_core::TenantId,
            ) -> rsp_core::ports::StoreResult<(u64, Vec<rsp_core::policy::StoredEntity>)> {
                use $crate::rows::{self, Columns as _, db_error};
                // One snapshot for both statements, so the version always describes the entities returned.
                let mut tx = self.snapshot_tx().await?;
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
                let entities = rows.iter().map(rows::entity_from_row).collect::<Result<Vec<_>, _>>()?;
                Ok((rows::to_u64(version.unwrap_or(0), "entity version")?, entities))
            }

            async fn write_entities(
                &self,
                tenant: &rsp_core::TenantId,
                upserts: &[rsp_core::policy::StoredEntity],
                deletes: &[(String, String)],
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<u64> {
                use $crate::rows::{self, Columns as _, db_error};
                let mut tx = self.write_tx().await?;
                for entity in upserts {
                    sqlx::query(
                        "INSERT INTO policy_entities (tenant_id, entity_type, entity_id, body) \
                         VALUES ($1, $2, $3, $4) \
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
                    sqlx::query(
                        "DELETE FROM policy_entities WHERE tenant_id = $1 AND entity_type = $2 AND entity_id = $3",
                    )
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
                self.commit_with_events(tx, &rows::about_version(events, version)).await?;
                rows::to_u64(version, "entity version")
            }
        }
    };
}

pub(crate) use policy_store;
