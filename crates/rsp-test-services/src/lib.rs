//! The real services the tests of every crate run against, in one place: where the shared PostgreSQL and
//! Redis are (`RSP_TEST_DATABASE_URL`, `RSP_TEST_REDIS_URL`, defaulting to the local ones), what a test does
//! without one (skips with a printed reason, except under `CI=true`, where that is a failure), and
//! `redis-server` processes of a test's own, for tests that stop Redis. Light on purpose (no crate of the
//! platform), so the adapters' own tests can use it as well as the server's.

mod private_redis;

use std::time::Duration;

pub use private_redis::PrivateRedis;

pub fn database_url() -> String {
    std::env::var("RSP_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("RSP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Says why a test is skipped; under `CI=true` a missing service fails the test instead.
pub fn unavailable(what: &str, reason: impl std::fmt::Display) {
    if std::env::var("CI").as_deref() == Ok("true") {
        #[expect(clippy::panic, reason = "test support: under CI a missing service fails the test")]
        {
            panic!("{what} is required under CI=true: {reason}");
        }
    }
    eprintln!("skipping: {what} unavailable: {reason}");
}

/// A name no other test or run uses: letters, digits and `_` only, so it is a valid schema name and key
/// prefix.
pub fn unique_name(stem: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{stem}_{}_{:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Whether the Redis at `url` answers a `PING` within two seconds, and if not, why.
pub async fn ping_redis(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut connection = tokio::time::timeout(Duration::from_secs(2), client.get_multiplexed_async_connection())
        .await
        .map_err(|_| "no answer within 2 s".to_owned())?
        .map_err(|e| e.to_string())?;
    redis::cmd("PING").query_async::<String>(&mut connection).await.map(drop).map_err(|e| e.to_string())
}
