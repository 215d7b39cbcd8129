//! The UserInfo endpoint's use case (OIDC Core §5.3): the signed-in user's claims, released by the scopes
//! the access token carries (§5.4), read through [`UserClaimsSource`] so this crate knows no user store.

use async_trait::async_trait;
use rsp_core::TenantId;
use serde_json::{Map, Value};

use crate::AuthService;
use crate::authorize::OPENID_SCOPE;
use crate::bearer::BearerError;

/// Where a user's standard claims (OIDC Core §5.1) come from.
#[async_trait]
pub trait UserClaimsSource: Send + Sync {
    /// The user's claims by name, or `None` when the user does not exist (any more).
    async fn claims(&self, tenant: &TenantId, user_id: &str) -> Option<Map<String, Value>>;
}

/// The source of a server without users: nobody exists, so userinfo refuses every token.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoUsers;

#[async_trait]
impl UserClaimsSource for NoUsers {
    async fn claims(&self, _tenant: &TenantId, _user_id: &str) -> Option<Map<String, Value>> {
        None
    }
}

/// The claims each scope releases (OIDC Core §5.4).
const SCOPE_CLAIMS: [(&str, &[&str]); 4] = [
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// Keeps the claims `scope` releases, and sets `sub` from the token whatever the source said.
pub fn release(claims: Map<String, Value>, scope: &str, sub: &str) -> Map<String, Value> {
    let granted: Vec<&str> = scope.split(' ').collect();
    let allowed =
        |name: &str| SCOPE_CLAIMS.iter().any(|(scope, names)| granted.contains(scope) && names.contains(&name));
    let mut released: Map<String, Value> = claims.into_iter().filter(|(name, _)| allowed(name)).collect();
    released.insert("sub".into(), Value::String(sub.to_owned()));
    released
}

impl AuthService {
    /// UserInfo: a live access token of an OpenID authentication (scope `openid`, issued to a user, not
    /// to a client for itself) gets the user's claims its scopes allow, always with the same `sub` as
    /// the ID token.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn userinfo(&self, tenant: &TenantId, token: &str) -> Result<Map<String, Value>, BearerError> {
        let claims = self.live_bearer(tenant, token).await?;
        if claims.auth_time.is_none() {
            return Err(BearerError::InvalidToken);
        }
        if !claims.has_scope(OPENID_SCOPE) {
            return Err(BearerError::InsufficientScope(OPENID_SCOPE));
        }
        let user = self.user_claims.claims(tenant, &claims.sub).await.ok_or(BearerError::InvalidToken)?;
        rsp_core::context::set_actor(claims.client_id.clone());
        Ok(release(user, claims.scope.as_deref().unwrap_or_default(), &claims.sub))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn claims_are_released_by_scope_and_sub_comes_from_the_token() {
        let all = json!({
            "sub": "forged", "name": "Ada", "email": "ada@example.com", "phone_number": "+1", "password_hash": "x"
        });
        let all = all.as_object().unwrap().clone();
        let only_openid = release(all.clone(), "openid", "u1");
        assert_eq!(Value::Object(only_openid), json!({"sub": "u1"}));
        let with_email = release(all, "openid email", "u1");
        assert_eq!(Value::Object(with_email), json!({"sub": "u1", "email": "ada@example.com"}));
    }
}
