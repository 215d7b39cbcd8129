//! Which scopes a token gets and which resource server it is for (RFC 6749 §3.3, RFC 8707, RFC 9068 §3).
//!
//! Platform scopes (`rsp:admin`) belong to the platform's own resources; every other scope belongs to the
//! client's default audience or the `resource` it names. A request whose scopes belong to different
//! resources is refused rather than given an ambiguous token.

use rsp_core::{Client, ScopeSet, TenantId};

use crate::{Issuers, OAuthError};

/// The scope that lets a token call the admin API.
pub const ADMIN_SCOPE: &str = "rsp:admin";

/// The scope set and audience a token will carry.
#[derive(Debug)]
pub struct GrantedAccess {
    pub scope: ScopeSet,
    pub audience: String,
}

fn is_platform_scope(scope: &str) -> bool {
    scope.starts_with("rsp:")
}

/// The audience a client gets when it names no resource and asks for no platform scope: its first
/// registered audience, else the tenant's issuer.
fn default_audience(issuers: &Issuers, tenant: &TenantId, client: &Client) -> String {
    client.audiences.first().cloned().unwrap_or_else(|| issuers.issuer(tenant))
}

pub fn resolve_audience(
    issuers: &Issuers,
    tenant: &TenantId,
    client: &Client,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<GrantedAccess, OAuthError> {
    let admin_audience = issuers.admin_audience();
    let requested = match scope {
        Some(text) => ScopeSet::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?,
        None => {
            // RFC 6749 §3.3: an omitted scope means the pre-defined default, here every registered scope of
            // the resource the request is for.
            let wants_admin = resource == Some(admin_audience.as_str())
                || (resource.is_none() && client.scopes.iter().all(|s| is_platform_scope(s.as_str())));
            ScopeSet::from_scopes(
                client.scopes.iter().filter(|s| is_platform_scope(s.as_str()) == wants_admin).cloned(),
            )
        }
    };
    if let Some(missing) = requested.difference(&client.scopes).next() {
        return Err(OAuthError::InvalidScope(format!("scope {} is not allowed for this client", missing.as_str())));
    }
    let platform = requested.iter().filter(|s| is_platform_scope(s.as_str())).count();
    if platform > 0 && platform < requested.iter().count() {
        return Err(OAuthError::InvalidScope("platform scopes and API scopes need separate tokens".into()));
    }
    let for_admin = platform > 0;
    let audience = match resource {
        Some(resource) => {
            check_resource_syntax(resource)?;
            let allowed = if for_admin || resource == admin_audience {
                for_admin && resource == admin_audience && tenant.as_str() == TenantId::DEFAULT
            } else {
                client.audiences.iter().any(|a| a == resource) || resource == issuers.issuer(tenant)
            };
            if !allowed {
                return Err(OAuthError::InvalidTarget("the resource is not allowed for this client".into()));
            }
            resource.to_owned()
        }
        None if for_admin => {
            if tenant.as_str() != TenantId::DEFAULT {
                return Err(OAuthError::InvalidScope("platform scopes are granted by the default tenant only".into()));
            }
            admin_audience
        }
        None => default_audience(issuers, tenant, client),
    };
    Ok(GrantedAccess { scope: requested, audience })
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn check_resource_syntax(resource: &str) -> Result<(), OAuthError> {
    match url::Url::parse(resource) {
        Ok(url) if url.fragment().is_none() && !url.cannot_be_a_base() => Ok(()),
        _ => Err(OAuthError::InvalidTarget("resource must be an absolute URI without a fragment".into())),
    }
}
