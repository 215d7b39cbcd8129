//! Building and running the server: bind first (so tests can use port 0), then wire the concrete
//! adapters behind the ports, then serve until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rsp_core::{Clock, Store, SystemClock};
use rsp_http::{AppState, OpsState};
use rsp_oauth::{AuthService, Issuers, TokenSettings};
use rsp_policy::PolicyService;
use rsp_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::bootstrap;
use crate::config::{Config, validate_public_url};

/// Decisions kept in the decision cache; each entry is a few hundred bytes.
const DECISION_CACHE_CAPACITY: usize = 100_000;

/// The process-wide Prometheus recorder; installed once even when tests start many apps at once (the
/// lock makes concurrent first calls wait for one installation instead of racing to install twice).
fn prometheus() -> anyhow::Result<&'static PrometheusHandle> {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let _installing = INSTALL.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let buckets = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)?
        .install_recorder()?;
    Ok(HANDLE.get_or_init(|| handle))
}

/// A built server, bound and ready to run.
pub struct Application {
    public: TcpListener,
    ops: TcpListener,
    public_url: String,
    auth: Arc<AuthService>,
    policy: Arc<PolicyService>,
    store: SqliteStore,
    grace: Duration,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

impl Application {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, Arc::new(SystemClock)).await
    }

    /// Like [`Self::build`] with a clock of the caller's choosing (tests move time).
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let public =
            TcpListener::bind(config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
        let ops = TcpListener::bind(config.ops_listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.ops_listen))?;
        let public_url = match &config.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{}", public.local_addr()?),
        };
        validate_public_url(&public_url, config.allow_insecure_http)?;

        bootstrap::ensure_data_dir(&config.data_dir)?;
        let master_key = bootstrap::master_key(config.master_key.as_deref(), &config.data_dir)?;
        let store = SqliteStore::open(&config.data_dir.join("rsp.db")).await.context("cannot open the database")?;
        let settings =
            TokenSettings { access_token_ttl_secs: config.access_token_ttl_secs, ..TokenSettings::default() };
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        let policy = Arc::new(PolicyService::new(shared.clone(), clock.clone(), DECISION_CACHE_CAPACITY));
        // One process: token issuance asks the policy engine directly.
        let auth = Arc::new(
            AuthService::new(shared, clock, &master_key, Issuers::new(&public_url), settings)
                .with_scope_gate(policy.clone()),
        );
        bootstrap::first_start(&auth, &config.data_dir).await?;
        prometheus()?;
        Ok(Self {
            public,
            ops,
            public_url,
            auth,
            policy,
            store,
            grace: Duration::from_secs(config.shutdown_grace_secs),
        })
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.public.local_addr()?)
    }

    pub fn ops_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.ops.local_addr()?)
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves both listeners until `shutdown` completes, then stops accepting, reports not-ready, and
    /// waits up to the grace period for in-flight requests.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let draining = Arc::new(AtomicBool::new(false));
        let handle = prometheus()?;
        let app = rsp_http::router(AppState { auth: self.auth.clone(), policy: self.policy.clone() });
        let ops = rsp_http::ops_router(OpsState {
            auth: self.auth.clone(),
            policy: self.policy.clone(),
            render_metrics: Arc::new(move || handle.render()),
            draining: draining.clone(),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        tracing::info!(public = %self.public_url, ops = %self.ops.local_addr()?, "serving");
        let public_server =
            tokio::spawn(axum::serve(self.public, app).with_graceful_shutdown(stopped(stop_rx.clone())).into_future());
        let ops_server =
            tokio::spawn(axum::serve(self.ops, ops).with_graceful_shutdown(stopped(stop_rx)).into_future());

        shutdown.await;
        tracing::info!("shutdown requested; draining in-flight requests");
        draining.store(true, Ordering::SeqCst);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(self.grace, async {
            let _ = public_server.await;
            let _ = ops_server.await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!("grace period over; stopping with requests still in flight");
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
