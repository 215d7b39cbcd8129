//! Browser sessions, parked authorization requests and the login form's CSRF token: the state the sign-in
//! pages keep, as use cases over the [`SessionStore`](rsp_core::ports::SessionStore) port.
//!
//! Sessions are database records, not sealed cookies, so that every replica agrees at once and a session
//! can be ended (see [`rsp_core::session`]). Cookie values are 256-bit random tokens; the store keeps
//! only their HMAC under the master key, each kind under its own label so one can never stand for another.
//! A session is also refused when its user is disabled or deleted, or changed password after it began:
//! ending a user's access needs no extra step.

use rsp_core::session::{BrowserSession, PendingAuthorization};
use rsp_core::{TenantId, UnixTime, UserId};

use crate::crypto::random_token;
use crate::sign_in::SignedInUser;
use crate::users::AuthenticatedUser;
use crate::{AuthService, OAuthError};

/// How long a parked authorization request waits for its login and consent.
pub const PENDING_LIFETIME_SECS: i64 = 15 * 60;
/// Random bytes in a cookie value or pending id (256 bits).
const TOKEN_BYTES: usize = 32;

fn labelled(label: &str, value: &str) -> String {
    format!("{label}:{value}")
}

impl AuthService {
    /// How long a browser stays signed in after a login (the session cookie's `Max-Age`).
    pub fn session_lifetime_secs(&self) -> i64 {
        self.settings.session_lifetime_secs
    }

    /// Starts a session for a user who just logged in; returns the cookie value (shown to nobody else,
    /// never stored) and the user as the code flow consumes it.
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn start_session(
        &self,
        tenant: &TenantId,
        user: &AuthenticatedUser,
    ) -> Result<(String, SignedInUser), OAuthError> {
        let now = self.clock.now();
        let cookie = random_token(TOKEN_BYTES);
        let session = BrowserSession {
            tenant_id: tenant.clone(),
            session_hash: self.hasher.hash(&labelled("session", &cookie)),
            user_id: user.user_id.clone(),
            auth_time: user.auth_time,
            amr: user.amr.clone(),
            created_at: now,
            expires_at: now.plus_secs(self.settings.session_lifetime_secs),
        };
        self.store.create_session(&session).await?;
        Ok((cookie, signed_in(&session)))
    }

    /// The user a session cookie stands for, when the session is live and its user may still sign in.
    pub async fn session_user(&self, tenant: &TenantId, cookie: &str) -> Result<Option<SignedInUser>, OAuthError> {
        let now = self.clock.now();
        let hash = self.hasher.hash(&labelled("session", cookie));
        let Some(session) = self.store.find_session(tenant, &hash, now).await? else {
            return Ok(None);
        };
        let user = self.store.get_user(tenant, &session.user_id).await?;
        let still_valid = user.is_some_and(|u| {
            !u.is_disabled() && u.password_changed_at.is_none_or(|changed| changed <= session.created_at)
        });
        if !still_valid {
            self.store.delete_session(tenant, &hash).await?;
            return Ok(None);
        }
        Ok(Some(signed_in(&session)))
    }

    /// Ends the session a cookie stands for (a new login replaces it; logout ends it).
    pub async fn end_session(&self, tenant: &TenantId, cookie: &str) -> Result<(), OAuthError> {
        Ok(self.store.delete_session(tenant, &self.hasher.hash(&labelled("session", cookie))).await?)
    }

    /// Ends every session of a user.
    pub async fn end_user_sessions(&self, tenant: &TenantId, user: &UserId) -> Result<u64, OAuthError> {
        Ok(self.store.delete_user_sessions(tenant, user).await?)
    }

    /// Parks an authorization request's form-encoded parameters; returns the opaque id the login and
    /// consent pages carry instead of the request.
    pub async fn park_authorization(&self, tenant: &TenantId, params: &str) -> Result<String, OAuthError> {
        let id = random_token(TOKEN_BYTES);
        let pending = PendingAuthorization {
            tenant_id: tenant.clone(),
            pending_hash: self.hasher.hash(&labelled("pending", &id)),
            params: params.to_owned(),
            expires_at: self.clock.now().plus_secs(PENDING_LIFETIME_SECS),
        };
        self.store.save_pending(&pending).await?;
        Ok(id)
    }

    /// The parked request's parameters, while it has not expired or completed.
    pub async fn parked_authorization(&self, tenant: &TenantId, id: &str) -> Result<Option<String>, OAuthError> {
        let hash = self.hasher.hash(&labelled("pending", id));
        Ok(self.store.find_pending(tenant, &hash, self.clock.now()).await?.map(|p| p.params))
    }

    /// Forgets a parked request once it completed (a code was issued or the user refused).
    pub async fn complete_authorization(&self, tenant: &TenantId, id: &str) -> Result<(), OAuthError> {
        Ok(self.store.delete_pending(tenant, &self.hasher.hash(&labelled("pending", id))).await?)
    }

    /// A new random value for the pre-session cookie the login form's CSRF token is bound to.
    pub fn new_pre_session() -> String {
        random_token(TOKEN_BYTES)
    }

    /// The CSRF token of form `form` for the browser holding `cookie` (its pre-session cookie before login,
    /// its session cookie after): a MAC under the form's own label, so it needs no storage, cannot be made
    /// without the master key, and a token shown on one page is worthless on another.
    pub fn form_token(&self, form: &str, session: &str) -> String {
        self.hasher.hash(&labelled(&format!("csrf-{form}"), session))
    }

    /// Whether `token` is the CSRF token of `form` for `session` (constant time; never for an empty cookie).
    pub fn form_token_matches(&self, form: &str, session: &str, token: &str) -> bool {
        !session.is_empty() && self.hasher.verify(&labelled(&format!("csrf-{form}"), session), token)
    }
}

fn signed_in(session: &BrowserSession) -> SignedInUser {
    SignedInUser {
        user_id: session.user_id.as_str().to_owned(),
        auth_time: session.auth_time,
        amr: session.amr.clone(),
        acr: None,
    }
}

/// How often expired sessions and parked requests are removed. Reads already ignore expired records;
/// the purge only keeps the tables small, so its period is not critical.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

impl AuthService {
    /// Removes expired state every [`PURGE_EVERY`] until the service is dropped: sessions and parked
    /// requests, second-factor challenges, stale login counters, expired or abandoned grants, and
    /// revocation records of tokens that have expired anyway.
    /// Every replica may run it: the deletes are idempotent.
    pub fn spawn_session_purge(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let service = std::sync::Arc::downgrade(self);
        let mut dropped = self.alive.subscribe();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PURGE_EVERY);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = dropped.changed() => return,
                }
                let Some(service) = service.upgrade() else { return };
                let now = service.clock.now();
                let throttle_window = service.users.throttle.window_secs();
                let purged = async {
                    let sessions = service.store.purge_expired_sessions(now).await?;
                    let challenges = service.store.purge_expired_mfa_challenges(now).await?;
                    let counters = service.store.purge_login_failures(UnixTime(now.0 - throttle_window)).await?;
                    // A grant that never issued a token was left when its code expired unredeemed.
                    let code_gone = UnixTime(now.0 - service.settings.authorization_code_ttl_secs - 60);
                    let grants = service.store.purge_expired_grants(now, code_gone).await?;
                    let revocations = service.store.purge_expired_revocations(now).await?;
                    Ok::<_, rsp_core::StoreError>(sessions + challenges + counters + grants + revocations)
                }
                .await;
                match purged {
                    Ok(0) => {}
                    Ok(removed) => tracing::debug!(removed, "expired state purged"),
                    Err(error) => tracing::warn!(%error, "purging expired state failed"),
                }
            }
        })
    }
}
