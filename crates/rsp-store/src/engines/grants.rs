//! Grants, authorization codes, refresh tokens and consents, for both engines.
//!
//! Every rule that must hold across replicas is one transaction whose first statement is a conditional
//! `UPDATE`: it takes the row lock on PostgreSQL (a concurrent writer waits, then re-evaluates the
//! condition and finds it false) and SQLite's `BEGIN IMMEDIATE` excludes every other writer. So a code is
//! consumed once, a refresh token rotates once, and an issuance never lands after its grant was revoked.

use rsp_core::grant::{Consent, Grant, RefreshStatus, RefreshToken};
use rsp_core::ports::StoreResult;
use rsp_core::{ClientId, ScopeSet, TenantId, UnixTime};

use crate::rows::{Columns, corrupt, list_from_json};

fn scope(text: &str) -> StoreResult<ScopeSet> {
    ScopeSet::parse(text).map_err(|_| corrupt("scope"))
}

fn tenant(row: &impl Columns) -> StoreResult<TenantId> {
    TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))
}

fn client(row: &impl Columns) -> StoreResult<ClientId> {
    ClientId::parse(row.text("client_id")?).map_err(|_| corrupt("client id"))
}

pub(crate) fn grant_from_row(row: &impl Columns) -> StoreResult<Grant> {
    Ok(Grant {
        tenant_id: tenant(row)?,
        grant_id: row.text("grant_id")?,
        client_id: client(row)?,
        subject: row.text("subject")?,
        scope: scope(&row.text("scope")?)?,
        audience: row.text("audience")?,
        nonce: row.opt_text("nonce")?,
        auth_time: UnixTime(row.int("auth_time")?),
        amr: list_from_json(&row.text("amr")?)?,
        acr: row.opt_text("acr")?,
        created_at: UnixTime(row.int("created_at")?),
        expires_at: UnixTime(row.int("expires_at")?),
    })
}

pub(crate) fn refresh_from_row(row: &impl Columns) -> StoreResult<RefreshToken> {
    Ok(RefreshToken {
        tenant_id: tenant(row)?,
        token_hash: row.text("token_hash")?,
        grant_id: row.text("grant_id")?,
        generation: row.int("generation")?,
        parent_hash: row.opt_text("parent_hash")?,
        status: RefreshStatus::parse(&row.text("status")?).ok_or_else(|| corrupt("refresh token status"))?,
        scope: scope(&row.text("scope")?)?,
        created_at: UnixTime(row.int("created_at")?),
        expires_at: UnixTime(row.int("expires_at")?),
    })
}

pub(crate) fn consent_from_row(row: &impl Columns) -> StoreResult<Consent> {
    Ok(Consent {
        tenant_id: tenant(row)?,
        subject: row.text("subject")?,
        client_id: client(row)?,
        scope: scope(&row.text("scope")?)?,
        granted_at: UnixTime(row.int("granted_at")?),
    })
}

/// Implements `GrantStore` for `$store` over database `$db` (see [`crate::engines`] for what it must
/// provide).
macro_rules! grant_store {
    ($store:ty, $db:ty) => {
        impl $store {
            /// Stores what one token response of grant `grant_id` issued, in the caller's transaction.
            async fn insert_issuance(
                tx: &mut <$db as sqlx::Database>::Connection,
                tenant: &rsp_core::TenantId,
                grant_id: &str,
                issuance: &rsp_core::grant::Issuance,
                lineage: (i64, Option<&str>),
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<()> {
                use $crate::rows::db_error;
                sqlx::query(
                    "INSERT INTO grant_access_tokens (tenant_id, jti, grant_id, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(tenant.as_str())
                .bind(issuance.access_jti.as_str())
                .bind(grant_id)
                .bind(issuance.access_expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                if let Some(refresh) = &issuance.refresh {
                    let (generation, parent) = lineage;
                    sqlx::query(
                        "INSERT INTO refresh_tokens (tenant_id, token_hash, grant_id, generation, parent_hash, \
                         status, scope, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, 'active', $6, $7, $8)",
                    )
                    .bind(tenant.as_str())
                    .bind(refresh.token_hash.as_str())
                    .bind(grant_id)
                    .bind(generation)
                    .bind(parent)
                    .bind(refresh.scope.to_string())
                    .bind(now.0)
                    .bind(refresh.expires_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                }
                Ok(())
            }

            /// Revokes grant `grant_id` in the caller's transaction; returns the access tokens it revoked.
            async fn revoke_grant_in(
                tx: &mut <$db as sqlx::Database>::Connection,
                tenant: &rsp_core::TenantId,
                grant_id: &str,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<Vec<rsp_core::TokenId>> {
                use sqlx::Row as _;
                use $crate::rows::db_error;
                // First, so that an issuance racing with this revocation waits for it (or it for the issuance).
                sqlx::query(
                    "UPDATE grants SET revoked_at = $3 WHERE tenant_id = $1 AND grant_id = $2 AND revoked_at IS NULL",
                )
                .bind(tenant.as_str())
                .bind(grant_id)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                sqlx::query(
                    "UPDATE refresh_tokens SET status = 'revoked' WHERE tenant_id = $1 AND grant_id = $2 \
                     AND status <> 'revoked'",
                )
                .bind(tenant.as_str())
                .bind(grant_id)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                let rows = sqlx::query(
                    "INSERT INTO revoked_tokens (tenant_id, jti, expires_at) \
                     SELECT g.tenant_id, g.jti, g.expires_at FROM grant_access_tokens g \
                     WHERE g.tenant_id = $1 AND g.grant_id = $2 AND g.expires_at > $3 AND NOT EXISTS \
                     (SELECT 1 FROM revoked_tokens r WHERE r.tenant_id = g.tenant_id AND r.jti = g.jti) \
                     ON CONFLICT DO NOTHING RETURNING jti",
                )
                .bind(tenant.as_str())
                .bind(grant_id)
                .bind(now.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                rows.iter()
                    .map(|row| {
                        let jti: String = row.try_get("jti").map_err(db_error)?;
                        rsp_core::TokenId::parse(jti).map_err(|_| $crate::rows::corrupt("token id"))
                    })
                    .collect()
            }

            async fn grant_in(
                tx: &mut <$db as sqlx::Database>::Connection,
                tenant: &rsp_core::TenantId,
                grant_id: &str,
            ) -> rsp_core::ports::StoreResult<rsp_core::grant::Grant> {
                let row = sqlx::query("SELECT * FROM grants WHERE tenant_id = $1 AND grant_id = $2")
                    .bind(tenant.as_str())
                    .bind(grant_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                $crate::engines::grants::grant_from_row(&row)
            }
        }

        #[async_trait::async_trait]
        impl rsp_core::ports::GrantStore for $store {
            async fn create_code(
                &self,
                grant: &rsp_core::grant::Grant,
                code: &rsp_core::grant::AuthorizationCode,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                use $crate::rows::db_error;
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO grants (tenant_id, grant_id, client_id, subject, scope, audience, nonce, auth_time, \
                     amr, acr, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                )
                .bind(grant.tenant_id.as_str())
                .bind(grant.grant_id.as_str())
                .bind(grant.client_id.as_str())
                .bind(grant.subject.as_str())
                .bind(grant.scope.to_string())
                .bind(grant.audience.as_str())
                .bind(grant.nonce.as_deref())
                .bind(grant.auth_time.0)
                .bind($crate::rows::list_to_json(&grant.amr))
                .bind(grant.acr.as_deref())
                .bind(grant.created_at.0)
                .bind(grant.expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                sqlx::query(
                    "INSERT INTO authorization_codes (tenant_id, code_hash, grant_id, redirect_uri, code_challenge, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(code.tenant_id.as_str())
                .bind(code.code_hash.as_str())
                .bind(code.grant_id.as_str())
                .bind(code.redirect_uri.as_str())
                .bind(code.code_challenge.as_str())
                .bind(code.expires_at.0)
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
                self.commit_with_events(tx, events).await
            }

            async fn consume_code(
                &self,
                tenant: &rsp_core::TenantId,
                code_hash: &str,
                now: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<rsp_core::grant::CodeRedemption> {
                use $crate::rows::{Columns as _, db_error};
                use rsp_core::grant::CodeRedemption;
                let mut tx = self.write_tx().await?;
                let consumed = sqlx::query(
                    "UPDATE authorization_codes SET consumed_at = $3 \
                     WHERE tenant_id = $1 AND code_hash = $2 AND consumed_at IS NULL \
                     RETURNING grant_id, redirect_uri, code_challenge, expires_at",
                )
                .bind(tenant.as_str())
                .bind(code_hash)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let outcome = match consumed {
                    Some(row) => {
                        let code = rsp_core::grant::AuthorizationCode {
                            tenant_id: tenant.clone(),
                            code_hash: code_hash.to_owned(),
                            grant_id: row.text("grant_id")?,
                            redirect_uri: row.text("redirect_uri")?,
                            code_challenge: row.text("code_challenge")?,
                            expires_at: rsp_core::UnixTime(row.int("expires_at")?),
                        };
                        let grant = Self::grant_in(&mut tx, tenant, &code.grant_id).await?;
                        CodeRedemption::Redeemed { code, grant: Box::new(grant) }
                    }
                    None => {
                        let used = sqlx::query(
                            "SELECT grant_id FROM authorization_codes WHERE tenant_id = $1 AND code_hash = $2",
                        )
                        .bind(tenant.as_str())
                        .bind(code_hash)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(db_error)?;
                        match used {
                            Some(row) => CodeRedemption::AlreadyUsed { grant_id: row.text("grant_id")? },
                            None => CodeRedemption::Unknown,
                        }
                    }
                };
                tx.commit().await.map_err(db_error)?;
                Ok(outcome)
            }

            async fn record_issuance(
                &self,
                tenant: &rsp_core::TenantId,
                grant_id: &str,
                issuance: &rsp_core::grant::Issuance,
                now: rsp_core::UnixTime,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                let live = sqlx::query(
                    "UPDATE grants SET last_issued_at = $3 WHERE tenant_id = $1 AND grant_id = $2 \
                     AND revoked_at IS NULL",
                )
                .bind(tenant.as_str())
                .bind(grant_id)
                .bind(now.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                if live.rows_affected() == 0 {
                    return Ok(false);
                }
                Self::insert_issuance(&mut tx, tenant, grant_id, issuance, (0, None), now).await?;
                self.commit_with_events(tx, events).await?;
                Ok(true)
            }

            async fn find_refresh_token(
                &self,
                tenant: &rsp_core::TenantId,
                token_hash: &str,
            ) -> rsp_core::ports::StoreResult<Option<(rsp_core::grant::RefreshToken, rsp_core::grant::Grant)>> {
                use $crate::rows::db_error;
                let row = sqlx::query("SELECT * FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2")
                    .bind(tenant.as_str())
                    .bind(token_hash)
                    .fetch_optional(self.primary())
                    .await
                    .map_err(db_error)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let token = $crate::engines::grants::refresh_from_row(&row)?;
                let grant = sqlx::query("SELECT * FROM grants WHERE tenant_id = $1 AND grant_id = $2")
                    .bind(tenant.as_str())
                    .bind(token.grant_id.as_str())
                    .fetch_one(self.primary())
                    .await
                    .map_err(db_error)?;
                Ok(Some((token, $crate::engines::grants::grant_from_row(&grant)?)))
            }

            async fn rotate_refresh_token(
                &self,
                tenant: &rsp_core::TenantId,
                token_hash: &str,
                window: rsp_core::grant::RotationWindow,
                next: &rsp_core::grant::Issuance,
                sealed_response: &[u8],
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<rsp_core::grant::Rotation> {
                use sqlx::Row as _;
                use $crate::rows::{Columns as _, db_error};
                use rsp_core::grant::Rotation;
                let now = window.now;
                let mut tx = self.write_tx().await?;
                // Locks the grant row: every rotation and revocation of one family takes turns.
                let grant = sqlx::query(
                    "UPDATE grants SET last_issued_at = $3 WHERE tenant_id = $1 AND revoked_at IS NULL \
                     AND expires_at > $3 AND grant_id = \
                     (SELECT grant_id FROM refresh_tokens WHERE tenant_id = $1 AND token_hash = $2) \
                     RETURNING grant_id",
                )
                .bind(tenant.as_str())
                .bind(token_hash)
                .bind(now.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                let Some(grant) = grant else {
                    return Ok(Rotation::Invalid);
                };
                let grant_id = grant.text("grant_id")?;
                let rotated = sqlx::query(
                    "UPDATE refresh_tokens SET status = 'rotated', rotated_at = $3, grace_response = $4 \
                     WHERE tenant_id = $1 AND token_hash = $2 AND status = 'active' AND expires_at > $3 \
                     RETURNING generation",
                )
                .bind(tenant.as_str())
                .bind(token_hash)
                .bind(now.0)
                .bind(sealed_response)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
                if let Some(row) = rotated {
                    let generation = row.int("generation")?.saturating_add(1);
                    Self::insert_issuance(&mut tx, tenant, &grant_id, next, (generation, Some(token_hash)), now)
                        .await?;
                    self.commit_with_events(tx, events).await?;
                    return Ok(Rotation::Rotated);
                }
                let row = sqlx::query(
                    "SELECT t.status, t.rotated_at, t.grace_response, \
                     (SELECT COUNT(*) FROM refresh_tokens c WHERE c.tenant_id = t.tenant_id \
                      AND c.parent_hash = t.token_hash AND c.status = 'active') AS live_children \
                     FROM refresh_tokens t WHERE t.tenant_id = $1 AND t.token_hash = $2",
                )
                .bind(tenant.as_str())
                .bind(token_hash)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                if row.text("status")? != rsp_core::grant::RefreshStatus::Rotated.as_str() {
                    // Active but past its idle limit, or revoked.
                    return Ok(Rotation::Invalid);
                }
                let rotated_at = row.opt_int("rotated_at")?.unwrap_or(i64::MIN);
                let sealed: Option<Vec<u8>> = row.try_get("grace_response").map_err(db_error)?;
                let in_grace = rotated_at >= now.0.saturating_sub(window.grace_secs) && row.int("live_children")? > 0;
                if let (true, Some(sealed_response)) = (in_grace, sealed) {
                    tx.commit().await.map_err(db_error)?;
                    return Ok(Rotation::Grace { sealed_response });
                }
                let revoked = Self::revoke_grant_in(&mut tx, tenant, &grant_id, now).await?;
                tx.commit().await.map_err(db_error)?;
                Ok(Rotation::Reused { revoked })
            }

            async fn revoke_grant(
                &self,
                tenant: &rsp_core::TenantId,
                grant_id: &str,
                now: rsp_core::UnixTime,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<Vec<rsp_core::TokenId>> {
                let mut tx = self.write_tx().await?;
                let revoked = Self::revoke_grant_in(&mut tx, tenant, grant_id, now).await?;
                self.commit_with_events(tx, events).await?;
                Ok(revoked)
            }

            async fn revoke_user_grants(
                &self,
                tenant: &rsp_core::TenantId,
                subject: &str,
                now: rsp_core::UnixTime,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<Vec<rsp_core::TokenId>> {
                use $crate::rows::{Columns as _, db_error};
                let mut tx = self.write_tx().await?;
                // The conditional update first, as in every rule here: an issuance racing with it either
                // lands before (and is revoked below) or finds its grant revoked.
                let grants = sqlx::query(
                    "UPDATE grants SET revoked_at = $3 WHERE tenant_id = $1 AND subject = $2 \
                     AND revoked_at IS NULL RETURNING grant_id",
                )
                .bind(tenant.as_str())
                .bind(subject)
                .bind(now.0)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_error)?;
                let mut revoked = Vec::new();
                for row in &grants {
                    let grant_id = row.text("grant_id")?;
                    revoked.extend(Self::revoke_grant_in(&mut tx, tenant, &grant_id, now).await?);
                }
                self.commit_with_events(tx, events).await?;
                Ok(revoked)
            }

            async fn save_consent(
                &self,
                consent: &rsp_core::grant::Consent,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                sqlx::query(
                    "INSERT INTO consents (tenant_id, subject, client_id, scope, granted_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id, subject, client_id) \
                     DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
                )
                .bind(consent.tenant_id.as_str())
                .bind(consent.subject.as_str())
                .bind(consent.client_id.as_str())
                .bind(consent.scope.to_string())
                .bind(consent.granted_at.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, events).await
            }

            async fn find_consent(
                &self,
                tenant: &rsp_core::TenantId,
                subject: &str,
                client: &rsp_core::ClientId,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::grant::Consent>> {
                let row = sqlx::query(
                    "SELECT * FROM consents WHERE tenant_id = $1 AND subject = $2 AND client_id = $3",
                )
                .bind(tenant.as_str())
                .bind(subject)
                .bind(client.as_str())
                .fetch_optional(self.reader())
                .await
                .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::engines::grants::consent_from_row).transpose()
            }

            async fn purge_expired_grants(
                &self,
                now: rsp_core::UnixTime,
                unredeemed_before: rsp_core::UnixTime,
            ) -> rsp_core::ports::StoreResult<u64> {
                let mut tx = self.write_tx().await?;
                // Codes, refresh tokens and token records go with their grant (ON DELETE CASCADE).
                let done = sqlx::query(
                    "DELETE FROM grants WHERE expires_at < $1 OR (last_issued_at IS NULL AND created_at < $2)",
                )
                .bind(now.0)
                .bind(unredeemed_before.0)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, &[]).await?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use grant_store;
