//! The monitoring files under `deploy/kubernetes/monitoring` against the real binary: every metric the
//! Grafana dashboard or the Prometheus rules name must be on a live server's `/metrics` (with the labels
//! they select on), and a real Prometheus must scrape the server and evaluate the rules.
//!
//! Metrics of the policy client (`rsp_client_*`) exist only in `--role auth`, which calls the policy
//! service over HTTP, so the drift test also runs `--role policy` and `--role auth` over a fresh
//! PostgreSQL schema. Without PostgreSQL (or `psql`), or without `prometheus`, those parts are skipped
//! with the reason, except under `CI=true`, where they fail.

mod prometheus;
mod references;
mod roles;

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use self::references::{Names, exported, referenced};
use crate::server::{Server, rsp};

/// Labels the scrape adds (Prometheus, or the ServiceMonitor's relabelling), never the server.
const TARGET_LABELS: [&str; 3] = ["job", "instance", "component"];
/// Metrics only `--role auth` exports: its client of the policy service.
const AUTH_ROLE_PREFIX: &str = "rsp_client_";

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/monitoring")
}

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Prints why a part of a test cannot run here; under CI that is a failure.
fn unavailable(reason: &str) {
    assert!(!ci(), "required under CI=true: {reason}");
    eprintln!("skipped: {reason}");
}

fn post_form(url: &str, basic: (&str, &str), form: &[(&str, &str)]) -> Value {
    let response = reqwest::blocking::Client::new().post(url).basic_auth(basic.0, Some(basic.1)).form(form).send();
    let response = response.unwrap();
    let status = response.status();
    let body: Value = response.json().unwrap();
    assert!(status.is_success(), "POST {url}: {status} {body}");
    body
}

/// Registers a client through the admin CLI (reading `admin-client.json` in `data_dir`).
fn create_client(dir: &Path, data_dir: &Path, name: &str, scope: &str) -> (String, String) {
    let data_dir = data_dir.to_str().unwrap();
    let args = ["client", "create", "--data-dir", data_dir, "--tenant", "default", "--name", name, "--scope", scope];
    let created: Value =
        serde_json::from_str(&rsp(dir, &[&args[..], &["--grant-type", "client_credentials"]].concat())).unwrap();
    (created["client_id"].as_str().unwrap().to_owned(), created["client_secret"].as_str().unwrap().to_owned())
}

fn create_user_with_password(dir: &Path, data_dir: &Path) {
    use std::io::Write as _;
    use std::process::{Command, Stdio};

    let data_dir = data_dir.to_str().unwrap();
    let mut create = Command::new(crate::server::BIN)
        .args(["user", "create", "--data-dir", data_dir, "--tenant", "default", "--username", "observed"])
        .arg("--password-stdin")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    create.stdin.take().unwrap().write_all(b"correct horse battery staple\n").unwrap();
    let output = create.wait_with_output().unwrap();
    assert!(output.status.success(), "rsp user create: {}", String::from_utf8_lossy(&output.stderr));
}

/// A token, an introspection, a client update and a key rotation, a user with a password (one Argon2
/// hash on the server), and two decisions (a cache miss, then a hit) against `url`.
fn drive_traffic(dir: &Path, data_dir: &Path, url: &str, decisions_url: &str) {
    create_user_with_password(dir, data_dir);
    let (id, secret) = create_client(dir, data_dir, "observed", "api:read");
    let token = post_form(
        &format!("{url}/t/default/oauth2/token"),
        (&id, &secret),
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
    );
    let access_token = token["access_token"].as_str().unwrap();
    let introspection =
        post_form(&format!("{url}/t/default/oauth2/introspect"), (&id, &secret), &[("token", access_token)]);
    assert_eq!(introspection["active"], true, "{introspection}");
    // Writes that invalidate cached entries (the client just used, the tenant's key set).
    let data = data_dir.to_str().unwrap();
    rsp(dir, &["client", "update", "--data-dir", data, "--tenant", "default", &id, "--name", "observed-again"]);
    rsp(dir, &["keys", "rotate", "--data-dir", data, "--tenant", "default"]);

    let (pep, pep_secret) = create_client(dir, data_dir, "pep", "rsp:authorize");
    let token = post_form(
        &format!("{url}/t/default/oauth2/token"),
        (&pep, &pep_secret),
        &[("grant_type", "client_credentials"), ("scope", "rsp:authorize")],
    );
    let request =
        json!({"principal": "User::\"alice\"", "action": "Action::\"view\"", "resource": {"type": "Doc", "id": "d1"}});
    for _ in 0..2 {
        let response = reqwest::blocking::Client::new()
            .post(format!("{decisions_url}/t/default/v1/authorize"))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .json(&request)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    }
}

fn scrape(server: &Server) -> String {
    reqwest::blocking::get(format!("{}/metrics", server.ops_url)).unwrap().text().unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn every_metric_the_dashboard_and_the_alert_rules_name_is_exported() {
    let (wanted, sources) = referenced();
    let dir = tempfile::tempdir().unwrap();

    // One process with every role, on SQLite.
    let server = Server::start(dir.path());
    drive_traffic(dir.path(), &dir.path().join("rsp-data"), &server.url, &server.url);
    let mut scrapes = vec![scrape(&server)];

    // The auth role's client of the policy service exists only when the roles run apart.
    let mut unchecked = None;
    match roles::scrape_split_roles(dir.path()) {
        Ok(more) => scrapes.extend(more),
        Err(reason) => {
            unavailable(&format!("the auth/policy split cannot run: {reason}"));
            unchecked = Some(AUTH_ROLE_PREFIX);
        }
    }
    let mut have = Names::new();
    for text in &scrapes {
        for (name, labels) in exported(text) {
            have.entry(name).or_default().extend(labels);
        }
    }

    let mut problems = Vec::new();
    for (name, labels) in &wanted {
        if unchecked.is_some_and(|prefix| name.starts_with(prefix)) {
            eprintln!("not checked without the role split: {name}");
            continue;
        }
        let from = sources[name].iter().copied().collect::<Vec<_>>().join(", ");
        let Some(exported_labels) = have.get(name) else {
            problems.push(format!("{name} (named by the {from}) is not exported"));
            continue;
        };
        for label in labels.iter().filter(|l| !TARGET_LABELS.contains(&l.as_str())) {
            if !exported_labels.contains(label) {
                problems.push(format!("{name} (named by the {from}) has no label {label:?}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the monitoring files name {} metric(s) or label(s) the server does not export:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}
