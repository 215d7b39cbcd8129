//! Which scopes a token gets and which resource server it is for (RFC 6749 §3.3, RFC 8707, RFC 9068 §3).
//!
//! Every scope belongs to one resource. Platform scopes belong to the platform's own APIs (`rsp:admin` to
//! the admin API, `rsp:authorize` to the tenant's decision API); every other scope belongs to the
//! client's APIs: the `resource` it names, else its default audience. A request whose scopes belong to
//! different resources is refused rather than given an ambiguous token.

use rsp_core::{Client, Scope, ScopeSet, TenantId};

use crate::{Issuers, OAuthError};

/// The scope that lets a token call the admin API.
pub const ADMIN_SCOPE: &str = "rsp:admin";
/// The scope that lets a token ask the tenant's policy decision API.
pub const AUTHORIZE_SCOPE: &str = "rsp:authorize";

/// The scope set and audience a token will carry.
#[derive(Debug)]
pub struct GrantedAccess {
    pub scope: ScopeSet,
    pub audience: String,
}

/// The resource a scope belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// The client's own APIs.
    Api,
    /// A platform API, identified by its audience.
    Platform(String),
}

fn owner(issuers: &Issuers, tenant: &TenantId, scope: &Scope) -> Result<Owner, OAuthError> {
    match scope.as_str() {
        ADMIN_SCOPE if tenant.as_str() == TenantId::DEFAULT => Ok(Owner::Platform(issuers.admin_audience())),
        ADMIN_SCOPE => Err(OAuthError::InvalidScope("rsp:admin is granted by the default tenant only".into())),
        AUTHORIZE_SCOPE => Ok(Owner::Platform(issuers.decision_audience(tenant))),
        other if other.starts_with("rsp:") => Err(OAuthError::InvalidScope(format!("unknown platform scope {other}"))),
        _ => Ok(Owner::Api),
    }
}

pub fn resolve_audience(
    issuers: &Issuers,
    tenant: &TenantId,
    client: &Client,
    scope: Option<&str>,
    resource: Option<&str>,
) -> Result<GrantedAccess, OAuthError> {
    if let Some(resource) = resource {
        check_resource_syntax(resource)?;
    }
    let requested = match scope {
        Some(text) => ScopeSet::parse(text).map_err(|e| OAuthError::InvalidScope(e.to_string()))?,
        None => default_scope(issuers, tenant, client, resource),
    };
    if let Some(missing) = requested.difference(&client.scopes).next() {
        return Err(OAuthError::InvalidScope(format!("scope {} is not allowed for this client", missing.as_str())));
    }
    let mut owners = Vec::new();
    for scope in requested.iter() {
        let owner = owner(issuers, tenant, scope)?;
        if !owners.contains(&owner) {
            owners.push(owner);
        }
    }
    let audience = match owners.as_slice() {
        [] | [Owner::Api] => api_audience(issuers, tenant, client, resource)?,
        [Owner::Platform(audience)] => match resource {
            Some(resource) if resource != audience => {
                return Err(OAuthError::InvalidTarget("the scope belongs to another resource".into()));
            }
            _ => audience.clone(),
        },
        _ => return Err(OAuthError::InvalidScope("the scopes belong to different resources; ask separately".into())),
    };
    Ok(GrantedAccess { scope: requested, audience })
}

/// RFC 6749 §3.3: an omitted scope means the pre-defined default: every registered scope of the resource
/// the request is for (the named one, else the client's APIs, else its only platform API).
fn default_scope(issuers: &Issuers, tenant: &TenantId, client: &Client, resource: Option<&str>) -> ScopeSet {
    let owned = |wanted: &dyn Fn(&Owner) -> bool| {
        ScopeSet::from_scopes(
            client.scopes.iter().filter(|s| owner(issuers, tenant, s).is_ok_and(|o| wanted(&o))).cloned(),
        )
    };
    match resource {
        Some(resource) => {
            let platform = owned(&|o| matches!(o, Owner::Platform(aud) if aud == resource));
            if platform.is_empty() { owned(&|o| *o == Owner::Api) } else { platform }
        }
        None => {
            let api = owned(&|o| *o == Owner::Api);
            if !api.is_empty() {
                return api;
            }
            let platform = owned(&|o| matches!(o, Owner::Platform(_)));
            let distinct: Vec<Owner> = platform.iter().filter_map(|s| owner(issuers, tenant, s).ok()).collect();
            if distinct.windows(2).all(|w| w.first() == w.last()) { platform } else { ScopeSet::default() }
        }
    }
}

/// The audience of a token for the client's own APIs: the named resource if the client registered it,
/// else its first registered audience, else the tenant's issuer.
fn api_audience(
    issuers: &Issuers,
    tenant: &TenantId,
    client: &Client,
    resource: Option<&str>,
) -> Result<String, OAuthError> {
    match resource {
        Some(resource) if client.audiences.iter().any(|a| a == resource) || resource == issuers.issuer(tenant) => {
            Ok(resource.to_owned())
        }
        Some(_) => Err(OAuthError::InvalidTarget("the resource is not allowed for this client".into())),
        None => Ok(client.audiences.first().cloned().unwrap_or_else(|| issuers.issuer(tenant))),
    }
}

impl crate::AuthService {
    /// Narrows `requested` to the scopes the tenant's policies permit, when they govern scope requests
    /// (RFC 6749 §3.3 lets the server grant fewer scopes than asked; the response then says which). A
    /// request left with nothing it asked for is refused.
    ///
    /// `rsp:admin` is not asked about: what an admin token may do is decided per call by the admin
    /// permissions (Cedar policies of the default tenant), and operators must be able to get one to repair
    /// things while the policy service is down (`--role auth` asks it over the network).
    pub(crate) async fn permitted_scopes(
        &self,
        tenant: &TenantId,
        client: &Client,
        requested: ScopeSet,
        audience: &str,
    ) -> Result<ScopeSet, OAuthError> {
        let Some(gate) = &self.policy_gate else {
            return Ok(requested);
        };
        if requested.iter().any(|scope| scope.as_str() == ADMIN_SCOPE) {
            return Ok(requested);
        }
        let mut permitted = Vec::new();
        for scope in requested.iter() {
            match gate.permits_scope(tenant, &client.client_id, scope.as_str(), audience).await? {
                None => return Ok(requested.clone()),
                Some(true) => permitted.push(scope.clone()),
                Some(false) => {}
            }
        }
        if permitted.is_empty() && !requested.is_empty() {
            return Err(OAuthError::InvalidScope("the tenant's policies permit none of the requested scopes".into()));
        }
        Ok(ScopeSet::from_scopes(permitted))
    }
}

/// RFC 8707 §2: an absolute URI without a fragment.
fn check_resource_syntax(resource: &str) -> Result<(), OAuthError> {
    match url::Url::parse(resource) {
        Ok(url) if url.fragment().is_none() && !url.cannot_be_a_base() => Ok(()),
        _ => Err(OAuthError::InvalidTarget("resource must be an absolute URI without a fragment".into())),
    }
}
