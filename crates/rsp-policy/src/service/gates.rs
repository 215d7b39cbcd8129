//! The policy service as a gate for other use cases: admin permissions (Cedar policies of the default
//! tenant), token issuance and sign-in ([`PolicyGate`](rsp_core::ports::PolicyGate)). Both decide by opt-in (only
//! once a policy names the action). Neither is audited as `decision.denied`: that event is for the
//! decision API.

use rsp_core::{StoreError, TenantId};
use serde_json::Value;

use super::{PolicyService, PolicyServiceError};
use crate::{DecisionRequest, EntityRef};

impl PolicyService {
    /// Whether the default tenant's policies let `client` perform the admin action `action` on `tenant`
    /// (`None`: the collection of tenants). `None` when no policy names `Rsp::Action::"<action>"`, so
    /// the `rsp:admin` scope alone decides; a request Cedar cannot evaluate counts as a denial.
    pub async fn permits_admin(
        &self,
        client: &str,
        action: &str,
        tenant: Option<&str>,
    ) -> Result<Option<bool>, PolicyServiceError> {
        let snapshot = self.snapshot(&TenantId::default_tenant()).await?;
        let reference =
            |kind: &str, id: &str| EntityRef::new(kind, id).map_err(|e| PolicyServiceError::Internal(e.to_string()));
        let action = reference("Rsp::Action", action)?;
        if !snapshot.policies().names_action(&action) {
            return Ok(None);
        }
        let resource = match tenant {
            Some(tenant) => reference("Rsp::Tenant", tenant)?,
            None => reference("Rsp::Platform", "admin")?,
        };
        let request = DecisionRequest::new(reference("Rsp::Client", client)?, action, resource);
        Ok(Some(self.decisions().authorize(&snapshot, &request).is_ok_and(|decision| decision.allowed)))
    }
}

/// The action token issuance asks about, once a tenant's policies name it.
const REQUEST_SCOPE: &str = "RequestScope";
/// The action the code flow asks about before it issues a code, once a tenant's policies name it.
const SIGN_IN: &str = "SignIn";

/// An entity `(type, id)` of a gate's question.
type Uid<'a> = (&'a str, &'a str);

impl PolicyService {
    /// A gate's question: `None` when no policy of the tenant names `Action::"<action>"` (not governed),
    /// else Cedar's answer for `principal` / `action` / `resource` with `context`. A request the tenant's
    /// schema rejects counts as a denial (and is logged as such `what`): the gate fails closed.
    async fn opt_in_decision(
        &self,
        tenant: &TenantId,
        what: &str,
        principal: Uid<'_>,
        action: &str,
        resource: Uid<'_>,
        context: serde_json::Map<String, Value>,
    ) -> Result<Option<bool>, StoreError> {
        let snapshot = self.snapshot(tenant).await.map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let reference =
            |(kind, id): Uid<'_>| EntityRef::new(kind, id).map_err(|e| StoreError::Unavailable(e.to_string()));
        let action = reference(("Action", action))?;
        if !snapshot.policies().names_action(&action) {
            return Ok(None);
        }
        let request = DecisionRequest::new(reference(principal)?, action, reference(resource)?).with_context(context);
        match self.decisions().authorize(&snapshot, &request) {
            Ok(decision) => Ok(Some(decision.allowed)),
            Err(error) => {
                tracing::warn!(tenant = %tenant, %error, "{what} request does not fit the tenant's schema; denied");
                Ok(Some(false))
            }
        }
    }
}

#[async_trait::async_trait]
impl rsp_core::ports::PolicyGate for PolicyService {
    /// Asks `Client::"<id>"` / `Action::"RequestScope"` / `Scope::"<scope>"` with the audience in the
    /// context; issuance fails closed.
    async fn permits_scope(
        &self,
        tenant: &TenantId,
        client: &rsp_core::ClientId,
        scope: &str,
        audience: &str,
    ) -> Result<Option<bool>, StoreError> {
        let mut context = serde_json::Map::new();
        context.insert("audience".into(), Value::String(audience.to_owned()));
        let (principal, resource) = (("Client", client.as_str()), ("Scope", scope));
        self.opt_in_decision(tenant, "scope", principal, REQUEST_SCOPE, resource, context).await
    }

    /// Asks `User::"<id>"` / `Action::"SignIn"` / `Client::"<id>"` with `amr` (a set of strings) in the
    /// context, so a tenant can require a second factor for some clients or keep users away from others;
    /// sign-in fails closed.
    async fn permits_sign_in(
        &self,
        tenant: &TenantId,
        user: &str,
        client: &rsp_core::ClientId,
        amr: &[String],
    ) -> Result<Option<bool>, StoreError> {
        let mut context = serde_json::Map::new();
        context.insert("amr".into(), Value::Array(amr.iter().cloned().map(Value::String).collect()));
        let (principal, resource) = (("User", user), ("Client", client.as_str()));
        self.opt_in_decision(tenant, "sign-in", principal, SIGN_IN, resource, context).await
    }
}
