//! What the sign-in pages keep between requests: a browser's session with this server, and the
//! authorization request waiting for the user to log in or consent.
//!
//! Both live in the database, not in sealed cookies: a session must be revocable (an administrator
//! disables a user, the user logs out) and every replica must see the same answer at once; a sealed
//! cookie can be neither without a shared revocation list, which is a database again. Only keyed hashes
//! of the cookie values are stored (`*_hash`), so a leaked database opens no browser session.

use std::fmt;

use crate::{EventKind, TenantId, UnixTime, UserId};

impl EventKind {
    /// A browser session was ended by logout (RP-initiated or on the server's own page).
    pub const SESSION_ENDED: Self = Self::new("session.ended");
}

/// A signed-in browser. `auth_time` is when the user last actively authenticated; the session itself
/// ends at `expires_at` whatever happens.
#[derive(Clone, PartialEq, Eq)]
pub struct BrowserSession {
    pub tenant_id: TenantId,
    pub session_hash: String,
    pub user_id: UserId,
    pub auth_time: UnixTime,
    /// Authentication methods (RFC 8176).
    pub amr: Vec<String>,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

impl fmt::Debug for BrowserSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BrowserSession")
            .field("tenant_id", &self.tenant_id)
            .field("user_id", &self.user_id)
            .field("auth_time", &self.auth_time)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An authorization request parked while the user logs in or consents: the login page carries only its
/// opaque id, never the request itself, so nothing in the page's URL can be tampered with.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub tenant_id: TenantId,
    pub pending_hash: String,
    /// The original request's parameters, form-encoded, validated again when it resumes.
    pub params: String,
    pub expires_at: UnixTime,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("tenant_id", &self.tenant_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
