//! `rsp loadtest` against the real server: set-up through the admin API, load, clean-up, a sane report.

use clap::Parser;
use rsp::cli::args::{Cli, Command};
use rsp::loadtest::{LoadtestArgs, Report};
use rsp_testkit::{TestApp, spawn_app};

async fn load(app: &TestApp, scenario: &str) -> Report {
    load_with(app, scenario, &[]).await
}

async fn load_with(app: &TestApp, scenario: &str, extra: &[&str]) -> Report {
    rsp::loadtest::run(args(app, scenario, extra)).await.unwrap()
}

fn args(app: &TestApp, scenario: &str, extra: &[&str]) -> LoadtestArgs {
    let data_dir = app.config.data_dir.to_str().unwrap();
    // A login waits for an Argon2 hash, which runs at the lowest priority and rests while request threads
    // are busy (here: the load generator and every other test of the binary): give it time for a few.
    let duration = if scenario == "login" { "2s" } else { "800ms" };
    let cli = Cli::try_parse_from(
        [
            "rsp",
            "loadtest",
            "--scenario",
            scenario,
            "--connections",
            "2",
            "--warmup",
            "200ms",
            "--duration",
            duration,
            "--server",
            &app.url,
            "--data-dir",
            data_dir,
        ]
        .iter()
        .chain(extra),
    )
    .unwrap();
    let Command::Loadtest(args) = cli.command else { panic!("not the loadtest command") };
    args
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

/// A login is Argon2-bound: a short run makes only a few, but each must go through the whole browser
/// flow (authorize, login page, POST) and be answered as expected: 303 for the right password, 401 for
/// the storm's wrong ones from ever-changing loopback addresses (a 429 would be an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_a_wrong_password_storm_run_clean() {
    let app = spawn_app().await;
    let report = load(&app, "login").await;
    assert_eq!(report.scenario, "login");
    assert_sane(&report);
    let storm = load_with(&app, "login", &["--wrong-password"]).await;
    assert_sane(&storm);
    let tenants = rsp_testkit::expect_status(app.admin_call(reqwest::Method::GET, "/tenants", None).await, 200).await;
    assert!(!tenants.to_string().contains("loadtest-"), "the set-up tenants are deleted: {tenants}");
}

#[tokio::test]
async fn wrong_password_is_refused_outside_the_login_scenario() {
    let app = spawn_app().await;
    let error = rsp::loadtest::run(args(&app, "client-credentials", &["--wrong-password"])).await.unwrap_err();
    assert!(error.to_string().contains("login scenario only"), "{error}");
}

/// The open loop sends exactly the scheduled requests (rate × window, counted by intended send time,
/// however late they leave), over HTTP/1.1 and over HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_loop_sends_what_its_schedule_says_over_both_http_versions() {
    let app = spawn_app().await;
    for extra in [&["--rate", "250"][..], &["--rate", "250", "--http2"][..]] {
        let report = load_with(&app, "introspect", extra).await;
        assert_sane(&report);
        assert_eq!(report.mode, "open-loop", "{report}");
        assert_eq!(report.http2, extra.contains(&"--http2"), "{report}");
        // 250/s over the 800 ms window: 200 requests intended in it.
        assert!((199..=201).contains(&report.requests), "{report}");
    }
}
