//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) as use cases: which logout requests are
//! valid, whether one may end the browser's session without asking, and where the browser may go
//! afterwards. The pages are rsp-http's.
//!
//! The rules, from the specification and our choices:
//! - `id_token_hint` must be one of this issuer's ID tokens (signature through the tenant's published
//!   keys, `typ: JWT`, our `iss`); an expired one is still a hint (§2). With `client_id` too, the hint's
//!   `aud` must be that client.
//! - `post_logout_redirect_uri` is followed only when it is registered for the client the request names
//!   (by `client_id` or by the hint's `aud`), compared as redirect URIs are; otherwise the request is
//!   refused on a page, never redirected (§3).
//! - The user confirms on a page unless the hint proves the client holds an ID token of this very
//!   session: same `sub` and same `auth_time` as the live session. An older ID token of the same user
//!   (a previous session, perhaps leaked) still leads to the confirmation page.
//! - `ui_locales` is accepted and checked for size; the pages exist in English only.

use std::sync::Arc;

use rsp_core::{Client, Event, EventKind, Priority, TenantId, UnixTime};
use serde_json::json;

use crate::authorize::redirect_uri;
use crate::{AuthService, FormParams, OAuthError, SignedInUser};

/// The longest `state` or `ui_locales` accepted (as for the authorization endpoint's echoed values).
const MAX_ECHOED_LEN: usize = 512;

/// Why a logout request is refused. The messages are safe to show on the page.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// Shown on a page, never sent to a redirect URI (an unverified target is never followed).
    #[error("{0}")]
    Invalid(&'static str),
    #[error(transparent)]
    Internal(#[from] OAuthError),
}

/// The verified facts of an `id_token_hint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutHint {
    /// The hint as sent, carried through the confirmation form and verified again there.
    pub token: String,
    pub subject: String,
    pub auth_time: UnixTime,
}

/// A validated logout request.
#[derive(Debug, Clone)]
pub struct LogoutRequest {
    pub tenant: TenantId,
    /// The client the request names (`client_id`, or the hint's `aud`), when it is registered.
    pub client: Option<Arc<Client>>,
    pub hint: Option<LogoutHint>,
    /// Registered for `client`; the only place the browser may be sent afterwards.
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub ui_locales: Option<String>,
}

impl LogoutRequest {
    /// Whether the hint is an ID token of `user`'s current session (same subject, same authentication),
    /// so the client evidently signed this session in and may end it without asking the user.
    pub fn hint_matches(&self, user: &SignedInUser) -> bool {
        self.hint.as_ref().is_some_and(|hint| hint.subject == user.user_id && hint.auth_time == user.auth_time)
    }

    /// Where to send the browser once the session is ended: the registered URI with `state`, if any.
    pub fn redirect_location(&self) -> Option<String> {
        let uri = self.post_logout_redirect_uri.as_deref()?;
        Some(match &self.state {
            Some(state) => crate::authorize::with_query(uri, &[("state", state)]),
            None => uri.to_owned(),
        })
    }

    /// The request's parameters, as the confirmation form carries them to be validated again.
    pub fn form_fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = Vec::new();
        if let Some(hint) = &self.hint {
            fields.push(("id_token_hint", hint.token.clone()));
        }
        if let Some(client) = &self.client {
            fields.push(("client_id", client.client_id.to_string()));
        }
        let optional = [
            ("post_logout_redirect_uri", &self.post_logout_redirect_uri),
            ("state", &self.state),
            ("ui_locales", &self.ui_locales),
        ];
        fields.extend(optional.into_iter().filter_map(|(name, value)| value.clone().map(|v| (name, v))));
        fields
    }
}

fn echoed(params: &FormParams, name: &str) -> Result<Option<String>, LogoutError> {
    match params.get(name) {
        Some(value) if value.len() > MAX_ECHOED_LEN || value.chars().any(char::is_control) => {
            Err(LogoutError::Invalid("a parameter is too long or has control characters"))
        }
        other => Ok(other.map(str::to_owned)),
    }
}

impl AuthService {
    /// Validates a logout request (RP-Initiated Logout 1.0 §2, §3).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn validate_logout(&self, tenant: &TenantId, params: &FormParams) -> Result<LogoutRequest, LogoutError> {
        let keys = self.keys.for_tenant(tenant).await?;
        let issuer = self.issuers.issuer(tenant);
        let hint = match params.get("id_token_hint") {
            Some(token) => {
                let claims = crate::id_token::verified_hint(&keys, token, &issuer)
                    .ok_or(LogoutError::Invalid("id_token_hint is not an ID token of this issuer"))?;
                Some((token.to_owned(), claims))
            }
            None => None,
        };
        let named = match (params.get("client_id"), &hint) {
            (Some(id), Some((_, claims))) if claims.aud != id => {
                return Err(LogoutError::Invalid("id_token_hint was issued to another client"));
            }
            (Some(id), _) => Some(id.to_owned()),
            (None, Some((_, claims))) => Some(claims.aud.clone()),
            (None, None) => None,
        };
        let client = match &named {
            Some(id) => {
                Some(self.lookup_client(tenant, id).await?.ok_or(LogoutError::Invalid("the client is unknown"))?)
            }
            None => None,
        };
        let post_logout_redirect_uri = match params.get("post_logout_redirect_uri") {
            None => None,
            Some(requested) => {
                let client = client.as_ref().ok_or(LogoutError::Invalid(
                    "post_logout_redirect_uri needs client_id or id_token_hint to name the client",
                ))?;
                if !client
                    .post_logout_redirect_uris
                    .iter()
                    .any(|registered| redirect_uri::matches(registered, requested))
                {
                    return Err(LogoutError::Invalid("post_logout_redirect_uri is not registered for this client"));
                }
                Some(requested.to_owned())
            }
        };
        Ok(LogoutRequest {
            tenant: tenant.clone(),
            client,
            hint: hint.map(|(token, claims)| LogoutHint {
                token,
                subject: claims.sub,
                auth_time: UnixTime(claims.auth_time),
            }),
            post_logout_redirect_uri,
            state: echoed(params, "state")?,
            ui_locales: echoed(params, "ui_locales")?,
        })
    }

    /// Ends the browser session `cookie` of `user` for a logout and records it. The client's grants are
    /// kept: refresh tokens outlive browser sessions on purpose (`offline_access`).
    pub async fn log_out(&self, request: &LogoutRequest, cookie: &str, user: &SignedInUser) -> Result<(), OAuthError> {
        self.end_session(&request.tenant, cookie).await?;
        let client = request.client.as_ref().map(|c| c.client_id.as_str());
        let data = json!({"reason": "logout", "client_id": client});
        let event = Event::new(request.tenant.clone(), EventKind::SESSION_ENDED, Priority::High)
            .subject(user.user_id.as_str())
            .actor(user.user_id.as_str())
            .data(data);
        self.events.emit(event).await;
        tracing::info!(tenant = %request.tenant, user = %user.user_id, "signed out");
        Ok(())
    }
}
