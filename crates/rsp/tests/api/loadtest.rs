//! `rsp loadtest` against the real server: set-up through the admin API, load, clean-up, a sane report.

use clap::Parser;
use rsp::cli::args::{Cli, Command};
use rsp::loadtest::Report;
use rsp_testkit::{TestApp, spawn_app};

async fn load(app: &TestApp, scenario: &str) -> Report {
    let data_dir = app.config.data_dir.to_str().unwrap();
    let cli = Cli::try_parse_from([
        "rsp",
        "loadtest",
        "--scenario",
        scenario,
        "--connections",
        "2",
        "--warmup",
        "200ms",
        "--duration",
        "800ms",
        "--server",
        &app.url,
        "--data-dir",
        data_dir,
    ])
    .unwrap();
    let Command::Loadtest(args) = cli.command else { panic!("not the loadtest command") };
    rsp::loadtest::run(args).await.unwrap()
}

fn assert_sane(report: &Report) {
    assert_eq!(report.errors, 0, "{report}");
    assert!(report.requests > 0, "{report}");
    assert!(report.requests_per_sec > 0.0, "{report}");
    let l = report.latency_ms;
    assert!(0.0 < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p99_9 && l.p99_9 <= l.max, "{report}");
    assert!(l.max < 5_000.0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_client_credentials_and_mixed_run_clean_and_leave_no_tenant_behind() {
    let app = spawn_app().await;
    for scenario in ["authorize", "client-credentials", "mixed"] {
        let report = load(&app, scenario).await;
        assert_eq!(report.scenario, scenario);
        assert!(report.target.starts_with(&app.url), "{report}");
        assert_sane(&report);
    }
    let tenants = rsp_testkit::expect_status(app.admin_call(reqwest::Method::GET, "/tenants", None).await, 200).await;
    assert!(!tenants.to_string().contains("loadtest-"), "the set-up tenants are deleted: {tenants}");
}
