//! Tenants: the unit of isolation. Every client, key, token and policy belongs to exactly one.

use serde::{Deserialize, Serialize};

use crate::{SigningAlgorithm, TenantId, UnixTime};

/// A tenant as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    /// The id, also the tenant's path segment: its issuer is `<public-url>/t/<id>`.
    pub id: TenantId,
    /// A display name for people.
    pub name: String,
    /// The algorithm new signing keys of this tenant use.
    pub signing_alg: SigningAlgorithm,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
}

impl Tenant {
    /// The longest display name accepted, in characters.
    pub const MAX_NAME_CHARS: usize = 200;
}
