//! The use cases against a real (in-memory SQLite) store and the real in-process cache adapter. Two
//! `AuthService`s share one store and one cache `Arc`, which stands for two replicas whose cache carries
//! invalidations between them: each runs its own invalidation listener, as a server does.
#![expect(clippy::unwrap_used, clippy::panic, reason = "the helpers outside #[test] functions fail loudly too")]

mod cache;
mod code_flow;
mod events;
mod flow;
mod tokens;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rsp_cache::{CacheConfig, LocalCache};
use rsp_core::bus::EventSink;
use rsp_core::cache::Cache;
use rsp_core::{Client, Event, ManualClock, Secret, TenantId, UnixTime};
use rsp_oauth::admin::{ClientSettings, NewTenant};
use rsp_oauth::crypto::MasterKey;
use rsp_oauth::{AuthService, ClientCredentials, FormParams, Issuers, TokenSettings};
use rsp_store::SqliteStore;

/// An event sink that keeps what it is sent.
#[derive(Debug, Default)]
pub struct Recorder(Mutex<Vec<Event>>);

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventSink for Recorder {
    async fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }

    fn try_emit(&self, event: Event) -> bool {
        self.0.lock().unwrap().push(event);
        true
    }
}

/// Two replicas over one store and one cache, a tenant and one confidential client.
#[derive(Debug)]
pub struct Replicas {
    pub a: Arc<AuthService>,
    pub b: Arc<AuthService>,
    pub events: Arc<Recorder>,
    pub tenant: TenantId,
    pub client: Client,
    pub secret: Secret,
    pub clock: Arc<ManualClock>,
}

impl Replicas {
    pub async fn start(client_scope: &str, settings: TokenSettings) -> Self {
        Self::start_with(client_scope, settings, true).await
    }

    /// As [`Self::start`]; with `shared_cache` false each replica has a cache of its own, so no
    /// invalidation notice crosses between them (a deployment without Redis).
    pub async fn start_with(client_scope: &str, settings: TokenSettings, shared_cache: bool) -> Self {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let clock = Arc::new(ManualClock::new(UnixTime(1_800_000_000)));
        let master_key = MasterKey::generate();
        let shared: Arc<dyn Cache> = Arc::new(LocalCache::new(&CacheConfig::default()).unwrap());
        let events = Arc::new(Recorder::default());
        let replica = || {
            let cache: Arc<dyn Cache> =
                if shared_cache { shared.clone() } else { Arc::new(LocalCache::new(&CacheConfig::default()).unwrap()) };
            let service = AuthService::new(
                store.clone(),
                clock.clone(),
                &master_key,
                Issuers::new("https://id.example.com"),
                settings.clone(),
            )
            .with_cache(cache.clone())
            .with_events(events.clone());
            let service = Arc::new(service);
            service.spawn_invalidation_listener();
            service
        };
        let (a, b) = (replica(), replica());
        a.create_tenant(NewTenant { id: "acme".into(), name: "Acme".into(), signing_alg: None }).await.unwrap();
        let client_settings = ClientSettings {
            name: Some("svc".into()),
            scope: Some(client_scope.into()),
            audiences: Some(vec!["https://api.example.com".into()]),
            ..Default::default()
        };
        let (client, secret) = a.create_client("acme", client_settings).await.unwrap();
        Self { a, b, events, tenant: TenantId::parse("acme").unwrap(), client, secret: secret.unwrap(), clock }
    }

    pub fn credentials(&self) -> ClientCredentials {
        ClientCredentials::Basic {
            client_id: self.client.client_id.to_string(),
            secret: Secret::new(self.secret.expose().to_owned()),
        }
    }

    /// A client_credentials token request with `scope`.
    pub fn token_params(scope: &str) -> FormParams {
        FormParams::from_pairs(vec![("grant_type".into(), "client_credentials".into()), ("scope".into(), scope.into())])
            .unwrap()
    }

    /// A token from replica `on` with `scope`.
    pub async fn token(&self, on: &AuthService, scope: &str) -> String {
        let (response, _) = on.token(&self.tenant, &self.credentials(), &Self::token_params(scope)).await.unwrap();
        response.access_token
    }
}

/// Waits until `check` holds, for at most two seconds: the time an invalidation notice takes to reach a
/// listener task is a scheduling delay, not something to assert a figure on.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..2000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("{what} did not happen within two seconds");
}
