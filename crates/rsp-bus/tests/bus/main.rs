//! The Redis Streams bus against a real Redis: the port's conformance suite, the consumer runner under
//! failures (a consumer killed mid-batch, an always-failing handler), the publisher with Redis stopped, and
//! Redis-specific behaviour. Tests skip (saying why) when Redis is unreachable, and fail under `CI=true`.
//! Each test works under its own random key prefix and deletes it afterwards; tests that stop Redis start
//! a private `redis-server` on a free port.

#![expect(clippy::unwrap_used, reason = "the helpers outside #[test] functions fail loudly too")]

mod conformance;
mod publisher;
mod redis_bus;
mod runner;
mod support;
