//! Start with no configuration, use the CLI and the token endpoints, stop on SIGTERM while a request is
//! in flight, restart, and check the logs never carried a secret.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::server::{Server, rsp};

fn post_form(url: &str, basic: (&str, &str), form: &[(&str, &str)]) -> Value {
    let client = reqwest::blocking::Client::new();
    client.post(url).basic_auth(basic.0, Some(basic.1)).form(form).send().unwrap().json().unwrap()
}

#[test]
fn a_server_started_without_configuration_works_stops_cleanly_and_logs_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path());
    let data = dir.path().join("rsp-data");
    assert!(data.join("admin-client.json").exists(), "the default data directory is ./rsp-data");
    let admin: Value = serde_json::from_str(&std::fs::read_to_string(data.join("admin-client.json")).unwrap()).unwrap();
    let admin_secret = admin["client_secret"].as_str().unwrap().to_owned();
    let master_key = std::fs::read_to_string(data.join("master.key")).unwrap();

    let created: Value = serde_json::from_str(&rsp(
        dir.path(),
        &[
            "client",
            "create",
            "--tenant",
            "default",
            "--name",
            "demo",
            "--grant-type",
            "client_credentials",
            "--scope",
            "a b",
        ],
    ))
    .unwrap();
    let (id, secret) = (created["client_id"].as_str().unwrap(), created["client_secret"].as_str().unwrap());
    let code_flow = [
        "client",
        "create",
        "--tenant",
        "default",
        "--name",
        "web app",
        "--grant-type",
        "authorization_code",
        "--scope",
        "openid",
        "--redirect-uri",
        "https://app.example/callback",
        "--post-logout-redirect-uri",
        "https://app.example/bye",
    ];
    let web_app: Value = serde_json::from_str(&rsp(dir.path(), &code_flow)).unwrap();
    assert_eq!(web_app["redirect_uris"], serde_json::json!(["https://app.example/callback"]), "{web_app}");
    assert_eq!(web_app["post_logout_redirect_uris"], serde_json::json!(["https://app.example/bye"]), "{web_app}");
    let token_url = format!("{}/t/default/oauth2/token", server.url);
    let token = post_form(&token_url, (id, secret), &[("grant_type", "client_credentials"), ("scope", "a")]);
    let access_token = token["access_token"].as_str().unwrap().to_owned();
    let introspect_url = format!("{}/t/default/oauth2/introspect", server.url);
    assert_eq!(post_form(&introspect_url, (id, secret), &[("token", &access_token)])["active"], true);
    let rotated: Value = serde_json::from_str(&rsp(dir.path(), &["keys", "rotate", "--tenant", "default"])).unwrap();
    assert_eq!(rotated["keys"].as_array().unwrap().len(), 2);

    let metrics = reqwest::blocking::get(format!("{}/metrics", server.ops_url)).unwrap().text().unwrap();
    assert!(metrics.contains(r#"rsp_tokens_issued_total{grant_type="client_credentials"}"#), "{metrics}");
    assert!(metrics.contains(r#"route="/t/{tenant}/oauth2/token""#));
    assert!(metrics.contains("rsp_signing_keys"));
    assert_eq!(reqwest::blocking::get(format!("{}/health/ready", server.ops_url)).unwrap().status(), 200);
    assert_eq!(reqwest::blocking::get(format!("{}/health/live", server.ops_url)).unwrap().status(), 200);

    // A request whose body is still arriving when SIGTERM comes is completed, not cut off.
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).unwrap();
    let body = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    let head = format!(
        "POST /t/default/oauth2/token HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let kill = std::process::Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    std::thread::sleep(Duration::from_millis(300));
    slow.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    slow.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "in-flight request was not drained: {answer}");
    assert!(server.terminate(), "the server did not exit cleanly");

    let logs = server.logs();
    assert!(logs.contains("shutdown requested"));
    for secret_value in [admin_secret.as_str(), secret, access_token.as_str(), master_key.trim()] {
        assert!(!logs.contains(secret_value), "a secret reached the logs");
    }
    // A signature alone is enough to recognise a leaked token.
    assert!(!logs.contains(access_token.rsplit('.').next().unwrap()));

    // Restarting keeps the client.
    let server = Server::start(dir.path());
    let again = post_form(
        &format!("{}/t/default/oauth2/token", server.url),
        (id, secret),
        &[("grant_type", "client_credentials")],
    );
    assert!(again["access_token"].is_string(), "{again}");
}

#[test]
fn migrate_brings_a_fresh_database_up_to_date_and_a_second_run_finds_nothing_to_do() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let output = std::process::Command::new(crate::server::BIN)
            .args(["migrate", "--data-dir", "data"])
            .current_dir(dir.path())
            .env("RSP_LOG_FORMAT", "json")
            .output()
            .unwrap();
        let logs = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{logs}");
        assert!(logs.contains("the schema is up to date"), "{logs}");
    }
    assert!(dir.path().join("data/rsp.db").exists());
    // Migrating creates no master key and no admin client: that is the server's first start.
    assert!(!dir.path().join("data/admin-client.json").exists());
}
