//! The port's conformance suite (`rsp_bus::conformance`), one test per check, each on a fresh prefix.

use rsp_bus::conformance;

use crate::support::fresh_bus;

macro_rules! conformance_test {
    ($($check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            let Some(test) = fresh_bus().await else { return };
            let outcome = conformance::$check(test.dyn_bus()).await;
            test.cleanup().await;
            if let Err(e) = outcome {
                panic!("{e}");
            }
        }
    )*};
}

conformance_test!(
    group_fan_out,
    load_sharing,
    priority_order,
    ack_is_final,
    reclaim_dead_consumer,
    retry_delay,
    claims,
    batches,
    dead_letter_after_max_attempts,
    duplicate_handled_once,
    stats_depth_and_pending,
);

/// `run_all` is what other adapters call: it must run every check against buses from the factory.
#[tokio::test]
async fn run_all_with_a_factory() {
    let Some(probe) = fresh_bus().await else { return };
    let prefixes = std::sync::Mutex::new(Vec::new());
    let outcome = conformance::run_all(|| async {
        let test = fresh_bus().await.unwrap();
        prefixes.lock().unwrap().push(test.bus.prefix().to_owned());
        test.dyn_bus()
    })
    .await;
    let used = prefixes.lock().unwrap().clone();
    for prefix in &used {
        crate::support::TestBus::connect(&probe.url, prefix).await.unwrap().cleanup().await;
    }
    outcome.unwrap();
    assert_eq!(used.len(), 11, "one fresh bus per check");
}
