//! A tenant's end users, for both engines.

use rsp_core::ports::StoreResult;
use rsp_core::{TenantId, UnixTime, User, UserId, Username};
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

use crate::rows::{Columns, corrupt};

/// Binds what an update of a user may change, in the order both the insert and the update number it
/// (`$1`..`$7`).
pub(crate) fn bind_user_details<'q, DB>(
    query: Query<'q, DB, DB::Arguments>,
    user: &User,
) -> Query<'q, DB, DB::Arguments>
where
    DB: Database,
    for<'t> Option<String>: Encode<'t, DB> + Type<DB>,
    for<'t> String: Encode<'t, DB> + Type<DB>,
    for<'t> i64: Encode<'t, DB> + Type<DB>,
    for<'t> Option<i64>: Encode<'t, DB> + Type<DB>,
{
    query
        .bind(user.username.as_str().to_owned())
        .bind(user.username.folded().to_owned())
        .bind(user.password_hash.clone())
        .bind(user.disabled_at.map(|t| t.0))
        .bind(user.updated_at.0)
        .bind(user.password_changed_at.map(|t| t.0))
}

pub(crate) fn user_from_row(row: &impl Columns) -> StoreResult<User> {
    let username = Username::parse(&row.text("username")?).map_err(|_| corrupt("username"))?;
    if username.folded() != row.text("username_folded")? {
        return Err(corrupt("folded username"));
    }
    Ok(User {
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        user_id: UserId::parse(row.text("user_id")?).map_err(|_| corrupt("user id"))?,
        username,
        password_hash: row.opt_text("password_hash")?,
        disabled_at: row.opt_int("disabled_at")?.map(UnixTime),
        created_at: UnixTime(row.int("created_at")?),
        updated_at: UnixTime(row.int("updated_at")?),
        password_changed_at: row.opt_int("password_changed_at")?.map(UnixTime),
    })
}

/// Implements `UserStore` for `$store` over database `$db` (see [`crate::engines`] for what it must
/// provide). Expand it after `account_stores!`, whose `change_existing` it uses.
macro_rules! user_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl rsp_core::ports::UserStore for $store {
            async fn create_user(&self, user: &rsp_core::User, events: &[rsp_core::Event]) -> rsp_core::ports::StoreResult<()> {
                let mut tx = self.write_tx().await?;
                let insert = sqlx::query(
                    "INSERT INTO users (username, username_folded, password_hash, disabled_at, \
                     updated_at, password_changed_at, tenant_id, user_id, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                );
                $crate::engines::users::bind_user_details(insert, user)
                    .bind(user.tenant_id.as_str())
                    .bind(user.user_id.as_str())
                    .bind(user.created_at.0)
                    .execute(&mut *tx)
                    .await
                    .map_err($crate::rows::db_error)?;
                self.commit_with_events(tx, events).await
            }

            async fn get_user(
                &self,
                tenant: &rsp_core::TenantId,
                id: &rsp_core::UserId,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::User>> {
                let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND user_id = $2")
                    .bind(tenant.as_str())
                    .bind(id.as_str())
                    .fetch_optional(self.reader())
                    .await
                    .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::engines::users::user_from_row).transpose()
            }

            /// From the primary: a login must see a password set a moment ago.
            async fn find_user_by_username(
                &self,
                tenant: &rsp_core::TenantId,
                folded: &str,
            ) -> rsp_core::ports::StoreResult<Option<rsp_core::User>> {
                let row = sqlx::query("SELECT * FROM users WHERE tenant_id = $1 AND username_folded = $2")
                    .bind(tenant.as_str())
                    .bind(folded)
                    .fetch_optional(self.primary())
                    .await
                    .map_err($crate::rows::db_error)?;
                row.as_ref().map($crate::engines::users::user_from_row).transpose()
            }

            async fn list_users(
                &self,
                tenant: &rsp_core::TenantId,
                after: Option<&rsp_core::UserId>,
                limit: u32,
            ) -> rsp_core::ports::StoreResult<Vec<rsp_core::User>> {
                let rows = sqlx::query(
                    "SELECT * FROM users WHERE tenant_id = $1 AND user_id > $2 ORDER BY user_id LIMIT $3",
                )
                .bind(tenant.as_str())
                .bind(after.map_or("", |id| id.as_str()))
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await
                .map_err($crate::rows::db_error)?;
                rows.iter().map($crate::engines::users::user_from_row).collect()
            }

            async fn update_user(&self, user: &rsp_core::User, events: &[rsp_core::Event]) -> rsp_core::ports::StoreResult<()> {
                let update = sqlx::query(
                    "UPDATE users SET username = $1, username_folded = $2, password_hash = $3, \
                     disabled_at = $4, updated_at = $5, password_changed_at = $6 WHERE tenant_id = $7 AND user_id = $8",
                );
                let update = $crate::engines::users::bind_user_details(update, user)
                    .bind(user.tenant_id.as_str())
                    .bind(user.user_id.as_str());
                self.change_existing(update, events).await
            }

            async fn replace_password_hash(
                &self,
                tenant: &rsp_core::TenantId,
                id: &rsp_core::UserId,
                current: &str,
                new_hash: &str,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<bool> {
                let mut tx = self.write_tx().await?;
                let done = sqlx::query(
                    "UPDATE users SET password_hash = $1 WHERE tenant_id = $2 AND user_id = $3 AND password_hash = $4",
                )
                .bind(new_hash)
                .bind(tenant.as_str())
                .bind(id.as_str())
                .bind(current)
                .execute(&mut *tx)
                .await
                .map_err($crate::rows::db_error)?;
                if done.rows_affected() == 0 {
                    tx.rollback().await.map_err($crate::rows::db_error)?;
                    return Ok(false);
                }
                self.commit_with_events(tx, events).await?;
                Ok(true)
            }

            async fn delete_user(
                &self,
                tenant: &rsp_core::TenantId,
                id: &rsp_core::UserId,
                events: &[rsp_core::Event],
            ) -> rsp_core::ports::StoreResult<()> {
                self.change_existing(
                    sqlx::query("DELETE FROM users WHERE tenant_id = $1 AND user_id = $2")
                        .bind(tenant.as_str())
                        .bind(id.as_str()),
                    events,
                )
                .await
            }
        }
    };
}

pub(crate) use user_store;
