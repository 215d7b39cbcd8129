//! The port implementations that are the same SQL on both engines, written once.
//!
//! SQLite and PostgreSQL differ in their pools, their locking and a few dialect details, but most of what the
//! stores do is plain SQL both accept: SQLite binds `$N` placeholders by number just as PostgreSQL does, so
//! one statement text serves both. What really differs stays with each engine, behind the small set of
//! inherent items every store provides (the macros below call them by name):
//!
//! - `fn reader(&self) -> &Pool`: the pool for reads that tolerate replica lag;
//! - `fn primary(&self) -> &Pool`: the pool for reads that must see the latest write;
//! - `async fn write_tx(&self) -> StoreResult<Transaction<'static, _>>`: a write transaction (SQLite takes
//!   the write lock up front with `BEGIN IMMEDIATE`);
//! - `async fn lock_tenant(tx, tenant) -> StoreResult<()>`: makes writers of one tenant take turns
//!   (PostgreSQL locks the tenant row; SQLite's write transaction already excludes every other writer);
//! - `async fn snapshot_tx(&self) -> StoreResult<Transaction<'static, _>>`: a read-only snapshot for reads
//!   of several statements that must agree;
//! - `async fn commit_with_events(tx, events) -> StoreResult<()>`: adds a change's events to the
//!   transactional outbox and commits them with the change.
//!
//! The port traits are declared in `rsp_core` and the stores are two unrelated types, so one generic impl
//! is not allowed (orphan rule) and generic functions over `sqlx::Database` would need a bound per bound
//! type and executor; a `macro_rules!` per port, expanded once per engine, keeps each body readable.

pub(crate) mod accounts;
pub(crate) mod grants;
pub(crate) mod keys;
pub(crate) mod login_failures;
pub(crate) mod mfa;
pub(crate) mod policy;
pub(crate) mod sessions;
#[cfg(test)]
mod tests;
pub(crate) mod users;
