//! The storage ports. `rsp-store` implements them over SQLite and PostgreSQL; use cases hold them as
//! `Arc<dyn Store>` and never see SQL.
//!
//! # The transactional outbox
//! Every method that changes state takes `events`: the facts describing the change, which the adapter
//! stores in its event table in the same transaction. They exist if and only if the change committed, so
//! consumers (the audit trail, cache invalidation on other instances) never miss a change nor hear of one
//! that was rolled back. An event id stored twice is kept once.

use async_trait::async_trait;

use crate::event::Event;
use crate::grant::{
    AuthorizationCode, CodeRedemption, Consent, Grant, Issuance, RefreshToken, Rotation, RotationWindow,
};
use crate::policy::{PolicySetContent, PolicySetVersion, StoredEntity};
use crate::{Client, ClientId, KeyId, StoredKey, Tenant, TenantId, TokenId, UnixTime};
use crate::{User, UserId};

/// Why a storage call failed. `Unavailable` carries the adapter's message for the log only.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists: {0}")]
    Conflict(String),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Creates the tenant together with its first signing key, atomically.
    async fn create_tenant(&self, tenant: &Tenant, first_key: &StoredKey, events: &[Event]) -> StoreResult<()>;
    async fn get_tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>>;
    async fn list_tenants(&self) -> StoreResult<Vec<Tenant>>;
    async fn update_tenant(&self, tenant: &Tenant, events: &[Event]) -> StoreResult<()>;
    /// Deletes the tenant and everything that belongs to it.
    async fn delete_tenant(&self, id: &TenantId, events: &[Event]) -> StoreResult<()>;
}

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create_client(&self, client: &Client, events: &[Event]) -> StoreResult<()>;
    async fn get_client(&self, tenant: &TenantId, id: &ClientId) -> StoreResult<Option<Client>>;
    async fn list_clients(&self, tenant: &TenantId) -> StoreResult<Vec<Client>>;
    async fn update_client(&self, client: &Client, events: &[Event]) -> StoreResult<()>;
    async fn delete_client(&self, tenant: &TenantId, id: &ClientId, events: &[Event]) -> StoreResult<()>;
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every key of the tenant that is active or still published at `now`, newest first.
    async fn published_keys(&self, tenant: &TenantId, now: UnixTime) -> StoreResult<Vec<StoredKey>>;
    /// Retires the active key (publishing it until `now + its max token ttl + leeway`) and makes `new_key`
    /// the active one, in one transaction.
    async fn rotate_key(
        &self,
        new_key: &StoredKey,
        now: UnixTime,
        leeway_secs: i64,
        events: &[Event],
    ) -> StoreResult<()>;
    /// Raises the active key's recorded max token lifetime to at least `ttl_secs`. Bookkeeping of the
    /// signer, not a change anyone needs to hear of, so it has no events.
    async fn record_token_ttl(&self, tenant: &TenantId, kid: &KeyId, ttl_secs: i64) -> StoreResult<()>;
    /// How many keys are published across all tenants at `now`: (active, retired).
    async fn count_published_keys(&self, now: UnixTime) -> StoreResult<(u64, u64)>;
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Records that the token `jti` is revoked; the record may be dropped after `expires_at`.
    async fn revoke_token(
        &self,
        tenant: &TenantId,
        jti: &TokenId,
        expires_at: UnixTime,
        events: &[Event],
    ) -> StoreResult<()>;
    async fn is_revoked(&self, tenant: &TenantId, jti: &TokenId) -> StoreResult<bool>;
    /// Drops the records of tokens that expired before `now` (an expired token is refused anyway);
    /// returns how many.
    async fn purge_expired_revocations(&self, now: UnixTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Appends a new version (the next number for the tenant) and returns it. The number is assigned in
    /// the transaction, so `events` are stored with it as their `subject`.
    async fn append_policy_set(
        &self,
        tenant: &TenantId,
        content: &PolicySetContent,
        created_at: UnixTime,
        created_by: &str,
        events: &[Event],
    ) -> StoreResult<u64>;
    /// The newest version, which is the live one.
    async fn latest_policy_set(&self, tenant: &TenantId) -> StoreResult<Option<PolicySetVersion>>;
    async fn policy_set(&self, tenant: &TenantId, version: u64) -> StoreResult<Option<PolicySetVersion>>;
    /// Every version's number, time and author, newest first (content omitted).
    async fn list_policy_versions(&self, tenant: &TenantId) -> StoreResult<Vec<(u64, UnixTime, String)>>;
    /// All stored entities and the entity store's version (0 before the first write).
    async fn entities(&self, tenant: &TenantId) -> StoreResult<(u64, Vec<StoredEntity>)>;
    /// Upserts `upserts` and deletes `deletes` (type, id) in one transaction; returns the new version,
    /// which `events` are stored with as their `subject`.
    async fn write_entities(
        &self,
        tenant: &TenantId,
        upserts: &[StoredEntity],
        deletes: &[(String, String)],
        events: &[Event],
    ) -> StoreResult<u64>;
}

/// Whether a tenant's policies let a client receive a scope, or a user sign in to a client: the policy
/// decision point as seen by token issuance and the code flow. In one process the policy service answers
/// directly; apart, a client of its HTTP API does. Both questions are opt-in: `None` until a policy of the
/// tenant names the action, so application policies never silently deny issuance or sign-in.
#[async_trait]
pub trait PolicyGate: Send + Sync {
    /// `None` when the tenant's policies do not govern scope requests (its registered scopes decide);
    /// otherwise whether the client may receive `scope` for `audience`.
    async fn permits_scope(
        &self,
        tenant: &TenantId,
        client: &ClientId,
        scope: &str,
        audience: &str,
    ) -> StoreResult<Option<bool>>;
    /// `None` when the tenant's policies do not govern sign-in; otherwise whether `user` may sign in to
    /// `client` (an authorization code be issued) having authenticated with the methods `amr` (RFC 8176).
    async fn permits_sign_in(
        &self,
        tenant: &TenantId,
        user: &str,
        client: &ClientId,
        amr: &[String],
    ) -> StoreResult<Option<bool>>;
}

/// The authorization code flow's state. Every rule that must hold across replicas (a code redeemed once, a
/// refresh token rotated once, reuse revoking the family) is decided here, in one transaction.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Stores a new grant and the code that carries it.
    async fn create_code(&self, grant: &Grant, code: &AuthorizationCode, events: &[Event]) -> StoreResult<()>;
    /// Consumes the code atomically (a conditional update): of any number of concurrent redemptions
    /// exactly one gets `Redeemed`, every other `AlreadyUsed`.
    async fn consume_code(&self, tenant: &TenantId, code_hash: &str, now: UnixTime) -> StoreResult<CodeRedemption>;
    /// Records what a token response of the grant issued. Returns `false` (storing nothing) when the grant
    /// was revoked meanwhile, e.g. because its code was replayed while this response was being minted.
    async fn record_issuance(
        &self,
        tenant: &TenantId,
        grant_id: &str,
        issuance: &Issuance,
        now: UnixTime,
        events: &[Event],
    ) -> StoreResult<bool>;
    /// The refresh token with this hash and its grant, whatever their state.
    async fn find_refresh_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
    ) -> StoreResult<Option<(RefreshToken, Grant)>>;
    /// Rotates the presented refresh token in one transaction: if it is its family's live token, marks it
    /// rotated (keeping `sealed_response` for the grace window) and stores `next`; if it was rotated at
    /// most `grace_secs` ago and its successor is unused, answers that rotation's sealed response; if it
    /// was rotated otherwise, revokes the whole grant (reuse detection).
    async fn rotate_refresh_token(
        &self,
        tenant: &TenantId,
        token_hash: &str,
        window: RotationWindow,
        next: &Issuance,
        sealed_response: &[u8],
        events: &[Event],
    ) -> StoreResult<Rotation>;
    /// Revokes the grant, its refresh tokens, and the access tokens recorded for it; returns the access
    /// token ids newly revoked (for cache invalidation). Revoking a revoked grant changes nothing.
    async fn revoke_grant(
        &self,
        tenant: &TenantId,
        grant_id: &str,
        now: UnixTime,
        events: &[Event],
    ) -> StoreResult<Vec<crate::TokenId>>;
    /// Revokes every live grant of user `subject` (all clients) as [`GrantStore::revoke_grant`] does, in
    /// one transaction; returns the access token ids newly revoked. Used after a password change
    /// (RFC 9700 §4.14.2): grants made meanwhile by an old session must not outlive it.
    async fn revoke_user_grants(
        &self,
        tenant: &TenantId,
        subject: &str,
        now: UnixTime,
        events: &[Event],
    ) -> StoreResult<Vec<crate::TokenId>>;
    /// Deletes grants that expired before `now`, and grants that never issued a token and were created
    /// before `unredeemed_before` (their code was abandoned), with their codes, refresh tokens and token
    /// records; returns how many grants.
    async fn purge_expired_grants(&self, now: UnixTime, unredeemed_before: UnixTime) -> StoreResult<u64>;
    /// Remembers (replacing) the scopes a user consented to for a client.
    async fn save_consent(&self, consent: &Consent, events: &[Event]) -> StoreResult<()>;
    async fn find_consent(&self, tenant: &TenantId, subject: &str, client: &ClientId) -> StoreResult<Option<Consent>>;
}

/// A tenant's end users. Usernames are unique per tenant by their folded form (`Username::folded`).
#[async_trait]
pub trait UserStore: Send + Sync {
    /// A taken folded username is `Conflict`.
    async fn create_user(&self, user: &User, events: &[Event]) -> StoreResult<()>;
    async fn get_user(&self, tenant: &TenantId, id: &UserId) -> StoreResult<Option<User>>;
    /// The user whose folded username is `folded`: the login lookup.
    async fn find_user_by_username(&self, tenant: &TenantId, folded: &str) -> StoreResult<Option<User>>;
    /// At most `limit` users ordered by id, starting after `after` (a cursor that stays valid while users
    /// are added or removed).
    async fn list_users(&self, tenant: &TenantId, after: Option<&UserId>, limit: u32) -> StoreResult<Vec<User>>;
    /// Replaces every stored field but the id and creation time; a missing user is `NotFound`.
    async fn update_user(&self, user: &User, events: &[Event]) -> StoreResult<()>;
    /// Swaps the password hash only if it is still `current`, so a rehash at login never overwrites a
    /// password an administrator set meanwhile. Returns whether it swapped (events are stored only then).
    async fn replace_password_hash(
        &self,
        tenant: &TenantId,
        id: &UserId,
        current: &str,
        new_hash: &str,
        events: &[Event],
    ) -> StoreResult<bool>;
    async fn delete_user(&self, tenant: &TenantId, id: &UserId, events: &[Event]) -> StoreResult<()>;
}

/// The sign-in pages' state (see [`crate::session`]). Reads take `now` and never return an expired record.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &crate::session::BrowserSession) -> StoreResult<()>;
    async fn find_session(
        &self,
        tenant: &TenantId,
        session_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<crate::session::BrowserSession>>;
    /// Ends one session (logout, or a fresh login replacing it). Deleting a missing one is not an error.
    async fn delete_session(&self, tenant: &TenantId, session_hash: &str) -> StoreResult<()>;
    /// Ends every session of a user (disabled, deleted, password changed); returns how many ended.
    async fn delete_user_sessions(&self, tenant: &TenantId, user: &UserId) -> StoreResult<u64>;
    async fn save_pending(&self, pending: &crate::session::PendingAuthorization) -> StoreResult<()>;
    async fn find_pending(
        &self,
        tenant: &TenantId,
        pending_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<crate::session::PendingAuthorization>>;
    async fn delete_pending(&self, tenant: &TenantId, pending_hash: &str) -> StoreResult<()>;
    /// Removes expired sessions and pending requests of every tenant; returns how many were removed.
    async fn purge_expired_sessions(&self, now: UnixTime) -> StoreResult<u64>;
}

/// Second factors (see [`crate::mfa`]). Every rule that must hold across replicas (a time step used once,
/// a recovery code used once) is one conditional statement whose affected-row count decides.
#[async_trait]
pub trait MfaStore: Send + Sync {
    /// Stores a pending enrolment, replacing an earlier pending one; a confirmed one is `Conflict` (it
    /// must be disabled first).
    async fn save_pending_totp(&self, enrolment: &crate::mfa::TotpEnrolment, events: &[Event]) -> StoreResult<()>;
    async fn find_totp(&self, tenant: &TenantId, user: &UserId) -> StoreResult<Option<crate::mfa::TotpEnrolment>>;
    /// Confirms the pending enrolment with the code of `step` and replaces the recovery codes with
    /// `recovery_hashes`, in one transaction; false (nothing changed) when there is no pending enrolment.
    /// `display_sealed` (the codes, sealed) is kept until [`MfaStore::take_recovery_display`] takes it.
    #[expect(clippy::too_many_arguments, reason = "one transaction's inputs; a struct would only rename them")]
    async fn confirm_totp(
        &self,
        tenant: &TenantId,
        user: &UserId,
        step: i64,
        recovery_hashes: &[String],
        display_sealed: &[u8],
        now: UnixTime,
        events: &[Event],
    ) -> StoreResult<bool>;
    /// Records that the code of `step` was accepted, only if the enrolment is confirmed and `step` is later
    /// than the last accepted one (compare-and-set); clears the failure count. True for exactly one caller.
    async fn use_totp_step(&self, tenant: &TenantId, user: &UserId, step: i64) -> StoreResult<bool>;
    /// Counts a wrong code; returns the consecutive failures now stored (0 when not enrolled).
    async fn record_totp_failure(&self, tenant: &TenantId, user: &UserId, now: UnixTime) -> StoreResult<u32>;
    /// Spends the recovery code with this hash (deletes it) and clears the failure count; true for
    /// exactly one caller.
    async fn use_recovery_code(&self, tenant: &TenantId, user: &UserId, code_hash: &str) -> StoreResult<bool>;
    async fn count_recovery_codes(&self, tenant: &TenantId, user: &UserId) -> StoreResult<u64>;
    /// The sealed recovery codes kept by the confirmation, returned to exactly one caller and then gone.
    async fn take_recovery_display(&self, tenant: &TenantId, user: &UserId) -> StoreResult<Option<Vec<u8>>>;
    /// Removes the enrolment (pending or confirmed) and the recovery codes; returns whether one existed.
    async fn delete_totp(&self, tenant: &TenantId, user: &UserId, events: &[Event]) -> StoreResult<bool>;
    async fn save_mfa_challenge(&self, challenge: &crate::mfa::MfaChallenge) -> StoreResult<()>;
    async fn find_mfa_challenge(
        &self,
        tenant: &TenantId,
        challenge_hash: &str,
        now: UnixTime,
    ) -> StoreResult<Option<crate::mfa::MfaChallenge>>;
    async fn delete_mfa_challenge(&self, tenant: &TenantId, challenge_hash: &str) -> StoreResult<()>;
    /// Removes expired challenges of every tenant; returns how many.
    async fn purge_expired_mfa_challenges(&self, now: UnixTime) -> StoreResult<u64>;
}

/// The login throttle's failure counters, shared by every replica so that spreading guesses over them
/// gains nothing. Each counter is a key within a tenant (the throttle builds them: per account, per source
/// address, per pair); a counter whose last failure is not after `since` counts as empty.
#[async_trait]
pub trait LoginFailureStore: Send + Sync {
    /// The live counters among `keys`, as (key, failures, last failure); keys without one are left out.
    async fn login_failures(
        &self,
        tenant: &TenantId,
        keys: &[&str],
        since: UnixTime,
    ) -> StoreResult<Vec<(String, u32, UnixTime)>>;
    /// Counts a failure at `now` under each key (starting over at 1 where the counter is not live after
    /// `since`), atomically per key; returns the counts now stored, in the order of `keys`.
    async fn record_login_failure(
        &self,
        tenant: &TenantId,
        keys: &[&str],
        now: UnixTime,
        since: UnixTime,
    ) -> StoreResult<Vec<u32>>;
    async fn clear_login_failures(&self, tenant: &TenantId, keys: &[&str]) -> StoreResult<()>;
    /// Removes counters of every tenant whose last failure is not after `since`; returns how many.
    async fn purge_login_failures(&self, since: UnixTime) -> StoreResult<u64>;
}

#[async_trait]
pub trait Health: Send + Sync {
    /// Whether the backing engine answers, for the readiness probe.
    async fn ping(&self) -> StoreResult<()>;
}

/// Everything the auth service stores, as one object to wire.
pub trait Store:
    TenantStore
    + ClientStore
    + KeyStore
    + RevocationStore
    + PolicyStore
    + AuditStore
    + GrantStore
    + UserStore
    + SessionStore
    + MfaStore
    + LoginFailureStore
    + Health
{
}

impl<T> Store for T where
    T: TenantStore
        + ClientStore
        + KeyStore
        + RevocationStore
        + PolicyStore
        + AuditStore
        + GrantStore
        + UserStore
        + SessionStore
        + MfaStore
        + LoginFailureStore
        + Health
{
}

/// Which audit records to return: all filters are ANDed; `None` means "any".
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditQuery {
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub subject: Option<String>,
    /// Inclusive lower and exclusive upper bounds on `occurred_at_ms`.
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    pub cursor: Option<AuditCursor>,
    /// At most this many records (the adapter caps it at 1000).
    pub limit: u32,
}

/// Where a page starts. Records are numbered in the order they were stored (`seq`), so a cursor stays
/// valid while new records arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditCursor {
    /// Newest first, records stored before `seq` (browsing back in time).
    Before(u64),
    /// Oldest first, records stored after `seq` (following the trail live, `rsp audit tail`).
    After(u64),
}

/// One stored audit record: the event and its position in the trail.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub seq: u64,
    pub event: crate::event::Event,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Stores the events; an event whose id is already stored is skipped (the bus delivers at least
    /// once). Returns how many were new.
    async fn append_audit(&self, events: &[crate::event::Event]) -> StoreResult<u64>;
    /// A page of `tenant`'s trail. Without a cursor: the newest records, newest first.
    async fn query_audit(&self, tenant: &TenantId, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;
}
