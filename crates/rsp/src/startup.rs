//! Building and running the server: bind first (so tests can use port 0), then wire the concrete
//! adapters behind the ports, then serve until a shutdown signal.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::ServiceExt;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rsp_cache::{CacheConfig, LocalCache, TwoLevelCache};
use rsp_core::cache::Cache;
use rsp_core::{Clock, SystemClock};
use rsp_http::client_address::{ResolveClientAddress, TrustedProxies};
use rsp_http::{AppState, OpsState, Surfaces};
use rsp_oauth::{AuthService, Issuers, TokenSettings};
use rsp_policy::PolicyService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backend::Backend;
use crate::bootstrap;
use crate::config::{Config, Role, validate_public_url};
use crate::events::Events;
use crate::remote_policy::RemotePolicyGate;

/// How often pending histogram samples are folded into their buckets (the exporter's own default).
const METRICS_UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

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

/// `process_resident_memory_bytes`, the gauge every Prometheus process collector exports, read from
/// `/proc/self/status` at each scrape. By hand: it is one line of procfs, and the collector crates pull in
/// a procfs parser for it. Elsewhere than Linux the gauge is absent.
fn record_resident_memory() {
    if let Some(bytes) = crate::allocator::resident_bytes() {
        #[expect(clippy::cast_precision_loss, reason = "a gauge is an f64; memory sizes fit in its 52 bits")]
        metrics::gauge!("process_resident_memory_bytes").set(bytes as f64);
    }
}

/// A built server, bound and ready to run.
pub struct Application {
    public: TcpListener,
    ops: TcpListener,
    public_url: String,
    role: Role,
    auth: Arc<AuthService>,
    policy: Arc<PolicyService>,
    backend: Backend,
    events: Events,
    /// The tasks that apply cache invalidations to in-memory state (key rings, Cedar snapshots).
    listeners: Vec<JoinHandle<()>>,
    grace: Duration,
    trusted_proxies: TrustedProxies,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application").field("public_url", &self.public_url).finish_non_exhaustive()
    }
}

/// This process's name among the consumers of a group: the host (the pod, in Kubernetes) and the pid.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().chars().filter(|c| c.is_ascii_graphic() && *c != ':').take(48).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rsp".into());
    format!("{host}-{}", std::process::id())
}

/// The cache every use case shares: L1 alone without Redis, L1 + Redis (with invalidations crossing
/// replicas) with it.
async fn open_cache(redis_url: Option<&str>, prefix: &str) -> anyhow::Result<Arc<dyn Cache>> {
    let config = CacheConfig { prefix: prefix.to_owned(), ..CacheConfig::default() };
    Ok(match redis_url {
        Some(url) => Arc::new(TwoLevelCache::connect(url, config).await?),
        None => Arc::new(LocalCache::new(&config)?),
    })
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
        prometheus()?;
        let backend = Backend::open(config).await?;
        let redis_url = config.redis_url.as_deref();
        let cache = open_cache(redis_url, &config.redis_prefix).await?;
        let redis = redis_url.map(|url| (url, config.redis_prefix.as_str()));
        let events = Events::start(&backend, redis, config.role.runs_consumers(), &instance_name()).await?;
        let settings = TokenSettings {
            access_token_ttl_secs: config.access_token_ttl_secs,
            introspection_audit_sample_rate: config.audit_introspection_sample_rate,
            authorization_code_ttl_secs: config.authorization_code_ttl_secs,
            refresh_token_idle_secs: config.refresh_token_idle_secs,
            grant_lifetime_secs: config.grant_lifetime_secs,
            refresh_grace_secs: config.refresh_grace_secs,
            session_lifetime_secs: config.session_lifetime_secs,
            ..TokenSettings::default()
        };
        settings.validate()?;
        // Capacity 0 switches the decision cache off: every request is evaluated (and counted a miss).
        let decision_cache = if config.policy_decision_cache { DECISION_CACHE_CAPACITY } else { 0 };
        let policy = PolicyService::new(backend.store.clone(), clock.clone(), decision_cache)
            .with_cache(cache.clone())
            .with_events(events.sink());
        policy.set_denied_audit_sample_rate(config.audit_denied_decision_sample_rate)?;
        let policy = Arc::new(policy);
        let auth = AuthService::new(backend.store.clone(), clock, &master_key, Issuers::new(&public_url), settings)
            .with_cache(cache)
            .with_events(events.sink());
        // Token issuance asks the policy engine: in this process, or over HTTP when the process is auth alone.
        let auth = match (config.role, config.policy_url.as_deref()) {
            (Role::Auth, Some(url)) => {
                let gate = RemotePolicyGate::new(url);
                let auth = Arc::new(auth.with_policy_gate(gate.clone()));
                gate.attach(&auth);
                auth
            }
            _ => Arc::new(auth.with_policy_gate(policy.clone())),
        };
        let listeners = vec![
            auth.spawn_invalidation_listener(),
            policy.spawn_invalidation_listener(),
            policy.spawn_denied_audit_repeats(),
            auth.spawn_session_purge(),
        ];
        bootstrap::first_start(&auth, &config.data_dir).await?;
        Ok(Self {
            public,
            ops,
            public_url,
            role: config.role,
            auth,
            policy,
            backend,
            events,
            listeners,
            grace: Duration::from_secs(config.shutdown_grace_secs),
            trusted_proxies: TrustedProxies::parse(config.trusted_proxies.as_deref().unwrap_or_default())?,
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
        let app = rsp_http::router_for(
            AppState { auth: self.auth.clone(), policy: self.policy.clone() },
            surfaces(self.role),
        );
        let ops = rsp_http::ops_router(OpsState {
            auth: self.auth.clone(),
            policy: self.policy.clone(),
            render_metrics: Arc::new(move || {
                record_resident_memory();
                handle.render()
            }),
            draining: draining.clone(),
        });
        // Histogram samples wait in the recorder until drained, which a scrape does; a server nobody
        // scrapes (the one-command default) kept every request's samples: RSS grew ~8 MB per 370k requests.
        let upkeep = tokio::spawn(async move {
            let mut every = tokio::time::interval(METRICS_UPKEEP_EVERY);
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        tracing::info!(
            public = %self.public_url,
            ops = %self.ops.local_addr()?,
            role = ?self.role,
            database = self.backend.engine_name(),
            "serving"
        );
        // The peer address reaches handlers (the login throttle keys on it), resolved through the trusted
        // proxies' X-Forwarded-For.
        let app = ResolveClientAddress::new(app, self.trusted_proxies.clone())
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
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
        self.policy.flush_denied_audit();
        self.events.stop().await;
        upkeep.abort();
        for listener in self.listeners {
            listener.abort();
        }
        self.backend.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The public routes a role serves. Every role serves the admin API but the worker, which serves nothing.
fn surfaces(role: Role) -> Surfaces {
    match role {
        Role::All => Surfaces::ALL,
        Role::Auth => Surfaces { decision: false, ..Surfaces::ALL },
        Role::Policy => Surfaces { oauth: false, ..Surfaces::ALL },
        Role::Worker => Surfaces::NONE,
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
