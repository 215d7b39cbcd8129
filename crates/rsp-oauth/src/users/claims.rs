//! The standard claims (OIDC Core §5.1) of the users in the store: the default [`UserClaimsSource`].
//!
//! A user record holds a username and timestamps, nothing more, so `profile` releases
//! `preferred_username` and `updated_at`; the other claims, `email` among them, are absent rather than
//! invented until the record carries them. [`crate::userinfo::release`] filters by scope afterwards.

use std::sync::Arc;

use async_trait::async_trait;
use rsp_core::{Store, TenantId, User, UserId};
use serde_json::{Map, Value};

use crate::userinfo::UserClaimsSource;

/// Reads claims from the user store on every call: userinfo must see a disabled or deleted user at once.
pub struct StoreUserClaims {
    store: Arc<dyn Store>,
}

impl StoreUserClaims {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl std::fmt::Debug for StoreUserClaims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreUserClaims").finish_non_exhaustive()
    }
}

/// A user's claims by name, before release by scope.
pub fn user_claims(user: &User) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(user.user_id.as_str().to_owned()));
    claims.insert("preferred_username".into(), Value::String(user.username.as_str().to_owned()));
    claims.insert("updated_at".into(), Value::from(user.updated_at.0));
    claims
}

#[async_trait]
impl UserClaimsSource for StoreUserClaims {
    /// A disabled user has no claims: their tokens stop working at userinfo as soon as they are disabled.
    /// A store failure is logged and answered as "no such user", which refuses the token (fail closed).
    async fn claims(&self, tenant: &TenantId, user_id: &str) -> Option<Map<String, Value>> {
        let id = UserId::parse(user_id).ok()?;
        match self.store.get_user(tenant, &id).await {
            Ok(Some(user)) if !user.is_disabled() => Some(user_claims(&user)),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "userinfo could not read the user");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rsp_core::{UnixTime, Username};
    use serde_json::json;

    use super::*;
    use crate::userinfo::release;

    #[test]
    fn profile_releases_the_username_and_openid_alone_releases_only_sub() {
        let user = User {
            tenant_id: TenantId::default_tenant(),
            user_id: UserId::parse("0123456789abcdef0123456789abcdef").unwrap(),
            username: Username::parse("Ada").unwrap(),
            password_hash: Some("$argon2id$secret".into()),
            disabled_at: None,
            created_at: UnixTime(5),
            updated_at: UnixTime(7),
            password_changed_at: None,
        };
        let sub = user.user_id.as_str();
        let profile = release(user_claims(&user), "openid profile", sub);
        assert_eq!(Value::Object(profile), json!({"sub": sub, "preferred_username": "Ada", "updated_at": 7}));
        assert_eq!(Value::Object(release(user_claims(&user), "openid email", sub)), json!({"sub": sub}));
    }
}
