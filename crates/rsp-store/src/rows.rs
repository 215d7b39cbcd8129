//! Rows and columns shared by the adapters: lists are stored as JSON arrays or space-separated text,
//! enums by their protocol names, and every record decodes from either engine's rows through
//! [`Columns`]. A value that does not decode is reported, never guessed.

use rsp_core::policy::{PolicySetContent, PolicySetVersion, SchemaFormat, StoredEntity};
use rsp_core::ports::StoreResult;
use rsp_core::{
    Client, ClientId, ClientKind, Event, GrantType, KeyId, KeyStatus, ScopeSet, SigningAlgorithm, StoreError,
    StoredKey, Tenant, TenantId, UnixTime,
};
use sqlx::{ColumnIndex, Decode, Row, Type};

pub fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("stored {what} does not decode"))
}

pub fn kind_to_text(kind: ClientKind) -> &'static str {
    match kind {
        ClientKind::Confidential => "confidential",
        ClientKind::Public => "public",
    }
}

pub fn kind_from_text(text: &str) -> Result<ClientKind, StoreError> {
    match text {
        "confidential" => Ok(ClientKind::Confidential),
        "public" => Ok(ClientKind::Public),
        _ => Err(corrupt("client kind")),
    }
}

pub fn grants_to_text(grants: &[GrantType]) -> String {
    grants.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")
}

pub fn grants_from_text(text: &str) -> Result<Vec<GrantType>, StoreError> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(|g| GrantType::parse(g).ok_or_else(|| corrupt("grant type")))
        .collect()
}

pub fn list_to_json(list: &[String]) -> String {
    serde_json::Value::from(list.to_vec()).to_string()
}

pub fn list_from_json(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|_| corrupt("list"))
}

pub fn alg_from_text(text: &str) -> Result<SigningAlgorithm, StoreError> {
    SigningAlgorithm::parse(text).ok_or_else(|| corrupt("signing algorithm"))
}

pub fn status_from_text(text: &str) -> Result<KeyStatus, StoreError> {
    match text {
        "active" => Ok(KeyStatus::Active),
        "retired" => Ok(KeyStatus::Retired),
        _ => Err(corrupt("key status")),
    }
}

/// The one mapping of driver errors for both engines: a unique violation is a conflict the caller can
/// report; anything else is an outage whose message goes to the log.
pub fn db_error(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
        _ => StoreError::Unavailable(error.to_string()),
    }
}

/// Typed column access over either engine's rows, so each record decodes in one place for both.
pub trait Columns {
    fn text(&self, name: &str) -> StoreResult<String>;
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>>;
    fn int(&self, name: &str) -> StoreResult<i64>;
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>>;
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>>;
}

impl<R> Columns for R
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn text(&self, name: &str) -> StoreResult<String> {
        self.try_get(name).map_err(db_error)
    }

    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        self.try_get(name).map_err(db_error)
    }

    fn int(&self, name: &str) -> StoreResult<i64> {
        self.try_get(name).map_err(db_error)
    }

    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.try_get(name).map_err(db_error)
    }

    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        self.try_get(name).map_err(db_error)
    }
}

pub fn tenant_from_row(row: &impl Columns) -> StoreResult<Tenant> {
    Ok(Tenant {
        id: TenantId::parse(row.text("id")?).map_err(|_| corrupt("tenant id"))?,
        name: row.text("name")?,
        signing_alg: alg_from_text(&row.text("signing_alg")?)?,
        created_at: UnixTime(row.int("created_at")?),
        updated_at: UnixTime(row.int("updated_at")?),
    })
}

pub fn client_from_row(row: &impl Columns) -> StoreResult<Client> {
    Ok(Client {
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        client_id: ClientId::parse(row.text("client_id")?).map_err(|_| corrupt("client id"))?,
        name: row.text("name")?,
        kind: kind_from_text(&row.text("kind")?)?,
        secret_hash: row.opt_text("secret_hash")?,
        grant_types: grants_from_text(&row.text("grant_types")?)?,
        scopes: ScopeSet::parse(&row.text("scopes")?).map_err(|_| corrupt("scopes"))?,
        audiences: list_from_json(&row.text("audiences")?)?,
        introspect_audiences: list_from_json(&row.text("introspect_audiences")?)?,
        redirect_uris: list_from_json(&row.text("redirect_uris")?)?,
        post_logout_redirect_uris: list_from_json(&row.text("post_logout_redirect_uris")?)?,
        created_at: UnixTime(row.int("created_at")?),
        updated_at: UnixTime(row.int("updated_at")?),
    })
}

pub fn key_from_row(row: &impl Columns) -> StoreResult<StoredKey> {
    Ok(StoredKey {
        tenant_id: TenantId::parse(row.text("tenant_id")?).map_err(|_| corrupt("tenant id"))?,
        kid: KeyId::parse(row.text("kid")?).map_err(|_| corrupt("kid"))?,
        alg: alg_from_text(&row.text("alg")?)?,
        status: status_from_text(&row.text("status")?)?,
        created_at: UnixTime(row.int("created_at")?),
        retired_at: row.opt_int("retired_at")?.map(UnixTime),
        publish_until: row.opt_int("publish_until")?.map(UnixTime),
        max_token_ttl_secs: row.int("max_token_ttl_secs")?,
        public_jwk: row.text("public_jwk")?,
        sealed_private_key: row.bytes("sealed_private_key")?,
    })
}

pub fn policy_version_from_row(tenant: &TenantId, row: &impl Columns) -> StoreResult<PolicySetVersion> {
    let schema = match (row.opt_text("schema_format")?, row.opt_text("schema_text")?) {
        (Some(format), Some(text)) => {
            Some((SchemaFormat::parse(&format).ok_or_else(|| corrupt("schema format"))?, text))
        }
        _ => None,
    };
    Ok(PolicySetVersion {
        tenant_id: tenant.clone(),
        version: to_u64(row.int("version")?, "policy version")?,
        content: PolicySetContent {
            policies: row.text("policies")?,
            schema,
            template_links: row.text("template_links")?,
        },
        created_at: UnixTime(row.int("created_at")?),
        created_by: row.text("created_by")?,
    })
}

/// One line of a tenant's policy history: (version, created at, created by).
pub fn policy_history_from_row(row: &impl Columns) -> StoreResult<(u64, UnixTime, String)> {
    Ok((to_u64(row.int("version")?, "policy version")?, UnixTime(row.int("created_at")?), row.text("created_by")?))
}

pub fn entity_from_row(row: &impl Columns) -> StoreResult<StoredEntity> {
    Ok(StoredEntity {
        entity_type: row.text("entity_type")?,
        entity_id: row.text("entity_id")?,
        json: row.text("body")?,
    })
}

/// Versions are stored as signed 64-bit integers; a negative one is corruption, not a value to wrap.
pub fn to_u64(value: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| corrupt(what))
}

pub fn to_i64(version: u64) -> StoreResult<i64> {
    i64::try_from(version).map_err(|_| corrupt("policy version"))
}

/// An update or delete that matched no row was aimed at something that does not exist.
pub fn found(rows_affected: u64) -> StoreResult<()> {
    if rows_affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

/// `events` about a version that is assigned inside the write's transaction (a policy set, an entity
/// store), with that version as their subject: the caller cannot know it in advance.
pub fn about_version(events: &[Event], version: i64) -> Vec<Event> {
    events.iter().map(|event| event.clone().subject(version.to_string())).collect()
}
