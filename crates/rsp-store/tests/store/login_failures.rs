//! The login throttle's counters on both engines: they grow within the window and start over after it,
//! stay apart per tenant and key, count every one of many concurrent failures, and are cleared and
//! purged.

use std::sync::Arc;

use rsp_core::UnixTime;

use crate::engine::Engine;
use crate::fixtures::tenant_id;

on_both_engines!(counters_grow_within_the_window_and_start_over_after_it, concurrent_failures_all_count);

async fn counters_grow_within_the_window_and_start_over_after_it(engine: &Engine) {
    let store = &engine.store;
    let (acme, other) = (tenant_id("acme"), tenant_id("other"));
    let keys = ["pair:192.0.2.1:ada", "ip:192.0.2.1", "account:ada"];
    assert!(store.login_failures(&acme, &keys, UnixTime(0)).await.unwrap().is_empty());
    assert_eq!(store.record_login_failure(&acme, &keys, UnixTime(100), UnixTime(0)).await.unwrap(), [1, 1, 1]);
    let only_pair = &keys[..1];
    assert_eq!(store.record_login_failure(&acme, only_pair, UnixTime(110), UnixTime(10)).await.unwrap(), [2]);
    let live = store.login_failures(&acme, &keys, UnixTime(50)).await.unwrap();
    assert_eq!(
        live,
        [
            ("pair:192.0.2.1:ada".to_owned(), 2, UnixTime(110)),
            ("ip:192.0.2.1".to_owned(), 1, UnixTime(100)),
            ("account:ada".to_owned(), 1, UnixTime(100)),
        ]
    );
    assert!(store.login_failures(&other, &keys, UnixTime(0)).await.unwrap().is_empty(), "tenants stay apart");
    let after_window = store.login_failures(&acme, &keys, UnixTime(105)).await.unwrap();
    assert_eq!(after_window, [("pair:192.0.2.1:ada".to_owned(), 2, UnixTime(110))], "stale counters are empty");
    assert_eq!(
        store.record_login_failure(&acme, &keys, UnixTime(200), UnixTime(105)).await.unwrap(),
        [3, 1, 1],
        "a stale counter starts over at 1, a live one grows"
    );
    store.clear_login_failures(&acme, &keys[..2]).await.unwrap();
    assert_eq!(store.login_failures(&acme, &keys, UnixTime(0)).await.unwrap().len(), 1);
    store.record_login_failure(&other, &keys[..1], UnixTime(150), UnixTime(0)).await.unwrap();
    assert_eq!(store.purge_login_failures(UnixTime(150)).await.unwrap(), 1, "only the other tenant's stale one");
    assert_eq!(store.login_failures(&acme, &keys, UnixTime(0)).await.unwrap().len(), 1);
}

async fn concurrent_failures_all_count(engine: &Engine) {
    let store: Arc<_> = engine.store.clone();
    let acme = tenant_id("acme");
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let (store, acme) = (store.clone(), acme.clone());
            tokio::spawn(async move {
                store.record_login_failure(&acme, &["account:ada"], UnixTime(100 + n), UnixTime(0)).await.unwrap()
            })
        })
        .collect();
    let mut seen: Vec<u32> = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap());
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=8).collect::<Vec<u32>>(), "each failure counted once, none lost");
}
