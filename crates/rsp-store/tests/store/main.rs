//! The storage ports against every engine: each test body takes an [`engine::Engine`] and runs once on a
//! fresh SQLite file and once on a fresh PostgreSQL schema, so the two adapters cannot drift apart.
//! PostgreSQL tests skip (saying why) when the server is unreachable, and fail instead under `CI=true`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly"
)]

/// One `#[tokio::test]` per (body, engine): `mod sqlite { fn body() }` and `mod postgres { fn body() }`.
/// Multi-threaded, because a failed write's rollback reaches the server from a pool task, which must be
/// able to run while the schema guard's drop blocks the test's thread.
macro_rules! on_both_engines {
    ($($body:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body(&crate::engine::Engine::sqlite().await).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $body() {
                    if let Some(engine) = crate::engine::Engine::postgres().await {
                        super::$body(&engine).await;
                    }
                }
            )+
        }
    };
}

mod clients;
mod engine;
mod fixtures;
mod grants;
mod keys;
mod login_failures;
mod mfa;
mod outbox;
mod policies;
mod postgres;
mod sessions;
mod tenants;
mod users;
