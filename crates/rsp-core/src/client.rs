//! OAuth clients as the authorization server knows them.

use serde::{Deserialize, Serialize};

use crate::{ClientId, ScopeSet, TenantId, UnixTime};

/// Whether a client can keep a secret (RFC 6749 §2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    Confidential,
    Public,
}

/// The grants a client may use. The password and implicit grants are absent on purpose (RFC 9700 §2.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "client_credentials" => Some(GrantType::ClientCredentials),
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }
}

/// A registered client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Client {
    pub tenant_id: TenantId,
    /// Server-assigned, never chosen by the registrant (RFC 9700 §4.15.1).
    pub client_id: ClientId,
    pub name: String,
    pub kind: ClientKind,
    /// Keyed hash of the client secret (see `rsp_oauth::secrets`); `None` for public clients. The secret
    /// itself is never stored.
    pub secret_hash: Option<String>,
    pub grant_types: Vec<GrantType>,
    /// The scopes this client may be granted.
    pub scopes: ScopeSet,
    /// Resource indicators (RFC 8707) this client may request tokens for; the first is its default
    /// audience when a request names none.
    pub audiences: Vec<String>,
    /// Audiences whose access tokens this client may introspect, acting as their resource server
    /// (RFC 7662 §4: a caller only learns about tokens meant for it).
    pub introspect_audiences: Vec<String>,
    /// Where the authorization endpoint may send this client's users back, compared by exact string
    /// (RFC 9700 §2.1); only a loopback URI's port may vary (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §3) may send this client's users
    /// afterwards, compared like `redirect_uris`; a URI not listed is never followed.
    pub post_logout_redirect_uris: Vec<String>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl Client {
    pub const MAX_NAME_CHARS: usize = 200;
    pub const MAX_AUDIENCES: usize = 32;
    pub const MAX_REDIRECT_URIS: usize = 32;

    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}
