//! The floor under every HTTP figure of `BENCHMARKS.md`: a server on the same stack as `rsp serve` (tokio's
//! multi-threaded runtime, axum over hyper, HTTP/1.1 keep-alive and HTTP/2) that does no work at all. It reads
//! each POST body whole and answers one fixed JSON object that every `rsp loadtest` scenario accepts: an
//! `access_token` for the token endpoint, `active` for introspection, a `decision` for authorization.
//!
//! Measured beside our server and a peer with the same load generator on the same two cores, it tells how
//! many requests per second this box can carry at all, and so whether a target such as "10x the peer" is
//! within reach of any server measured this way (`bench/oidc-provider.sh`, `bench/cedar.sh`).
//!
//! Usage: `cargo run --release -p rsp --example http_floor -- [ADDRESS]` (default `127.0.0.1:18280`).

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::post;

/// What every request gets back: valid as a token response, an introspection answer and a decision.
const ANSWER: &str =
    r#"{"access_token":"floor","token_type":"Bearer","expires_in":300,"active":true,"decision":"Allow"}"#;

async fn answer(_body: Bytes) -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], ANSWER)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18280".to_owned());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    let app = Router::new().route("/{*path}", post(answer));
    axum::serve(listener, app).await
}
