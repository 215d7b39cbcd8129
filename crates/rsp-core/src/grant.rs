//! What the authorization code flow stores: the grant a user gave a client, the short-lived code that
//! carries it to the token endpoint, the rotating refresh tokens issued from it, and remembered consents.
//!
//! Codes and refresh tokens are stored only as keyed hashes (`*_hash`): the values themselves are handed to
//! the client once and never kept, so a leaked database yields nothing usable. The single-use and rotation
//! rules are decided by the database in one transaction (see [`crate::ports::GrantStore`]), so they hold
//! across replicas.

use std::fmt;

use crate::{ClientId, ScopeSet, TenantId, TokenId, UnixTime};

/// One authorization a user gave one client: everything tokens issued from it carry. Every code and
/// refresh token belongs to exactly one grant, and revoking the grant revokes them all together with the
/// access tokens recorded for it (RFC 9700 §4.2.4, §4.14.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub tenant_id: TenantId,
    /// Random, server-assigned; also the refresh-token family id.
    pub grant_id: String,
    pub client_id: ClientId,
    /// The user's `sub`.
    pub subject: String,
    /// The granted scope; refreshes may narrow it, never widen it (RFC 6749 §6).
    pub scope: ScopeSet,
    /// The resource the access tokens are for (RFC 8707), fixed when the grant is made.
    pub audience: String,
    /// The OIDC `nonce` of the authorization request, for the first ID token only.
    pub nonce: Option<String>,
    /// When the user authenticated; ID and access tokens keep it across refreshes.
    pub auth_time: UnixTime,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub created_at: UnixTime,
    /// The absolute end of the grant: no refresh token outlives it.
    pub expires_at: UnixTime,
}

/// An authorization code as stored: its hash, what it was bound to, and its grant.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub tenant_id: TenantId,
    pub code_hash: String,
    pub grant_id: String,
    /// The exact `redirect_uri` of the authorization request, required again at the token endpoint.
    pub redirect_uri: String,
    /// The S256 PKCE challenge (RFC 7636 §4.4): kept server-side, never inside the code.
    pub code_challenge: String,
    pub expires_at: UnixTime,
}

impl fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("tenant_id", &self.tenant_id)
            .field("grant_id", &self.grant_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What redeeming a code found. Exactly one redemption of a code ever gets `Redeemed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeRedemption {
    /// The code was unused and is now consumed.
    Redeemed {
        code: AuthorizationCode,
        grant: Box<Grant>,
    },
    /// The code was consumed before: a replay, whose grant must be revoked.
    AlreadyUsed {
        grant_id: String,
    },
    Unknown,
}

/// A refresh token's place in its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshStatus {
    /// The family's current token.
    Active,
    /// Replaced by a newer token; presenting it again is reuse (after the grace window).
    Rotated,
    Revoked,
}

impl RefreshStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshStatus::Active => "active",
            RefreshStatus::Rotated => "rotated",
            RefreshStatus::Revoked => "revoked",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(RefreshStatus::Active),
            "rotated" => Some(RefreshStatus::Rotated),
            "revoked" => Some(RefreshStatus::Revoked),
            _ => None,
        }
    }
}

/// A refresh token as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub tenant_id: TenantId,
    pub token_hash: String,
    pub grant_id: String,
    /// 0 for the token issued with the code, then one more per rotation.
    pub generation: i64,
    pub parent_hash: Option<String>,
    pub status: RefreshStatus,
    /// The scope this token carries: a rotated token has exactly its parent's (RFC 6749 §6).
    pub scope: ScopeSet,
    pub created_at: UnixTime,
    /// The idle limit: a token unused until then is dead (RFC 9700 §4.14.2).
    pub expires_at: UnixTime,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("tenant_id", &self.tenant_id)
            .field("grant_id", &self.grant_id)
            .field("generation", &self.generation)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A new refresh token to store with an issuance.
#[derive(Clone, PartialEq, Eq)]
pub struct NewRefreshToken {
    pub token_hash: String,
    pub scope: ScopeSet,
    pub expires_at: UnixTime,
}

impl fmt::Debug for NewRefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewRefreshToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

/// What one token response of a grant issued: the access token (recorded by `jti` so revoking the grant
/// revokes it) and, perhaps, a refresh token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issuance {
    pub access_jti: TokenId,
    pub access_expires_at: UnixTime,
    pub refresh: Option<NewRefreshToken>,
}

/// When a rotation happens and how long its response may be answered again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationWindow {
    pub now: UnixTime,
    /// A retry of the just-rotated token within this many seconds gets the same response.
    pub grace_secs: i64,
}

/// The outcome of presenting a refresh token for rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the family's active one: it is now rotated and the issuance stored.
    Rotated,
    /// The token was rotated moments ago (within the grace window) and its successor is unused: the
    /// sealed response of that rotation, to be returned again unchanged.
    Grace { sealed_response: Vec<u8> },
    /// An already rotated token came back outside the grace window: the grant is now revoked; these
    /// access tokens were revoked with it.
    Reused { revoked: Vec<TokenId> },
    /// Unknown, expired, revoked, or of a revoked grant.
    Invalid,
}

/// A user's remembered consent for one client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consent {
    pub tenant_id: TenantId,
    pub subject: String,
    pub client_id: ClientId,
    pub scope: ScopeSet,
    pub granted_at: UnixTime,
}
