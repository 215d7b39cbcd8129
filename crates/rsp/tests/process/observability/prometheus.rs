//! A real Prometheus (the `prometheus` binary) scraping a running server with the project's rule file.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{drive_traffic, free_port, monitoring_dir, unavailable};
use crate::server::Server;

/// A `prometheus` child process, killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    fn api(&self, path: &str) -> Value {
        let body: Value = reqwest::blocking::get(format!("{}/api/v1/{path}", self.url)).unwrap().json().unwrap();
        assert_eq!(body["status"], "success", "{path}: {body}");
        body["data"].clone()
    }

    fn query(&self, promql: &str) -> Vec<Value> {
        let url = reqwest::Url::parse_with_params(&format!("{}/api/v1/query", self.url), [("query", promql)]).unwrap();
        let body: Value = reqwest::blocking::get(url).unwrap().json().unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// Polls until `check` returns a value, for at most `limit`.
    fn wait_for<T>(&self, what: &str, limit: Duration, mut check: impl FnMut(&Self) -> Option<T>) -> T {
        let started = Instant::now();
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            assert!(started.elapsed() < limit, "Prometheus: {what} within {limit:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn start_prometheus(dir: &Path, target: &str) -> Option<Prometheus> {
    let rules = monitoring_dir().join("rsp.rules.yml").canonicalize().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules:?}\n\
         scrape_configs:\n  - job_name: rsp\n    static_configs:\n      - targets: [{target:?}]\n"
    );
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let port = free_port();
    let spawned = Command::new("prometheus")
        .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn();
    match spawned {
        Ok(child) => Some(Prometheus { child, url: format!("http://127.0.0.1:{port}") }),
        Err(error) => {
            unavailable(&format!("prometheus cannot be started ({error}); bash scripts/install-tools.sh installs it"));
            None
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_the_server_and_evaluates_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let target = server.ops_url.trim_start_matches("http://").to_owned();
    let Some(prometheus) = start_prometheus(dir.path(), &target) else { return };
    drive_traffic(dir.path(), &dir.path().join("rsp-data"), &server.url, &server.url);

    // The target is up, and has been scraped a few times.
    prometheus.wait_for("the target is up", Duration::from_secs(30), |p| {
        let targets = p.api("targets");
        let active = targets["activeTargets"].as_array().cloned().unwrap_or_default();
        (active.len() == 1 && active[0]["health"] == "up").then_some(())
    });
    prometheus.wait_for("three scrapes", Duration::from_secs(30), |p| {
        let result = p.query(r#"count_over_time(up{job="rsp"}[1m])"#);
        result.first().and_then(|r| r["value"][1].as_str()?.parse::<f64>().ok()).filter(|n| *n >= 3.0)
    });

    // Both rule groups evaluate without error, and a recording rule has values by route.
    let rules = prometheus.wait_for("every rule evaluated", Duration::from_secs(30), |p| {
        let groups = p.api("rules")["groups"].as_array().cloned().unwrap_or_default();
        let rules: Vec<Value> =
            groups.iter().flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default()).collect();
        let evaluated = rules.iter().all(|r| r["lastEvaluation"].as_str().is_some_and(|t| !t.starts_with("0001")));
        (groups.len() == 2 && evaluated).then_some(rules)
    });
    for rule in &rules {
        assert_eq!(rule["health"], "ok", "rule {} does not evaluate: {rule}", rule["name"]);
    }
    let rate = prometheus.wait_for("rsp:http_requests:rate5m has values", Duration::from_secs(30), |p| {
        let result = p.query("rsp:http_requests:rate5m");
        (!result.is_empty()).then_some(result)
    });
    assert!(
        rate.iter().any(|r| r["metric"]["route"] == "/t/{tenant}/oauth2/token"),
        "no token route in the recording rule: {rate:?}"
    );

    // With the server gone, the target-down alert starts (pending until its `for` has passed).
    assert!(server.terminate(), "the server did not exit cleanly");
    prometheus.wait_for("RspTargetDown pending", Duration::from_secs(30), |p| {
        let alerts = p.api("alerts")["alerts"].as_array().cloned().unwrap_or_default();
        alerts.iter().find(|a| a["labels"]["alertname"] == "RspTargetDown" && a["state"] == "pending").cloned()
    });
}
