//! The policy decision point as seen from `--role auth`: scope decisions for token issuance go to the
//! policy service's decision API through `rsp-client` (HTTP/2, circuit breaker, request batching), with
//! tokens the auth service mints for itself.
//!
//! The client's own decision cache is off: the policy service's cache is keyed by policy and entity
//! versions, so it is never stale after a policy change, and a second cache here would be.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use rsp_client::{
    AuthorizeRequest, BatchConfig, ClientCredentials, ClientError, DecisionClient, EntityUid, Fallback, ProvidedToken,
    TokenProvider,
};
use rsp_core::ports::{PolicyGate, StoreResult};
use rsp_core::{ClientId, StoreError, TenantId};
use rsp_oauth::AuthService;
use rsp_oauth::service_token::AUTH_SERVICE_ID;

/// Token requests arriving within this window share one batch call.
const BATCH_WINDOW: Duration = Duration::from_millis(1);

/// Decides scope requests by asking the policy service at `base_url`. One decision client per tenant,
/// created on first use.
pub struct RemotePolicyGate {
    base_url: String,
    auth: OnceLock<Weak<AuthService>>,
    clients: Mutex<HashMap<TenantId, DecisionClient>>,
}

impl std::fmt::Debug for RemotePolicyGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePolicyGate").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl RemotePolicyGate {
    pub fn new(base_url: &str) -> Arc<Self> {
        Arc::new(Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            auth: OnceLock::new(),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// Gives the gate the auth service whose keys mint its tokens. The auth service holds the gate, so
    /// the gate holds it weakly.
    pub fn attach(&self, auth: &Arc<AuthService>) {
        let _ = self.auth.set(Arc::downgrade(auth));
    }

    fn client(&self, tenant: &TenantId) -> StoreResult<DecisionClient> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(tenant) {
            return Ok(client.clone());
        }
        let auth = self.auth.get().cloned().ok_or_else(|| StoreError::Unavailable("scope gate not attached".into()))?;
        let provider = Arc::new(SelfIssued { auth, tenant: tenant.clone() });
        let client = DecisionClient::builder(
            self.base_url.clone(),
            tenant.as_str(),
            ClientCredentials::provided(AUTH_SERVICE_ID, provider),
        )
        .cache(None)
        .batching(Some(BatchConfig { max_size: 100, max_delay: BATCH_WINDOW }))
        .fallback(Fallback::Error)
        .build()
        .map_err(|e| StoreError::Unavailable(format!("policy service client: {e}")))?;
        clients.insert(tenant.clone(), client.clone());
        Ok(client)
    }
}

impl RemotePolicyGate {
    /// A gate's question to the policy service, answered as the in-process gate answers it: `None` when no
    /// policy names the action (not governed), Cedar's answer otherwise, a denial when the tenant's schema
    /// rejects the question (logged as such `what`); no answer at all fails closed.
    async fn ask(&self, tenant: &TenantId, what: &str, request: AuthorizeRequest) -> StoreResult<Option<bool>> {
        match self.client(tenant)?.authorize(request).await {
            Ok(decision) if !decision.action_named => Ok(None),
            Ok(decision) => Ok(Some(decision.is_allowed())),
            // A schema that does not declare the action: no policy can name it (policies are validated
            // against the schema), so policies do not govern it, as the in-process gate finds.
            Err(ClientError::InvalidRequest(reason)) if reason.starts_with("invalid_request: action:") => Ok(None),
            Err(ClientError::InvalidRequest(reason)) => {
                tracing::warn!(tenant = %tenant, %reason, "{what} request does not fit the tenant's schema; denied");
                Ok(Some(false))
            }
            Err(error) => Err(StoreError::Unavailable(format!("policy service: {error}"))),
        }
    }
}

/// Mints the auth service's own `rsp:authorize` tokens for one tenant.
struct SelfIssued {
    auth: Weak<AuthService>,
    tenant: TenantId,
}

impl TokenProvider for SelfIssued {
    fn token(&self) -> ProvidedToken<'_> {
        Box::pin(async move {
            let auth = self.auth.upgrade().ok_or(ClientError::Closed)?;
            let (token, ttl) =
                auth.decision_service_token(&self.tenant).await.map_err(|e| ClientError::Credentials(e.to_string()))?;
            Ok((token, Duration::from_secs(u64::try_from(ttl).unwrap_or(60))))
        })
    }
}

#[async_trait]
impl PolicyGate for RemotePolicyGate {
    /// The same question the in-process gate asks (`Client` / `Action::"RequestScope"` / `Scope`, the
    /// audience in the context). A default deny of an action no policy names means the tenant does not
    /// govern scopes with policies. Any failure to get an answer fails issuance closed.
    async fn permits_scope(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        scope: &str,
        audience: &str,
    ) -> StoreResult<Option<bool>> {
        let request = AuthorizeRequest::new(
            EntityUid::new("Client", client.as_str()),
            EntityUid::new("Action", "RequestScope"),
            EntityUid::new("Scope", scope),
        )
        .with_context("audience", audience);
        self.ask(tenant, "scope", request).await
    }

    /// The in-process gate's question (`User` / `Action::"SignIn"` / `Client`, `amr` in the context),
    /// answered the same way: not named → not governed; rejected by the schema → denied; no answer →
    /// sign-in fails closed.
    async fn permits_sign_in(
        &self,
        tenant: &TenantId,
        user: &str,
        client: &ClientId,
        amr: &[String],
    ) -> StoreResult<Option<bool>> {
        let request = AuthorizeRequest::new(
            EntityUid::new("User", user),
            EntityUid::new("Action", "SignIn"),
            EntityUid::new("Client", client.as_str()),
        )
        .with_context("amr", amr.to_vec());
        self.ask(tenant, "sign-in", request).await
    }
}
