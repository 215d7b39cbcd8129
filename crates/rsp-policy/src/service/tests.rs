//! Replicas simulated in process: two services over one in-memory store, sharing one `LocalCache` (the
//! notice path) or each with its own (no channel: the recheck fallback).

use std::sync::Mutex as StdMutex;
use std::time::Duration;

use rsp_core::context::RequestContext;
use rsp_core::ports::PolicyGate;
use rsp_core::{
    ClientId, Event, KeyId, KeyStatus, ManualClock, SigningAlgorithm, StoredKey, Tenant, TenantId, UnixTime,
};
use rsp_store::SqliteStore;
use serde_json::json;
use tokio::time::Instant;

use super::*;

const ALLOW_ALL: &str = r#"@id("all") permit(principal, action, resource);"#;
const FORBID_ALL: &str = r#"@id("nobody") forbid(principal, action, resource);"#;
const OWNERS: &str = r#"@id("owners") permit(principal, action, resource) when { resource.owner == principal };"#;
/// An hour: long enough that only a notice can change what a replica decides during a test.
const NEVER: Duration = Duration::from_secs(3600);
/// The bound of every wait for something asynchronous to land.
const PATIENCE: Duration = Duration::from_secs(10);

fn document(policies: &str) -> PolicyDocument {
    PolicyDocument { policies: policies.to_owned(), ..PolicyDocument::default() }
}

fn request(principal: &str, resource: &str) -> DecisionRequest {
    DecisionRequest::from_json(json!({
        "principal": format!("User::\"{principal}\""),
        "action": "Action::\"read\"",
        "resource": format!("Doc::\"{resource}\""),
    }))
    .unwrap()
}

fn doc_owned_by(id: &str, owner: &str) -> Value {
    json!([{"uid": {"type": "Doc", "id": id}, "attrs": {"owner": {"__entity": {"type": "User", "id": owner}}}, "parents": []}])
}

async fn store_with_tenant() -> (Arc<dyn Store>, TenantId) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
    let id = TenantId::parse("acme").unwrap();
    create_tenant(store.as_ref(), &id).await;
    (store, id)
}

async fn create_tenant(store: &dyn Store, id: &TenantId) {
    let now = UnixTime(1_700_000_000);
    let tenant = Tenant {
        id: id.clone(),
        name: "Acme".into(),
        signing_alg: SigningAlgorithm::ES256,
        created_at: now,
        updated_at: now,
    };
    let key = StoredKey {
        tenant_id: id.clone(),
        kid: KeyId::parse("k1").unwrap(),
        alg: SigningAlgorithm::ES256,
        status: KeyStatus::Active,
        created_at: now,
        retired_at: None,
        publish_until: None,
        max_token_ttl_secs: 300,
        public_jwk: "{}".into(),
        sealed_private_key: vec![0; 16],
    };
    store.create_tenant(&tenant, &key, &[]).await.unwrap();
}

fn service(store: &Arc<dyn Store>, cache: &Arc<dyn Cache>, recheck: Duration) -> Arc<PolicyService> {
    let clock = Arc::new(ManualClock::new(UnixTime(1_700_000_000)));
    let service = Arc::new(
        PolicyService::new(Arc::clone(store), clock, 1000).with_cache(Arc::clone(cache)).with_snapshot_recheck(recheck),
    );
    service.spawn_invalidation_listener();
    service
}

fn local_cache() -> Arc<dyn Cache> {
    Arc::new(LocalCache::new(&CacheConfig::default()).unwrap())
}

/// Two replicas: A with the default recheck, B with `b_recheck`; one cache port between them or none.
async fn replicas(shared_cache: bool, b_recheck: Duration) -> (Arc<PolicyService>, Arc<PolicyService>, TenantId) {
    let (store, tenant) = store_with_tenant().await;
    let cache = local_cache();
    let a = service(&store, &cache, DEFAULT_SNAPSHOT_RECHECK);
    let b = service(&store, &if shared_cache { cache } else { local_cache() }, b_recheck);
    (a, b, tenant)
}

/// Polls `service` until it decides `request` as `allowed`, failing after [`PATIENCE`].
async fn until_decided(service: &PolicyService, tenant: &TenantId, request: &DecisionRequest, allowed: bool) {
    let deadline = Instant::now() + PATIENCE;
    while service.authorize(tenant, request).await.unwrap().allowed != allowed {
        assert!(Instant::now() < deadline, "the replica never decided allowed = {allowed}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_policy_change_reaches_the_other_replica_through_the_notice() {
    let (a, b, tenant) = replicas(true, NEVER).await;
    let read = request("alice", "d1");
    a.put_policies(&tenant, &document(ALLOW_ALL), "admin").await.unwrap();
    assert!(b.authorize(&tenant, &read).await.unwrap().allowed);

    a.put_policies(&tenant, &document(FORBID_ALL), "admin").await.unwrap();
    assert!(!a.authorize(&tenant, &read).await.unwrap().allowed, "the writer reads its own write");
    until_decided(&b, &tenant, &read, false).await;
    assert_eq!(b.snapshot(&tenant).await.unwrap().policy_version(), 2);

    let restored = a.rollback(&tenant, 1, "admin").await.unwrap();
    until_decided(&b, &tenant, &read, true).await;
    assert_eq!(b.snapshot(&tenant).await.unwrap().policy_version(), restored);
}

#[tokio::test]
async fn an_entity_change_reaches_the_other_replica_through_the_notice() {
    let (a, b, tenant) = replicas(true, NEVER).await;
    let read = request("alice", "d1");
    a.put_policies(&tenant, &document(OWNERS), "admin").await.unwrap();
    a.put_entities(&tenant, doc_owned_by("d1", "alice"), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, true).await;

    a.put_entities(&tenant, doc_owned_by("d1", "bob"), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, false).await;
    assert!(b.authorize(&tenant, &request("bob", "d1")).await.unwrap().allowed);

    a.delete_entities(&tenant, &[EntityRef::new("Doc", "d1").unwrap()], "admin").await.unwrap();
    until_decided(&b, &tenant, &request("bob", "d1"), false).await;
}

#[tokio::test]
async fn without_notices_or_a_due_recheck_a_replica_keeps_its_snapshot() {
    // The control for the two tests above: what changed B there was the notice.
    let (a, b, tenant) = replicas(false, NEVER).await;
    let read = request("alice", "d1");
    a.put_policies(&tenant, &document(ALLOW_ALL), "admin").await.unwrap();
    assert!(b.authorize(&tenant, &read).await.unwrap().allowed);
    a.put_policies(&tenant, &document(FORBID_ALL), "admin").await.unwrap();
    assert!(b.authorize(&tenant, &read).await.unwrap().allowed);
    assert_eq!(b.snapshot(&tenant).await.unwrap().policy_version(), 1);
}

#[tokio::test]
async fn without_a_channel_a_replica_converges_after_the_recheck_interval() {
    let (a, b, tenant) = replicas(false, Duration::from_millis(50)).await;
    let read = request("alice", "d1");
    a.put_policies(&tenant, &document(OWNERS), "admin").await.unwrap();
    a.put_entities(&tenant, doc_owned_by("d1", "alice"), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, true).await;

    a.put_policies(&tenant, &document(&format!("{OWNERS}\n{FORBID_ALL}")), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, false).await;
    a.put_policies(&tenant, &document(OWNERS), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, true).await;
    a.put_entities(&tenant, doc_owned_by("d1", "bob"), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, false).await;
    let snapshot = b.snapshot(&tenant).await.unwrap();
    assert_eq!((snapshot.policy_version(), snapshot.entity_version()), (3, 2));
}

#[tokio::test]
async fn a_quiet_tenants_first_decision_reads_the_store_before_answering() {
    let recheck = Duration::from_millis(20);
    let (a, b, tenant) = replicas(false, recheck).await;
    let read = request("alice", "d1");
    a.put_policies(&tenant, &document(ALLOW_ALL), "admin").await.unwrap();
    assert!(b.authorize(&tenant, &read).await.unwrap().allowed);
    a.put_policies(&tenant, &document(FORBID_ALL), "admin").await.unwrap();
    // Time only moves forward: after two intervals B's snapshot is expired, whatever the scheduling.
    tokio::time::sleep(recheck * 2).await;
    assert!(!b.authorize(&tenant, &read).await.unwrap().allowed, "the very first decision is current");
}

#[tokio::test]
async fn a_write_on_a_stale_replica_does_not_lose_the_other_replicas_write() {
    let (store, tenant) = store_with_tenant().await;
    let clock = Arc::new(ManualClock::new(UnixTime(1_700_000_000)));
    let a = service(&store, &local_cache(), NEVER);
    // No listener on B, so only the write path itself can notice that B's entities were stale.
    let b = PolicyService::new(Arc::clone(&store), clock, 1000).with_snapshot_recheck(NEVER);
    a.put_policies(&tenant, &document(OWNERS), "admin").await.unwrap();
    b.put_entities(&tenant, doc_owned_by("d1", "alice"), "admin").await.unwrap();
    // A writes d2; B, which never heard of it, then writes d3 on top of its own stale entities.
    a.put_entities(&tenant, doc_owned_by("d2", "alice"), "admin").await.unwrap();
    b.put_entities(&tenant, doc_owned_by("d3", "alice"), "admin").await.unwrap();
    for doc in ["d1", "d2", "d3"] {
        assert!(b.authorize(&tenant, &request("alice", doc)).await.unwrap().allowed, "{doc}");
    }
    assert_eq!(b.snapshot(&tenant).await.unwrap().entity_version(), 3);
}

#[tokio::test]
async fn a_tenant_removed_on_one_replica_is_dropped_on_the_other() {
    let (a, b, tenant) = replicas(true, NEVER).await;
    a.put_policies(&tenant, &document(ALLOW_ALL), "admin").await.unwrap();
    assert!(b.authorize(&tenant, &request("alice", "d1")).await.unwrap().allowed);
    a.store.delete_tenant(&tenant, &[]).await.unwrap();
    a.forget_tenant(&tenant).await;
    let deadline = Instant::now() + PATIENCE;
    while !matches!(b.authorize(&tenant, &request("alice", "d1")).await, Err(PolicyServiceError::UnknownTenant)) {
        assert!(Instant::now() < deadline, "B still decides for a removed tenant");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test]
async fn a_replica_without_a_channel_notices_a_re_created_tenant() {
    let (a, b, tenant) = replicas(false, Duration::from_millis(50)).await;
    let read = request("alice", "d1");
    a.put_policies(&tenant, &document(ALLOW_ALL), "admin").await.unwrap();
    a.put_policies(&tenant, &document(ALLOW_ALL), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, true).await;
    assert_eq!(b.snapshot(&tenant).await.unwrap().policy_version(), 2);

    // Deleted and created again: its versions start over, lower than what B holds.
    a.store.delete_tenant(&tenant, &[]).await.unwrap();
    create_tenant(a.store.as_ref(), &tenant).await;
    a.put_policies(&tenant, &document(FORBID_ALL), "admin").await.unwrap();
    until_decided(&b, &tenant, &read, false).await;
    assert_eq!(b.snapshot(&tenant).await.unwrap().policy_version(), 1);
}

#[tokio::test]
async fn notices_drop_the_tenants_they_name() {
    let (store, acme) = store_with_tenant().await;
    let beta = TenantId::parse("beta").unwrap();
    let snapshots = Snapshots::new(store, 10);
    let installed =
        |snapshots: &Snapshots| snapshots.engine().tenants().iter().map(|t| t.as_str().to_owned()).collect::<Vec<_>>();
    let install = |snapshots: &Snapshots| {
        for tenant in [&acme, &beta] {
            snapshots.engine().install_policies(tenant, crate::CompiledPolicies::empty(), 1).unwrap();
        }
    };
    let cases = [
        (Invalidation::key(CacheKind::PolicySnapshot, "acme"), vec!["beta"]),
        (Invalidation::prefix(CacheKind::PolicySnapshot, "acme/"), vec!["beta"]),
        (Invalidation::prefix(CacheKind::PolicySnapshot, "a"), vec![]),
        (Invalidation::Kind { kind: CacheKind::PolicySnapshot }, vec![]),
        (Invalidation::All, vec![]),
        (Invalidation::key(CacheKind::PolicySnapshot, "no such tenant!"), vec!["acme", "beta"]),
        (Invalidation::key(CacheKind::SigningKeys, "acme"), vec!["acme", "beta"]),
        (Invalidation::Kind { kind: CacheKind::Decision }, vec!["acme", "beta"]),
    ];
    for (invalidation, left) in cases {
        snapshots.forget_all();
        install(&snapshots);
        snapshots.apply(&invalidation);
        assert_eq!(installed(&snapshots), left, "{invalidation:?}");
    }
}

#[tokio::test]
async fn the_listener_ends_when_the_service_is_dropped() {
    let (store, _) = store_with_tenant().await;
    let cache = local_cache();
    let service = service(&store, &cache, NEVER);
    let listener = service.spawn_invalidation_listener();
    drop(service);
    tokio::time::timeout(PATIENCE, listener).await.unwrap().unwrap();
}

/// An event sink that keeps what it is given.
#[derive(Default)]
struct Recorder(StdMutex<Vec<Event>>);

#[async_trait::async_trait]
impl EventSink for Recorder {
    async fn emit(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }

    fn try_emit(&self, event: Event) -> bool {
        self.0.lock().unwrap().push(event);
        true
    }
}

impl Recorder {
    /// The events once there are `count` of them (the sink is fed by a task of its own).
    async fn events(&self, count: usize) -> Vec<Event> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let events = self.0.lock().unwrap().clone();
            if events.len() >= count {
                return events;
            }
            assert!(Instant::now() < deadline, "{} events, expected {count}", events.len());
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

async fn audited(policies: &str) -> (Arc<PolicyService>, Arc<Recorder>, TenantId) {
    let (store, tenant) = store_with_tenant().await;
    let recorder = Arc::new(Recorder::default());
    let clock = Arc::new(ManualClock::new(UnixTime(1_700_000_000)));
    let service = PolicyService::new(store, clock, 1000).with_events(Arc::clone(&recorder) as Arc<dyn EventSink>);
    service.put_policies(&tenant, &document(policies), "admin").await.unwrap();
    (Arc::new(service), recorder, tenant)
}

const ALICE_ONLY: &str =
    r#"@id("alice-reads") permit(principal == User::"alice", action == Action::"read", resource);"#;

#[tokio::test]
async fn denied_decisions_become_events_with_the_callers_identity() {
    let (service, recorder, tenant) = audited(ALICE_ONLY).await;
    let context = RequestContext::new(Some("req-7".into()), None);
    context.set_actor("pep-client");
    let decision = context.scope(service.authorize(&tenant, &request("mallory", "d1"))).await.unwrap();
    assert!(!decision.allowed);

    let events = recorder.events(1).await;
    let event = &events[0];
    assert_eq!((event.kind.clone(), event.priority), (EventKind::DECISION_DENIED, Priority::Low));
    assert_eq!((event.actor.as_str(), event.request_id.as_deref()), ("pep-client", Some("req-7")));
    assert_eq!(event.tenant, tenant);
    assert_eq!(event.subject.as_deref(), Some(r#"User::"mallory""#));
    assert_eq!(event.data["action"], r#"Action::"read""#);
    assert_eq!(event.data["resource"], r#"Doc::"d1""#);
    assert_eq!(event.data["policies"], json!([]));
    assert_eq!(event.data["action_named"], true);
}

#[tokio::test]
async fn repeats_of_a_denial_are_counted_and_recorded_as_one_event_per_window() {
    let (service, recorder, tenant) = audited(ALICE_ONLY).await;
    let context = RequestContext::new(Some("req-1".into()), None);
    context.set_actor("pep-client");
    let d1 = request("mallory", "d1");
    let deny = || context.clone().scope(service.authorize(&tenant, &d1));
    for _ in 0..5 {
        assert!(!deny().await.unwrap().allowed);
    }
    // The same request from another caller is another record.
    assert!(!service.authorize(&tenant, &request("mallory", "d1")).await.unwrap().allowed);
    assert_eq!(recorder.events(2).await.len(), 2, "repeats are counted, not recorded");

    service.flush_denied_audit();
    let events = recorder.events(3).await;
    assert_eq!(events.len(), 3, "one event for the repeats of the first caller, none for the other");
    let (first, repeats) = (&events[0], &events[2]);
    assert_eq!(first.request_id.as_deref(), Some("req-1"));
    assert!(first.data.get("repeats").is_none());
    assert_eq!(repeats.data["repeats"], 4);
    assert_eq!(repeats.data["repeat_of"], first.id.as_str());
    assert_ne!(repeats.id, first.id);
    assert_eq!((repeats.kind.clone(), repeats.tenant.clone()), (EventKind::DECISION_DENIED, tenant.clone()));
    assert_eq!(repeats.actor, "pep-client");
    assert_eq!(repeats.subject, first.subject);
    assert_eq!((repeats.request_id.as_deref(), repeats.trace_id.as_deref()), (None, None), "it stands for many");
    let mut counted = repeats.data.clone();
    let fields = counted.as_object_mut().unwrap();
    fields.remove("repeats");
    fields.remove("repeat_of");
    assert_eq!(counted, first.data, "the first record's fields, rebuilt from the counted denial");
    assert_eq!((repeats.priority, repeats.subject.as_deref()), (first.priority, Some("User::\"mallory\"")));

    // A new window: a denial that goes on repeating stays counted, with the same first record.
    assert!(!deny().await.unwrap().allowed);
    service.flush_denied_audit();
    let events = recorder.events(4).await;
    assert_eq!(events.len(), 4);
    assert_eq!((&events[3].data["repeats"], &events[3].data["repeat_of"]), (&json!(1), &json!(first.id.as_str())));

    // A window without a repeat ends the run (nothing is recorded for it): the next one is a first again.
    service.flush_denied_audit();
    assert!(!deny().await.unwrap().allowed);
    let events = recorder.events(5).await;
    assert_eq!(events.len(), 5);
    assert_eq!(events[4].request_id.as_deref(), Some("req-1"));
    assert!(events[4].data.get("repeats").is_none());
    assert_ne!(events[4].id, first.id);
}

#[tokio::test]
async fn repeat_counts_are_recorded_when_the_window_ends_without_more_denials() {
    let (service, recorder, tenant) = audited(ALICE_ONLY).await;
    let repeats = service.spawn_denied_audit_repeats();
    for _ in 0..3 {
        service.authorize(&tenant, &request("mallory", "d1")).await.unwrap();
    }
    let events = recorder.events(2).await;
    repeats.abort();
    assert_eq!(events[1].data["repeats"], 2);
    assert_eq!((events[0].actor.as_str(), events[1].actor.as_str()), ("system", "system"), "no request, no caller");
}

#[tokio::test]
async fn beyond_the_counted_limit_distinct_denials_are_each_recorded() {
    let (service, recorder, tenant) = audited(ALICE_ONLY).await;
    let limit = 4096;
    for i in 0..=limit {
        service.authorize(&tenant, &request("mallory", &format!("d{i}"))).await.unwrap();
    }
    // The one past the limit is not counted, so its repeat is recorded; the first one's is counted.
    service.authorize(&tenant, &request("mallory", &format!("d{limit}"))).await.unwrap();
    service.authorize(&tenant, &request("mallory", "d0")).await.unwrap();
    assert_eq!(recorder.events(limit + 2).await.len(), limit + 2);
    service.flush_denied_audit();
    let events = recorder.events(limit + 3).await;
    assert_eq!(events.len(), limit + 3);
    assert_eq!(
        (events[limit + 2].data["resource"].as_str(), events[limit + 2].data["repeats"].as_u64()),
        (Some(r#"Doc::"d0""#), Some(1))
    );
}

#[tokio::test]
async fn allowed_decisions_and_a_zero_rate_record_nothing() {
    let (service, recorder, tenant) = audited(ALICE_ONLY).await;
    assert!(service.authorize(&tenant, &request("alice", "allowed")).await.unwrap().allowed);
    service.set_denied_audit_sample_rate(0.0).unwrap();
    assert!(!service.authorize(&tenant, &request("mallory", "unsampled")).await.unwrap().allowed);
    service.set_denied_audit_sample_rate(1.0).unwrap();
    // A marker: events arrive in order, so once it is there, anything recorded before it is too.
    assert!(!service.authorize(&tenant, &request("mallory", "marker")).await.unwrap().allowed);
    let events = recorder.events(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["resource"], r#"Doc::"marker""#);
}

#[tokio::test]
async fn a_batch_records_each_denial_and_a_forbid_names_its_policy() {
    let (service, recorder, tenant) =
        audited(&format!("{ALICE_ONLY}\n@id(\"no-secrets\") forbid(principal, action, resource == Doc::\"secret\");"))
            .await;
    let batch = [
        Ok(request("alice", "d1")),
        Ok(request("bob", "d1")),
        Err(RequestError { field: "principal", message: "malformed".into() }),
        Ok(request("alice", "secret")),
    ];
    let decisions = service.authorize_batch(&tenant, &batch).await.unwrap();
    assert_eq!(
        decisions.iter().map(|d| d.as_ref().map(|d| d.allowed).ok()).collect::<Vec<_>>(),
        [Some(true), Some(false), None, Some(false)]
    );
    let events = recorder.events(2).await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].subject.as_deref(), Some(r#"User::"bob""#));
    assert_eq!(events[1].data["policies"], json!(["no-secrets"]));
}

#[tokio::test]
async fn policy_gate_denials_are_not_decision_events() {
    let policies =
        format!("{ALICE_ONLY}\n@id(\"no-scopes\") forbid(principal, action == Action::\"RequestScope\", resource);");
    let (service, recorder, tenant) = audited(&policies).await;
    let client = ClientId::parse("c1").unwrap();
    assert_eq!(service.permits_scope(&tenant, &client, "read", "https://api").await.unwrap(), Some(false));
    assert!(!service.authorize(&tenant, &request("mallory", "marker")).await.unwrap().allowed);
    let events = recorder.events(1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["resource"], r#"Doc::"marker""#);
}

#[tokio::test]
async fn sign_in_is_governed_only_once_named_and_sees_the_authentication_methods() {
    let (service, _, tenant) = audited(ALICE_ONLY).await;
    let (app, pwd) = (ClientId::parse("app").unwrap(), ["pwd".to_owned()]);
    assert_eq!(service.permits_sign_in(&tenant, "u1", &app, &pwd).await.unwrap(), None, "not named: not governed");
    let policies = format!(
        "{ALICE_ONLY}\n@id(\"mfa\") permit(principal, action == Action::\"SignIn\", resource) \
         when {{ context.amr.contains(\"otp\") }};"
    );
    let (service, _, tenant) = audited(&policies).await;
    assert_eq!(service.permits_sign_in(&tenant, "u1", &app, &pwd).await.unwrap(), Some(false));
    let with_otp = ["pwd".to_owned(), "otp".to_owned()];
    assert_eq!(service.permits_sign_in(&tenant, "u1", &app, &with_otp).await.unwrap(), Some(true));
}

#[tokio::test]
async fn sample_rates_outside_zero_to_one_are_refused() {
    let (service, _, _) = audited(ALLOW_ALL).await;
    for rate in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(service.set_denied_audit_sample_rate(rate).is_err(), "{rate}");
    }
    assert!(service.set_denied_audit_sample_rate(0.25).is_ok());
}

#[tokio::test]
async fn a_partial_rate_records_about_that_share() {
    let (service, recorder, tenant) = audited(ALICE_ONLY).await;
    service.set_denied_audit_sample_rate(0.25).unwrap();
    for i in 0..400 {
        service.authorize(&tenant, &request("mallory", &format!("d{i}"))).await.unwrap();
    }
    service.set_denied_audit_sample_rate(1.0).unwrap();
    service.authorize(&tenant, &request("mallory", "marker")).await.unwrap();
    let deadline = Instant::now() + PATIENCE;
    let sampled = loop {
        let events = recorder.0.lock().unwrap().clone();
        if events.last().is_some_and(|e| e.data["resource"] == r#"Doc::"marker""#) {
            break events.len() - 1;
        }
        assert!(Instant::now() < deadline, "the marker never arrived");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // Binomial(400, 0.25): mean 100, standard deviation about 8.7; this window is over 5 deviations wide.
    assert!((55..=145).contains(&sampled), "{sampled} of 400 sampled at 0.25");
}

/// The decision cache switch (`policy_decision_cache`): off, a repeated decision is evaluated again
/// (a miss each time, never a hit); on, the repeat is a hit. Neither serves a decision older than a write.
#[tokio::test]
async fn with_the_decision_cache_off_every_decision_is_evaluated_and_neither_setting_is_stale() {
    for (capacity, hits_on_repeat) in [(0, 0), (1000, 1)] {
        let (store, tenant) = store_with_tenant().await;
        let clock = Arc::new(ManualClock::new(UnixTime(1_700_000_000)));
        let service = Arc::new(PolicyService::new(store, clock, capacity).with_cache(local_cache()));
        service.spawn_invalidation_listener();
        service.put_policies(&tenant, &document(ALLOW_ALL), "admin").await.unwrap();

        let first = service.authorize(&tenant, &request("ada", "d1")).await.unwrap();
        let repeat = service.authorize(&tenant, &request("ada", "d1")).await.unwrap();
        assert!(first.allowed && repeat.allowed);
        let stats = service.cache_stats();
        assert_eq!((stats.hits, stats.misses), (hits_on_repeat, 2 - hits_on_repeat), "capacity {capacity}");

        service.put_policies(&tenant, &document(FORBID_ALL), "admin").await.unwrap();
        let after = service.authorize(&tenant, &request("ada", "d1")).await.unwrap();
        assert!(!after.allowed, "capacity {capacity}: the write is seen at once");
        assert_eq!(service.cache_stats().hits, hits_on_repeat, "capacity {capacity}: the new version missed");
    }
}
