//! Events that describe no stored change, sent to the [`EventSink`](rsp_core::bus::EventSink): a token
//! issued (every issuance, priority normal) and a token introspected (sampled, priority low). Request id,
//! trace id come from the ambient request context ([`rsp_core::Event::new`]). Neither event ever carries a
//! token: a token is named by its `jti`.

use rsp_core::{Client, Event, EventKind, Priority, TenantId};
use serde_json::json;

use crate::AuthService;
use crate::token::AccessClaims;

impl AuthService {
    /// Records an issuance. `grant_type` is the grant that produced the token.
    pub(crate) async fn emit_issued(&self, tenant: &TenantId, claims: &AccessClaims, grant_type: &str) {
        let event = Event::new(tenant.clone(), EventKind::TOKEN_ISSUED, Priority::Normal)
            .subject(claims.jti.as_str())
            .actor(claims.client_id.as_str())
            .data(json!({"grant_type": grant_type, "scope": claims.scope, "audience": claims.aud}));
        self.events.emit(event).await;
    }

    /// Records an introspection by `caller`, for a sample of calls (`introspection_audit_sample_rate`).
    /// `jti` is `None` when the token was not one of ours or did not verify.
    /// Never waits: a full event buffer drops the record (it is a sample already).
    pub(crate) fn emit_introspected(&self, tenant: &TenantId, caller: &Client, jti: Option<&str>, active: bool) {
        if !self.sampler.sample(self.settings.introspection_audit_sample_rate) {
            return;
        }
        let mut event = Event::new(tenant.clone(), EventKind::TOKEN_INTROSPECTED, Priority::Low)
            .actor(caller.client_id.as_str())
            .data(json!({"active": active}));
        if let Some(jti) = jti {
            event = event.subject(jti);
        }
        if !self.events.try_emit(event) {
            tracing::debug!("token.introspected event dropped: the event buffer is full");
        }
    }
}
