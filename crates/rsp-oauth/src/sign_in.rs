//! Who signed in, as the code flow consumes it. The login pages and the user store produce it; this crate
//! only needs the facts an ID token and a grant carry.

use rsp_core::UnixTime;

/// A user who has just authenticated (or holds a live session) at this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedInUser {
    /// The stable, never reassigned identifier that becomes `sub` (OIDC Core §2: at most 255 ASCII
    /// characters).
    pub user_id: String,
    /// When the user last actively authenticated (not when the session was last used).
    pub auth_time: UnixTime,
    /// Authentication methods (RFC 8176), e.g. `pwd`, `otp`.
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

impl SignedInUser {
    /// OIDC Core §2: `sub` is at most 255 ASCII characters; control characters are refused too.
    pub fn has_valid_subject(&self) -> bool {
        !self.user_id.is_empty() && self.user_id.len() <= 255 && self.user_id.bytes().all(|b| b.is_ascii_graphic())
    }
}
