//! Test support: [`spawn_app`] starts the real server in process on port 0 with a fresh data directory
//! and a clock the test controls, plus helpers for the calls most tests make.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use reqwest::Response;
use rsp::bootstrap::{ADMIN_CLIENT_FILE, AdminCredentials};
use rsp::{Application, Config};
use rsp_core::{ManualClock, SystemClock, UnixTime};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use rsp_core::Clock;

pub mod services;

/// A running server and what a test needs to talk to it.
#[derive(Debug)]
pub struct TestApp {
    /// The public base URL, e.g. `http://127.0.0.1:41234`: where requests go.
    pub url: String,
    /// The address the public listener is bound to.
    bound_url: String,
    /// The operations listener's base URL.
    pub ops_url: String,
    pub http: reqwest::Client,
    pub clock: ManualClock,
    pub admin: AdminCredentials,
    pub config: Config,
    data_dir: Arc<tempfile::TempDir>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Options for [`spawn_app_with`].
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    pub access_token_ttl_secs: Option<i64>,
    /// The `trusted_proxies` setting (comma-separated addresses or networks).
    pub trusted_proxies: Option<String>,
    /// PostgreSQL and Redis instead of SQLite and the in-process cache and bus (see [`services`]).
    pub shared: Option<services::Shared>,
}

/// Starts the server with default settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(TestOptions::default()).await
}

pub async fn spawn_app_with(options: TestOptions) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap_or_else(|e| fail(&e)));
    let clock = ManualClock::new(SystemClock.now());
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap_or_else(|e| fail(&e)),
        ops_listen: "127.0.0.1:0".parse().unwrap_or_else(|e| fail(&e)),
        shutdown_grace_secs: 5,
        ..Config::default()
    };
    if let Some(ttl) = options.access_token_ttl_secs {
        config.access_token_ttl_secs = ttl;
    }
    config.trusted_proxies = options.trusted_proxies;
    if let Some(shared) = &options.shared {
        shared.apply(&mut config);
    }
    start(config, dir, clock).await.unwrap_or_else(|e| fail(&*e))
}

fn fail(error: &dyn std::fmt::Display) -> ! {
    // Test set-up failing is the test failing; say why.
    #[expect(clippy::panic, reason = "test support: a failed set-up must fail the test")]
    {
        panic!("test app set-up failed: {error}")
    }
}

async fn start(config: Config, dir: Arc<tempfile::TempDir>, clock: ManualClock) -> anyhow::Result<TestApp> {
    let app = Application::build_with_clock(&config, Arc::new(clock.clone())).await?;
    let url = app.public_url().to_owned();
    let bound_url = format!("http://{}", app.local_addr()?);
    let ops_url = format!("http://{}", app.ops_addr()?);
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    let admin_file: PathBuf = config.data_dir.join(ADMIN_CLIENT_FILE);
    let admin: AdminCredentials = serde_json::from_str(&std::fs::read_to_string(&admin_file)?)?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    Ok(TestApp {
        url,
        bound_url,
        ops_url,
        http,
        clock,
        admin,
        config,
        data_dir: dir,
        shutdown: Some(tx),
        server: Some(server),
    })
}

impl TestApp {
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/t/{tenant}", self.url)
    }

    pub fn endpoint(&self, tenant: &str, path: &str) -> String {
        format!("{}/t/{tenant}{path}", self.url)
    }

    /// Stops the server gracefully and starts it again on the same data directory and ports, so the
    /// issuer URL is unchanged.
    pub async fn restart(mut self) -> anyhow::Result<TestApp> {
        self.stop().await?;
        let mut config = self.config.clone();
        config.listen = self.url.trim_start_matches("http://").parse()?;
        config.ops_listen = self.ops_url.trim_start_matches("http://").parse()?;
        start(config, self.data_dir.clone(), self.clock.clone()).await
    }

    /// Another replica of this deployment: a second server on the same data directory (the same master key
    /// and admin credentials), database and Redis, on ports of its own, with the same test clock.
    pub async fn replica(&self) -> anyhow::Result<TestApp> {
        self.replica_configured(|_| {}).await
    }

    /// A [`replica`](Self::replica) whose configuration `adjust` changes first (another role, say).
    pub async fn replica_configured(&self, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<TestApp> {
        let mut config = self.config.clone();
        adjust(&mut config);
        config.listen = "127.0.0.1:0".parse()?;
        config.ops_listen = "127.0.0.1:0".parse()?;
        // The first replica's URL is the issuer every replica shares (behind one load balancer).
        config.public_url = Some(self.url.clone());
        let mut replica = start(config, self.data_dir.clone(), self.clock.clone()).await?;
        // Requests go to this replica itself; its public URL stays the shared issuer.
        replica.url = replica.bound_url.clone();
        Ok(replica)
    }

    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.context("server task panicked")??;
        }
        Ok(())
    }

    /// A client_credentials request with HTTP Basic authentication.
    pub async fn token_basic(&self, tenant: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> Response {
        let mut body = vec![("grant_type", "client_credentials")];
        body.extend_from_slice(form);
        self.http
            .post(self.endpoint(tenant, "/oauth2/token"))
            .basic_auth(id, Some(secret))
            .form(&body)
            .send()
            .await
            .unwrap_or_else(|e| fail(&e))
    }

    /// An access token string, asserting success.
    pub async fn access_token(&self, tenant: &str, id: &str, secret: &str, form: &[(&str, &str)]) -> String {
        let response = self.token_basic(tenant, id, secret, form).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_else(|e| fail(&e));
        if !status.is_success() {
            fail(&format!("token request failed: {status} {body}"));
        }
        body.get("access_token").and_then(Value::as_str).unwrap_or_default().to_owned()
    }

    pub async fn admin_token(&self) -> String {
        let (id, secret) = (self.admin.client_id.clone(), self.admin.client_secret.clone());
        self.access_token("default", &id, &secret, &[("scope", "rsp:admin")]).await
    }

    /// An admin API call with a fresh admin token.
    pub async fn admin_call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let token = self.admin_token().await;
        let mut request = self.http.request(method, format!("{}/admin/v1{path}", self.url)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap_or_else(|e| fail(&e))
    }

    /// Creates a tenant through the admin API.
    pub async fn create_tenant(&self, id: &str, signing_alg: Option<&str>) -> Value {
        let mut body = json!({"id": id, "name": id});
        if let (Some(alg), Some(object)) = (signing_alg, body.as_object_mut()) {
            object.insert("signing_alg".into(), json!(alg));
        }
        let response = self.admin_call(reqwest::Method::POST, "/tenants", Some(body)).await;
        expect_status(response, 201).await
    }

    /// Registers a client through the admin API; the answer includes `client_secret`.
    pub async fn create_client(&self, tenant: &str, body: Value) -> Value {
        let response = self.admin_call(reqwest::Method::POST, &format!("/tenants/{tenant}/clients"), Some(body)).await;
        expect_status(response, 201).await
    }

    /// Introspects `token` as the given client.
    pub async fn introspect(&self, tenant: &str, id: &str, secret: &str, token: &str) -> Value {
        let response = self
            .http
            .post(self.endpoint(tenant, "/oauth2/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap_or_else(|e| fail(&e));
        expect_status(response, 200).await
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(secs);
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }
}

/// The JSON body of `response`, failing the test unless the status is `status`.
pub async fn expect_status(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if actual != status {
        fail(&format!("expected status {status}, got {actual}: {text}"));
    }
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
