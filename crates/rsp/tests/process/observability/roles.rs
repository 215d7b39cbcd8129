//! `--role policy` and `--role auth` started apart over a fresh PostgreSQL schema (created and dropped
//! with `psql`), so the auth role's client of the policy service shows its metrics.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use rsp_testkit::services::database_url;

use super::{create_client, drive_traffic, free_port, scrape};
use crate::server::Server;

fn psql(sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .args([database_url().as_str(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if output.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&output.stderr).into_owned()) }
}

/// A uniquely named schema, dropped with everything in it when the guard goes.
struct Schema(String);

impl Schema {
    fn create() -> Result<Schema, String> {
        let name = format!("rsp_test_obs_{}_{}", std::process::id(), free_port());
        psql(&format!("CREATE SCHEMA \"{name}\""))?;
        Ok(Schema(name))
    }

    fn url(&self) -> String {
        let url = database_url();
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}options[search_path]={}", self.0)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Err(error) = psql(&format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.0)) {
            eprintln!("schema {} was not dropped: {error}", self.0);
        }
    }
}

/// `--role policy` and `--role auth` over one schema, with traffic through both, then token requests
/// while the policy service is down; returns their scrapes.
pub fn scrape_split_roles(dir: &Path) -> Result<Vec<String>, String> {
    let schema = Schema::create().map_err(|e| format!("PostgreSQL at {} via psql: {e}", database_url()))?;
    let data_dir = dir.join("split-data");
    let key = base64::engine::general_purpose::STANDARD.encode(std::array::from_fn::<u8, 32, _>(|i| i as u8 ^ 0x5a));
    let (auth_port, policy_port) = (free_port(), free_port());
    let public_url = format!("http://127.0.0.1:{auth_port}");
    let policy_url = format!("http://127.0.0.1:{policy_port}");
    let common = |listen: u16| {
        vec![
            ("RSP_LISTEN", format!("127.0.0.1:{listen}")),
            ("RSP_PUBLIC_URL", public_url.clone()),
            ("RSP_DATA_DIR", data_dir.display().to_string()),
            ("RSP_MASTER_KEY", key.clone()),
            ("RSP_DATABASE_URL", schema.url()),
            ("RSP_DATABASE_MAX_CONNECTIONS", "4".into()),
        ]
    };
    // The policy service starts first and bootstraps the default tenant and admin-client.json.
    let mut policy = Server::start_with(dir, &["--role", "policy"], &common(policy_port));
    let mut auth_env = common(auth_port);
    auth_env.push(("RSP_POLICY_URL", policy_url.clone()));
    let auth = Server::start_with(dir, &["--role", "auth"], &auth_env);
    drive_traffic(dir, &data_dir, &auth.url, &policy_url);
    let policy_metrics = scrape(&policy);

    // With the policy service gone, scope decisions fail until the auth role's breaker opens: the
    // failure and transition counters exist only from then on.
    assert!(policy.terminate(), "the policy service did not exit cleanly");
    let (id, secret) = create_client(dir, &data_dir, "breaker", "api:read");
    for _ in 0..5 {
        let response = reqwest::blocking::Client::new()
            .post(format!("{}/t/default/oauth2/token", auth.url))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "api:read")])
            .send()
            .unwrap();
        assert!(response.status().is_server_error(), "a token was issued without the policy service");
    }
    Ok(vec![scrape(&auth), policy_metrics])
}
