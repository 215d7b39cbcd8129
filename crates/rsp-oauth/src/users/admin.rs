//! User admin use cases, for the admin API and the CLI. Each write stores its event with it; events never
//! carry a password or its hash, only that it changed.

use rsp_core::{Event, EventKind, Priority, Secret, StoreError, User, UserId, Username};
use serde_json::json;

use crate::users::rules::check_new_password;
use crate::{AdminError, AuthService};

/// The most users one page holds, and the page size when none is asked for.
pub const MAX_PAGE: u32 = 200;
pub const DEFAULT_PAGE: u32 = 50;

/// The fields of a new user. Without a password the user exists but cannot sign in yet.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub password: Option<Secret>,
}

/// Changes to a user; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub disabled: Option<bool>,
}

/// One page of users and the cursor of the next, if there may be one.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_cursor: Option<String>,
}

impl AuthService {
    pub async fn create_user(&self, tenant: &str, new: NewUser) -> Result<User, AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        let username = parse_username(&new.username)?;
        let password_hash = match &new.password {
            Some(password) => Some(self.new_password_hash(password, &username).await?),
            None => None,
        };
        let now = self.clock.now();
        let user = User {
            tenant_id: tenant.id,
            user_id: UserId::parse(new_user_id()).map_err(|e| AdminError::Internal(e.to_string()))?,
            username,
            password_changed_at: password_hash.as_ref().map(|_| now),
            password_hash,
            disabled_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.create_user(&user, &[user_event(EventKind::USER_CREATED, &user)]).await.map_err(taken)?;
        tracing::info!(tenant = %user.tenant_id, user = %user.user_id, "user created");
        Ok(user)
    }

    pub async fn get_user(&self, tenant: &str, user_id: &str) -> Result<User, AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        let id = UserId::parse(user_id).map_err(|_| AdminError::NotFound("user"))?;
        self.store.get_user(&tenant.id, &id).await?.ok_or(AdminError::NotFound("user"))
    }

    /// A page of at most `limit` users (1 to [`MAX_PAGE`]) in id order, after `cursor` (a user id from
    /// a previous page's `next_cursor`).
    pub async fn list_users(
        &self,
        tenant: &str,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<UserPage, AdminError> {
        let tenant = self.get_tenant(tenant).await?;
        let limit = limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(AdminError::Invalid(format!("limit must be 1 to {MAX_PAGE}")));
        }
        let after = cursor
            .map(|c| UserId::parse(c).map_err(|_| AdminError::Invalid("cursor is not a user id".into())))
            .transpose()?;
        let users = self.store.list_users(&tenant.id, after.as_ref(), limit).await?;
        let full = users.len() == usize::try_from(limit).unwrap_or(usize::MAX);
        let next_cursor = if full { users.last().map(|u| u.user_id.to_string()) } else { None };
        Ok(UserPage { users, next_cursor })
    }

    pub async fn update_user(&self, tenant: &str, user_id: &str, changes: UserChanges) -> Result<User, AdminError> {
        let mut user = self.get_user(tenant, user_id).await?;
        if let Some(name) = changes.username {
            user.username = parse_username(&name)?;
        }
        let now = self.clock.now();
        match changes.disabled {
            Some(true) if user.disabled_at.is_none() => user.disabled_at = Some(now),
            Some(false) => user.disabled_at = None,
            _ => {}
        }
        user.updated_at = now;
        self.store.update_user(&user, &[user_event(EventKind::USER_UPDATED, &user)]).await.map_err(taken)?;
        Ok(user)
    }

    /// Disabling keeps the user and its id; the user can no longer sign in.
    pub async fn set_user_disabled(&self, tenant: &str, user_id: &str, disabled: bool) -> Result<User, AdminError> {
        self.update_user(tenant, user_id, UserChanges { disabled: Some(disabled), ..UserChanges::default() }).await
    }

    /// Sets a new password (an administrator's reset: no current password is asked for). Every grant and
    /// session of the user ends with it (PWD-6).
    pub async fn set_user_password(&self, tenant: &str, user_id: &str, password: &Secret) -> Result<User, AdminError> {
        let mut user = self.get_user(tenant, user_id).await?;
        user.password_hash = Some(self.new_password_hash(password, &user.username).await?);
        let now = self.clock.now();
        user.password_changed_at = Some(now);
        user.updated_at = now;
        let changed = Event::new(user.tenant_id.clone(), EventKind::USER_PASSWORD_CHANGED, Priority::High)
            .subject(user.user_id.as_str())
            .data(json!({"reason": "set"}));
        self.store.update_user(&user, &[changed]).await?;
        self.after_password_change(&user.tenant_id, &user.user_id).await?;
        tracing::info!(tenant = %user.tenant_id, user = %user.user_id, "user password set");
        Ok(user)
    }

    pub async fn delete_user(&self, tenant: &str, user_id: &str) -> Result<(), AdminError> {
        let user = self.get_user(tenant, user_id).await?;
        let deleted =
            Event::new(user.tenant_id.clone(), EventKind::USER_DELETED, Priority::High).subject(user.user_id.as_str());
        self.store.delete_user(&user.tenant_id, &user.user_id, &[deleted]).await?;
        Ok(())
    }

    /// Checks the password's rules first, so an oversized one never reaches the hasher.
    async fn new_password_hash(&self, password: &Secret, username: &Username) -> Result<String, AdminError> {
        check_new_password(password, username).map_err(|e| AdminError::Invalid(e.to_string()))?;
        self.users.hasher.hash(password).await.map_err(|e| AdminError::Internal(e.to_string()))
    }
}

fn parse_username(value: &str) -> Result<Username, AdminError> {
    Username::parse(value).map_err(|e| AdminError::Invalid(e.to_string()))
}

/// A unique violation on users is always the folded username (ids are random).
fn taken(error: StoreError) -> AdminError {
    match error {
        StoreError::Conflict(_) => AdminError::Conflict("username is taken".into()),
        other => other.into(),
    }
}

/// What an auditor needs to see changed: never the hash.
fn user_event(kind: EventKind, user: &User) -> Event {
    Event::new(user.tenant_id.clone(), kind, Priority::High).subject(user.user_id.as_str()).data(json!({
        "username": user.username.as_str(),
        "disabled": user.is_disabled(),
        "has_password": user.password_hash.is_some(),
    }))
}

/// 128 random bits in lowercase hex, like client ids: unguessable, never a case-variant of another.
fn new_user_id() -> String {
    crate::crypto::random::random_bytes::<16>().iter().map(|b| format!("{b:02x}")).collect()
}
