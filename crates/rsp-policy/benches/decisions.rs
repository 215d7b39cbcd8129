//! Decisions on the synthetic Cedar workload (100 policies, ~1,000 entities; `tests/fixtures/`): one
//! decision through the engine, a batch of 100 on one snapshot, and a decision-cache hit.
//! Run with `cargo bench -p rsp-policy --bench decisions`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "benchmark set-up fails loudly")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rsp_core::TenantId;
use rsp_policy::{
    DecisionCache, DecisionRequest, EntityStore, PolicyDocument, PolicyEngine, authorize, authorize_batch, validate,
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
    engine.install_entities(&tenant, EntityStore::from_json(entities, None).unwrap(), 1).unwrap();
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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
