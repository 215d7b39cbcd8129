//! Events that describe no stored change, sent to the [`EventSink`](rsp_core::bus::EventSink): a token
//! issued (every issuance, priority normal) and a token introspected (sampled, priority low). Request id,
//! trace id come from the ambient request context ([`rsp_core::Event::new`]). Neither event ever carries a
//! token: a token is named by its `jti`.

use rsp_core::{Client, Event, EventKind, Priority, TenantId};
use serde_json::json;

use crate::AuthService;
use crate::crypto::random::random_bytes;
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
    pub(crate) async fn emit_introspected(&self, tenant: &TenantId, caller: &Client, jti: Option<&str>, active: bool) {
        if !sampled(self.settings.introspection_audit_sample_rate) {
            return;
        }
        let mut event = Event::new(tenant.clone(), EventKind::TOKEN_INTROSPECTED, Priority::Low)
            .actor(caller.client_id.as_str())
            .data(json!({"active": active}));
        if let Some(jti) = jti {
            event = event.subject(jti);
        }
        self.events.emit(event).await;
    }
}

/// Whether this call falls in a sample of `rate` (0 = never, 1 = always; NaN counts as 0).
fn sampled(rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    if rate.is_nan() || rate <= 0.0 {
        return false;
    }
    // 53 random bits give a uniform float in [0, 1).
    let draw = u64::from_le_bytes(random_bytes::<8>()) >> 11;
    (draw as f64) / ((1u64 << 53) as f64) < rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_edges_of_the_sample_rate_are_exact() {
        assert!((0..1000).all(|_| sampled(1.0)));
        assert!((0..1000).all(|_| !sampled(0.0)));
        assert!((0..1000).all(|_| !sampled(f64::NAN)));
        assert!((0..1000).all(|_| !sampled(-1.0)));
    }

    #[test]
    fn a_fractional_rate_samples_about_that_share() {
        let hits = (0..20_000).filter(|_| sampled(0.25)).count();
        // Binomial(20000, 0.25): mean 5000, sd ~61; 10 sd either way never fails by chance.
        assert!((4_390..=5_610).contains(&hits), "{hits} hits");
    }
}
