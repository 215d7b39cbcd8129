//! The real PostgreSQL and Redis for tests of a scaled-out deployment.
//!
//! Each test gets a schema and a key prefix no other test uses, so tests run concurrently on one server;
//! [`Shared::cleanup`] drops both. The servers come from `RSP_TEST_DATABASE_URL` and `RSP_TEST_REDIS_URL`
//! (defaults: the local ones). When one cannot be reached the test is skipped with a printed reason,
//! except under `CI=true`, where that is a failure.

use rsp::Config;
pub use rsp_test_services::{PrivateRedis, database_url, ping_redis, redis_url, unavailable, unique_name};

/// Where a test deployment keeps its shared state.
#[derive(Debug, Clone)]
pub struct Shared {
    pub database_url: String,
    pub schema: String,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
}

impl Shared {
    /// A fresh schema on the test PostgreSQL and a fresh prefix on the test Redis, or `None` (after saying
    /// why) when either cannot be reached.
    pub async fn fresh() -> Option<Self> {
        let shared = Self::fresh_database().await?;
        let redis = redis_url();
        if let Err(error) = ping_redis(&redis).await {
            unavailable("redis", error);
            return None;
        }
        Some(Self { redis_url: Some(redis), ..shared })
    }

    /// A fresh schema on the test PostgreSQL, without Redis.
    pub async fn fresh_database() -> Option<Self> {
        let url = database_url();
        match sqlx::PgPool::connect(&url).await {
            Ok(pool) => pool.close().await,
            Err(error) => {
                unavailable("postgresql", error);
                return None;
            }
        }
        Some(Self {
            database_url: url,
            schema: unique_name("rsp_test"),
            redis_url: None,
            redis_prefix: unique_name("rsp-test"),
        })
    }

    /// The same deployment on another Redis (a private one a test stops and starts).
    pub fn with_redis(mut self, url: String) -> Self {
        self.redis_url = Some(url);
        self
    }

    pub fn apply(&self, config: &mut Config) {
        config.database_url = Some(self.database_url.clone());
        config.database_schema = Some(self.schema.clone());
        config.redis_url = self.redis_url.clone();
        config.redis_prefix = self.redis_prefix.clone();
    }

    /// Drops the schema and deletes the keys under the prefix.
    pub async fn cleanup(&self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.database_url).await {
            let statement = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(statement)).execute(&pool).await;
            pool.close().await;
        }
        if let Some(url) = &self.redis_url
            && let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(mut connection) = client.get_multiplexed_async_connection().await
        {
            let pattern = format!("{}*", self.redis_prefix);
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(&pattern).query_async(&mut connection).await.unwrap_or_default();
            for key in keys {
                let _: Result<(), _> = redis::cmd("DEL").arg(&key).query_async(&mut connection).await;
            }
        }
    }
}
