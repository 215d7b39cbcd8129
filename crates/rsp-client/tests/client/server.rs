//! A stand-in for the platform: a real HTTP server on 127.0.0.1:0 implementing the token, authorize,
//! batch and JWKS contract, with knobs to fail, delay and rotate keys, and counters to prove what reached
//! it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use rsp_client::{ClientCredentials, DecisionClient, DecisionClientBuilder};
use serde_json::{Value, json};

pub const TENANT: &str = "acme";
/// Characters that must be form-urlencoded in the Basic header (RFC 6749 §2.3.1).
pub const CLIENT_ID: &str = "pep:orders";
pub const CLIENT_SECRET: &str = "s3cret+/= x%";

/// What the test can turn and read.
#[derive(Debug, Default)]
pub struct Knobs {
    /// Answer decision calls with 503.
    pub fail: AtomicBool,
    /// Delay decision calls by this many milliseconds.
    pub delay_ms: AtomicU64,
    pub authorize_calls: AtomicUsize,
    pub batch_calls: AtomicUsize,
    pub token_calls: AtomicUsize,
    pub jwks_calls: AtomicUsize,
    pub batch_sizes: Mutex<Vec<usize>>,
    pub http2_requests: AtomicUsize,
    pub http1_requests: AtomicUsize,
    /// Lifetime of issued tokens; 0 means 3600 s.
    pub token_lifetime_secs: AtomicU64,
    pub valid_tokens: Mutex<HashSet<String>>,
    pub jwks: Mutex<Value>,
}

impl Knobs {
    /// Decision calls that reached the server, single and batch.
    pub fn decision_calls(&self) -> usize {
        self.authorize_calls.load(Ordering::SeqCst) + self.batch_calls.load(Ordering::SeqCst)
    }

    pub fn set_fail(&self, fail: bool) {
        self.fail.store(fail, Ordering::SeqCst);
    }

    pub fn revoke_tokens(&self) {
        self.valid_tokens.lock().unwrap().clear();
    }

    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batch_sizes.lock().unwrap().clone()
    }
}

#[derive(Debug)]
pub struct TestServer {
    pub base: String,
    pub knobs: Arc<Knobs>,
}

impl TestServer {
    pub async fn spawn() -> Self {
        let knobs = Arc::new(Knobs { jwks: Mutex::new(json!({"keys": []})), ..Knobs::default() });
        let app = Router::new()
            .route("/t/{tenant}/oauth2/token", post(token))
            .route("/t/{tenant}/v1/authorize", post(authorize))
            .route("/t/{tenant}/v1/authorize/batch", post(batch))
            .route("/t/{tenant}/jwks.json", get(jwks))
            .with_state(Arc::clone(&knobs));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { base, knobs }
    }

    /// A client for this server with test-friendly settings; each test adjusts what it exercises.
    pub fn client(&self) -> DecisionClientBuilder {
        DecisionClient::builder(&self.base, TENANT, ClientCredentials::new(CLIENT_ID, CLIENT_SECRET))
            .timeout(Duration::from_secs(2))
            .cache(None)
    }

    pub fn issuer(&self) -> String {
        format!("{}/t/{TENANT}", self.base)
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

async fn token(State(knobs): State<Arc<Knobs>>, headers: HeaderMap, body: String) -> Response {
    let n = knobs.token_calls.fetch_add(1, Ordering::SeqCst) + 1;
    let basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "));
    let decoded = basic.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
    let pair = decoded.and_then(|d| String::from_utf8(d).ok()).and_then(|s| {
        let (id, secret) = s.split_once(':')?;
        let decode = |part: &str| {
            url::form_urlencoded::parse(format!("x={part}").as_bytes()).next().map(|(_, v)| v.into_owned())
        };
        Some((decode(id)?, decode(secret)?))
    });
    if pair != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    }
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let has = |k: &str, v: &str| form.iter().any(|(key, value)| key == k && value == v);
    if !has("grant_type", "client_credentials") || !has("scope", "rsp:authorize") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "unexpected form");
    }
    let access_token = format!("token-{n}");
    knobs.valid_tokens.lock().unwrap().insert(access_token.clone());
    let lifetime = match knobs.token_lifetime_secs.load(Ordering::SeqCst) {
        0 => 3600,
        secs => secs,
    };
    Json(
        json!({"access_token": access_token, "token_type": "Bearer", "expires_in": lifetime, "scope": "rsp:authorize"}),
    )
    .into_response()
}

/// The bearer check, the failure and delay knobs, and the version counters, common to both endpoints.
async fn gate(knobs: &Knobs, headers: &HeaderMap, version: Version) -> Result<(), Response> {
    if version == Version::HTTP_2 {
        knobs.http2_requests.fetch_add(1, Ordering::SeqCst);
    } else {
        knobs.http1_requests.fetch_add(1, Ordering::SeqCst);
    }
    let token =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !token.is_some_and(|t| knobs.valid_tokens.lock().unwrap().contains(t)) {
        let challenge = [(header::WWW_AUTHENTICATE, r#"Bearer realm="rsp", error="invalid_token""#)];
        return Err((StatusCode::UNAUTHORIZED, challenge, Json(json!({"error": "invalid_token"}))).into_response());
    }
    let delay = knobs.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if knobs.fail.load(Ordering::SeqCst) {
        return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
    }
    Ok(())
}

async fn authorize(
    State(knobs): State<Arc<Knobs>>,
    version: Version,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    knobs.authorize_calls.fetch_add(1, Ordering::SeqCst);
    if let Err(response) = gate(&knobs, &headers, version).await {
        return response;
    }
    match decide(&request) {
        Ok(decision) => Json(decision).into_response(),
        Err(description) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &description),
    }
}

async fn batch(
    State(knobs): State<Arc<Knobs>>,
    version: Version,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    knobs.batch_calls.fetch_add(1, Ordering::SeqCst);
    if let Err(response) = gate(&knobs, &headers, version).await {
        return response;
    }
    let Some(requests) = body["requests"].as_array().filter(|r| r.len() <= 1000) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "requests: up to 1000 request objects");
    };
    knobs.batch_sizes.lock().unwrap().push(requests.len());
    let results: Vec<Value> = requests
        .iter()
        .map(|request| decide(request).unwrap_or_else(|d| json!({"error": "invalid_request", "error_description": d})))
        .collect();
    Json(json!({ "results": results })).into_response()
}

async fn jwks(State(knobs): State<Arc<Knobs>>, Path(tenant): Path<String>) -> Response {
    knobs.jwks_calls.fetch_add(1, Ordering::SeqCst);
    if tenant != TENANT {
        return StatusCode::NOT_FOUND.into_response();
    }
    Json(knobs.jwks.lock().unwrap().clone()).into_response()
}

/// An entity reference in either contract form: `{"type","id"}` or `Type::"id"`.
fn entity(value: &Value) -> Option<(String, String)> {
    match value {
        Value::Object(o) => Some((o.get("type")?.as_str()?.to_owned(), o.get("id")?.as_str()?.to_owned())),
        Value::String(s) => {
            let (t, rest) = s.split_once("::\"")?;
            Some((t.to_owned(), rest.strip_suffix('"')?.to_owned()))
        }
        _ => None,
    }
}

/// The "policy": only `User` principals are known; allowed when `context.allow` is true. The reasons
/// echo the principal so tests can tell whose answer a caller got, and count any request entities.
fn decide(request: &Value) -> Result<Value, String> {
    let (kind, id) = entity(&request["principal"]).ok_or("principal: not an entity reference")?;
    if kind != "User" {
        return Err(format!("unknown entity type {kind}"));
    }
    entity(&request["action"]).ok_or("action: not an entity reference")?;
    entity(&request["resource"]).ok_or("resource: not an entity reference")?;
    let allow = request["context"]["allow"].as_bool().unwrap_or(false);
    let mut reasons = vec![format!("echo:{id}")];
    if let Some(entities) = request["entities"].as_array() {
        reasons.push(format!("entities:{}", entities.len()));
    }
    Ok(json!({
        "decision": if allow { "Allow" } else { "Deny" },
        "reasons": reasons,
        "errors": [],
        "policy_version": 7,
    }))
}
