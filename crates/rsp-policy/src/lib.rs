//! The policy decision engine of the Rust Security Platform, and the only crate that imports Cedar.
//!
//! Its core is pure: no HTTP, no SQL, no storage, no clock. Callers hand it text and JSON (a tenant's policy
//! document, its entities, a decision request) and get back Rust values; storage, HTTP and the admin API
//! are wired to it elsewhere. Cedar's types stay inside: nothing public here names one, so the rest of
//! the workspace depends on this API, not on Cedar's.
//!
//! # Layout
//! - [`document`]: what an author writes. [`PolicyDocument`] (Cedar policy text, an optional
//!   [`SchemaSource`] in Cedar or JSON syntax, [`TemplateLink`]s) and the parsed [`Schema`].
//! - [`compile`]: [`validate`] turns a document into [`CompiledPolicies`] (policies under their
//!   `@id`, templates linked, strict validation against the schema) or a list of [`Diagnostic`]s with
//!   policy id, line and column. Nothing is produced unless everything compiled, so a caller that
//!   installs only compiled sets cannot install a broken write.
//! - [`entities`]: [`EntityStore`], a tenant's entities as an immutable snapshot built from Cedar's
//!   JSON entity format and checked against the schema; `upsert` and `delete` return a new store.
//! - [`engine`]: [`PolicyEngine`] holds each tenant's current [`Snapshot`] (policies, schema,
//!   entities and their two versions) and swaps it atomically, so a reload neither blocks nor tears a
//!   decision. Versions only move forward, and a load that a removal overtook is not installed.
//! - [`request`]: [`DecisionRequest`], parsed from JSON with errors that name the field; entity
//!   references as [`EntityRef`] (`User::"alice"` or `{"type", "id"}`).
//! - [`decision`]: [`authorize`] and [`authorize_batch`] give Cedar's [`Decision`] for one snapshot;
//!   evaluation errors are listed in the decision, never raised. Cedar evaluates only the policies whose
//!   scope matches the request (`slice`), which leaves its response unchanged.
//! - [`cache`]: [`DecisionCache`], keyed by tenant, both versions and the request's canonical bytes, so
//!   a write can never be followed by a stale decision.
//! - [`service`]: [`PolicyService`], the use cases over the storage port: validated, versioned writes
//!   and cached decisions on the installed snapshot; change notices between replicas over the cache
//!   port, with a periodic recheck against the store as the fallback that bounds staleness; sampled
//!   `decision.denied` events for the event sink.
//! - [`error`]: [`Diagnostic`], [`EntityError`], [`RequestError`], [`EngineError`].
//!
//! # Typical use
//! ```
//! use rsp_policy::{DecisionRequest, EntityStore, PolicyDocument, PolicyEngine, authorize, validate};
//! use rsp_core::TenantId;
//!
//! let engine = PolicyEngine::new();
//! let tenant = TenantId::default_tenant();
//! let document = PolicyDocument {
//!     policies: r#"@id("owners") permit(principal, action, resource) when { resource.owner == principal };"#.into(),
//!     ..PolicyDocument::default()
//! };
//! let policies = validate(&document).map_err(|diagnostics| format!("{diagnostics:?}"))?;
//! engine.install_policies(&tenant, policies, 1)?;
//! let entities = serde_json::json!([{
//!     "uid": {"type": "Doc", "id": "d1"},
//!     "attrs": {"owner": {"__entity": {"type": "User", "id": "alice"}}},
//!     "parents": [],
//! }]);
//! engine.install_entities(&tenant, EntityStore::from_json(entities, None)?, 1)?;
//!
//! let request: DecisionRequest = serde_json::from_str(
//!     r#"{"principal": "User::\"alice\"", "action": "Action::\"edit\"", "resource": {"type": "Doc", "id": "d1"}}"#,
//! )?;
//! let snapshot = engine.snapshot(&tenant).ok_or("no snapshot")?;
//! let decision = authorize(&snapshot, &request)?;
//! assert!(decision.allowed);
//! assert_eq!(decision.reasons, ["owners"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cache;
pub mod compile;
pub mod decision;
pub mod document;
pub mod engine;
pub mod entities;
pub mod entity_ref;
pub mod error;
pub mod request;
pub mod service;
mod slice;
mod source;

pub use cache::{CacheKey, CacheStats, DecisionCache};
pub use compile::{CompiledPolicies, validate};
pub use decision::{Decision, authorize, authorize_batch};
pub use document::{PolicyDocument, Schema, SchemaSource, TemplateLink};
pub use engine::{LoadTicket, PolicyEngine, Snapshot};
pub use entities::EntityStore;
pub use entity_ref::{EntityRef, EntityRefError};
pub use error::{Diagnostic, DiagnosticSource, EngineError, EntityError, RequestError, VersionKind};
pub use request::DecisionRequest;
pub use service::{DEFAULT_SNAPSHOT_RECHECK, PolicyService, PolicyServiceError, SampleRateError};
