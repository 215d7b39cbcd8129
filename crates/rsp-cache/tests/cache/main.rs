//! Integration tests of the cache adapters against real Redis (`RSP_TEST_REDIS_URL`, a private
//! `redis-server`, a proxy that cuts connections). Each test works under its own random key prefix.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "the helpers outside #[test] functions fail loudly too"
)]

mod helpers;
mod local;
mod metrics;
mod outage;
mod replicas;
