//! The domain of the Rust Security Platform: the values every other crate speaks in, and the ports
//! (traits) through which use cases reach storage and time.
//!
//! # Layout
//! - [`ids`]: identifiers parsed at the edge (`TenantId`, `ClientId`, `KeyId`, `TokenId`); a value that
//!   exists is valid.
//! - [`scope`]: OAuth scopes and scope sets (RFC 6749 §3.3 syntax).
//! - [`secret`]: `Secret`, a string that never prints and cannot be compared with `==`.
//! - [`time`]: `UnixTime` and the `Clock` port, so tests control time.
//! - [`tenant`], [`client`], [`key`]: the records the platform stores.
//! - [`grant`]: the authorization code flow's records: grants, codes, refresh tokens, consents.
//! - [`user`]: end users of a tenant (ids, usernames folded for comparison, stored records).
//! - [`mfa`]: second factors: TOTP enrolments, recovery codes, the login's pending second step.
//! - [`policy`]: policy-set versions and entities as stored (Cedar text kept verbatim).
//! - [`ports`]: the storage traits the adapters in `rsp-store` implement.
//! - [`cache`]: the two-level cache port (`Cache`, `CacheKind`, `Invalidation`) and its typed helpers.
//! - [`event`], [`bus`], [`context`]: facts for the audit trail and background work, the event bus port
//!   that carries them, and the ambient request (id, trace id, actor) events are stamped with.
//!
//! Nothing here knows about HTTP, SQL, Redis or moka: those live in the adapter crates.

pub mod bus;
pub mod cache;
pub mod client;
pub mod context;
pub mod event;
pub mod grant;
pub mod ids;
pub mod key;
pub mod mfa;
pub mod policy;
pub mod ports;
pub mod scope;
pub mod secret;
pub mod session;
pub mod tenant;
pub mod time;
pub mod user;

pub use client::{Client, ClientKind, GrantType};
pub use event::{Event, EventId, EventKind, Priority, Sampler};
pub use ids::{ClientId, IdError, KeyId, TenantId, TokenId};
pub use key::{KeyStatus, SigningAlgorithm, StoredKey};
pub use ports::{Store, StoreError};
pub use scope::{Scope, ScopeError, ScopeSet};
pub use secret::Secret;
pub use tenant::Tenant;
pub use time::{Clock, ManualClock, SystemClock, UnixTime};
pub use user::{User, UserId, Username, UsernameError};
