//! The event bus: adapters of the [`EventBus`](rsp_core::bus::EventBus) port and everything built once on
//! top of it. Use cases record facts ([`rsp_core::Event`]) through the [`Publisher`]; consumers (the audit
//! trail, the outbox relay) run a [`Consumer`] with their [`EventHandler`].
//!
//! # Layout
//! - [`redis`]: [`RedisStreamsBus`], the port on Redis Streams: one stream per priority, consumer groups,
//!   retries and dead letters moved by Lua scripts so a crash at any point loses nothing. Its `keys` module
//!   is the key layout; `lua/` holds the scripts.
//! - [`consumer`]: the runner, written once over `Arc<dyn EventBus>` for every adapter: claim (de-dup by
//!   event id), handle, complete and acknowledge, or retry with jittered backoff, or dead-letter after
//!   `max_attempts`; stops cleanly on a `watch` signal.
//! - [`publisher`]: [`Publisher`], the batching front door with backpressure and a fallback bus (Redis
//!   first, the database outbox when Redis is down); [`ForwardHandler`], the handler of the outbox relay.
//! - [`metrics`]: every metric the crate emits, in one table.
//! - [`error`]: configuration, connection and publisher errors (bus calls use the port's `BusError`).
//! - `conformance` (feature `conformance`): the port's semantics as public async checks that any adapter's
//!   tests run against fresh instances of it.
//!
//! The SQL adapter of the same port lives in `rsp-store` (it is the transactional outbox, written in the
//! use case's own transaction); the relay forwards it here. Consumers see the same delivery model on both.
//!
//! # Decisions
//! - **Nothing lost on a crash**: every change of a delivery's state in Redis (retry, dead letter, due retry
//!   read back) is one Lua script, so an event is always pending, scheduled, handled or dead.
//! - **Duplicates**: delivery is at least once; the runner claims each event id (`SET NX PX`) before its
//!   handler runs and marks it done after, so a copy published twice or redelivered after a crash is
//!   skipped. A copy found *in progress* on a redelivery is retried once the claim's lease has lapsed, not
//!   dropped: the claim may belong to the consumer that died holding it.
//! - **Throughput**: the runner claims a batch at once and completes events while the next handler runs;
//!   the Redis bus gathers those concurrent single-key commands into one pipeline, and scans for deliveries
//!   to reclaim at most every `reclaim_after / 4` rather than on every `receive`.
//!
//! # Performance
//! `cargo bench -p rsp-bus --bench bus` (2-core machine shared with other builds, Redis 7.0 on loopback):
//! a 200k-event backlog drains at 62-68k events/s with one consumer, 78-82k/s with two; publishing through
//! the [`Publisher`] while one consumer handles gives 57-58k events/s end to end; publish-to-handle latency
//! at 2,000 events/s is p50 0.3-0.4 ms and p99 3-8 ms (the spread is the machine's other load).

pub mod consumer;
pub mod error;
pub mod metrics;
pub mod publisher;
pub mod redis;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use consumer::{Consumer, ConsumerConfig, EventHandler, HandlerError, RunningConsumer};
pub use error::{ConfigError, ConnectError, PublishError};
pub use publisher::{ForwardHandler, Publisher, PublisherConfig};
pub use redis::{RedisBusConfig, RedisStreamsBus};
