//! Decisions on the synthetic Cedar workload (100 policies, ~1,000 entities; `tests/fixtures/`): one
//! decision through the engine, a batch of 100 on one snapshot, a decision-cache hit, and the same hit
//! through `PolicyService::authorize` (installed-snapshot lookup, recheck schedule, audit check).
//! Run with `cargo bench -p rsp-policy --bench decisions`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "benchmark set-up fails loudly")]

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsp_core::{KeyId, KeyStatus, ManualClock, SigningAlgorithm, Store, StoredKey, Tenant, TenantId, UnixTime};
use rsp_policy::{
    DecisionCache, DecisionRequest, EntityStore, PolicyDocument, PolicyEngine, PolicyService, authorize,
    authorize_batch, validate,
};
use serde_json::Value;

fn bench(c: &mut Criterion) {
    let policies: Vec<Value> = serde_json::from_str(include_str!("../tests/fixtures/policies.json")).unwrap();
    let text: String = policies
        .iter()
        .map(|p| format!("@id(\"{}\")\n{}\n", p["id"].as_str().unwrap(), p["content"].as_str().unwrap()))
        .collect();
    let entities: Value = serde_json::from_str(include_str!("../tests/fixtures/data.json")).unwrap();
    let requests: Vec<Value> = serde_json::from_str(include_str!("../tests/fixtures/requests.json")).unwrap();
    let requests: Vec<DecisionRequest> = requests.into_iter().map(|r| DecisionRequest::from_json(r).unwrap()).collect();

    let tenant = TenantId::default_tenant();
    let engine = PolicyEngine::new();
    let document = PolicyDocument { policies: text, ..PolicyDocument::default() };
    engine.install_policies(&tenant, validate(&document).unwrap(), 1).unwrap();
    engine.install_entities(&tenant, EntityStore::from_json(entities.clone(), None).unwrap(), 1).unwrap();
    let snapshot = engine.snapshot(&tenant).unwrap();

    let mut group = c.benchmark_group("workload");
    group.throughput(Throughput::Elements(1));
    let mut next = 0usize;
    group.bench_function("single decision", |b| {
        b.iter(|| {
            next = (next + 1) % requests.len();
            authorize(&snapshot, &requests[next]).unwrap()
        })
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch of 100", |b| b.iter(|| authorize_batch(&snapshot, &requests[..100])));
    let cache = DecisionCache::new(10_000);
    cache.authorize(&snapshot, &requests[0]).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("decision cache hit", |b| b.iter(|| cache.authorize(&snapshot, &requests[0]).unwrap()));
    service_hit(&mut group, &document, entities, &requests[0]);
    group.finish();
}

/// A cache hit through the service, over an in-memory store holding the same workload. Timed inside the
/// runtime (`iter_custom`) so that entering it is not part of the figure.
fn service_hit(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    document: &PolicyDocument,
    entities: Value,
    request: &DecisionRequest,
) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    let service = runtime.block_on(async {
        let store: Arc<dyn Store> = Arc::new(rsp_store::SqliteStore::in_memory().await.unwrap());
        let now = UnixTime(1_700_000_000);
        let record = Tenant {
            id: tenant.clone(),
            name: "bench".into(),
            signing_alg: SigningAlgorithm::ES256,
            created_at: now,
            updated_at: now,
        };
        let key = StoredKey {
            tenant_id: tenant.clone(),
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
        store.create_tenant(&record, &key, &[]).await.unwrap();
        let service = PolicyService::new(store, Arc::new(ManualClock::new(now)), 10_000);
        service.put_policies(&tenant, document, "bench").await.unwrap();
        service.put_entities(&tenant, entities, "bench").await.unwrap();
        service.authorize(&tenant, request).await.unwrap();
        service
    });
    group.bench_function("service decision (cache hit)", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(service.authorize(&tenant, request).await.unwrap());
                }
                start.elapsed()
            })
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
