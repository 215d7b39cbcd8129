//! The admin commands: each one gets an admin token with the credentials from `admin-client.json` and
//! makes one call to the admin API, printing the JSON answer.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use url::form_urlencoded::byte_serialize;

use super::args::{
    ClientCommand, ClientFields, Connection, EntitiesCommand, KeysCommand, PolicyCommand, PolicyFiles, TenantCommand,
};
use crate::bootstrap::{ADMIN_CLIENT_FILE, AdminCredentials};

/// An authenticated connection to the admin API.
#[derive(Debug)]
pub struct AdminClient {
    http: reqwest::Client,
    api: String,
    token: String,
}

fn form_encode(text: &str) -> String {
    byte_serialize(text.as_bytes()).collect()
}

impl AdminClient {
    pub async fn connect(connection: &Connection) -> anyhow::Result<Self> {
        let path = connection.credentials.clone().unwrap_or_else(|| connection.data_dir.join(ADMIN_CLIENT_FILE));
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("cannot read {} (start the server once, or pass --credentials)", path.display())
        })?;
        let credentials: AdminCredentials =
            serde_json::from_str(&text).with_context(|| format!("{} is not a credentials file", path.display()))?;
        let (token_endpoint, api) = match &connection.server {
            Some(server) => {
                let server = server.trim_end_matches('/');
                (format!("{server}/t/default/oauth2/token"), format!("{server}/admin/v1"))
            }
            None => (credentials.token_endpoint.clone(), credentials.admin_api.clone()),
        };
        let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30)).build()?;
        // RFC 6749 §2.3.1: form-encode id and secret before joining and base64-encoding them.
        let basic = STANDARD.encode(format!(
            "{}:{}",
            form_encode(&credentials.client_id),
            form_encode(&credentials.client_secret)
        ));
        let response = http
            .post(&token_endpoint)
            .header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"))
            .form(&[("grant_type", "client_credentials"), ("scope", "rsp:admin")])
            .send()
            .await
            .with_context(|| format!("cannot reach {token_endpoint}"))?;
        let body: Value = answer(response).await?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .context("the token response has no access_token")?
            .to_owned();
        Ok(Self { http, api, token })
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut request = self.http.request(method, format!("{}{}", self.api, path)).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request.send().await.context("cannot reach the admin API")?).await
    }
}

async fn answer(response: reqwest::Response) -> anyhow::Result<Value> {
    let status = response.status();
    let text = response.text().await?;
    let body: Value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(json!(text)) };
    if !status.is_success() {
        let reason = body
            .get("error_description")
            .and_then(Value::as_str)
            .or(body.get("error").and_then(Value::as_str))
            .unwrap_or("request failed");
        bail!("{status}: {reason}");
    }
    Ok(body)
}

fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>().replace('+', "%20")
}

fn client_body(fields: ClientFields, kind: Option<String>) -> Value {
    let mut body = serde_json::Map::new();
    if let Some(name) = fields.name {
        body.insert("name".into(), json!(name));
    }
    if let Some(kind) = kind {
        body.insert("kind".into(), json!(kind));
    }
    if !fields.grant_types.is_empty() {
        body.insert("grant_types".into(), json!(fields.grant_types));
    }
    if let Some(scope) = fields.scope {
        body.insert("scope".into(), json!(scope));
    }
    if !fields.redirect_uris.is_empty() {
        body.insert("redirect_uris".into(), json!(fields.redirect_uris));
    }
    if !fields.post_logout_redirect_uris.is_empty() {
        body.insert("post_logout_redirect_uris".into(), json!(fields.post_logout_redirect_uris));
    }
    if !fields.audiences.is_empty() {
        body.insert("audiences".into(), json!(fields.audiences));
    }
    if !fields.introspect_audiences.is_empty() {
        body.insert("introspect_audiences".into(), json!(fields.introspect_audiences));
    }
    Value::Object(body)
}

pub async fn tenant(command: TenantCommand) -> anyhow::Result<Value> {
    match command {
        TenantCommand::Create { id, name, signing_alg, connection } => {
            let mut body = serde_json::Map::new();
            body.insert("id".into(), json!(id));
            body.insert("name".into(), json!(name));
            if let Some(alg) = signing_alg {
                body.insert("signing_alg".into(), json!(alg));
            }
            let body = Value::Object(body);
            AdminClient::connect(&connection).await?.call(Method::POST, "/tenants", Some(body)).await
        }
        TenantCommand::List { connection } => {
            AdminClient::connect(&connection).await?.call(Method::GET, "/tenants", None).await
        }
        TenantCommand::Get { id, connection } => {
            AdminClient::connect(&connection)
                .await?
                .call(Method::GET, &format!("/tenants/{}", segment(&id)), None)
                .await
        }
        TenantCommand::Update { id, name, signing_alg, connection } => {
            let mut body = serde_json::Map::new();
            if let Some(name) = name {
                body.insert("name".into(), json!(name));
            }
            if let Some(alg) = signing_alg {
                body.insert("signing_alg".into(), json!(alg));
            }
            let body = Value::Object(body);
            let path = format!("/tenants/{}", segment(&id));
            AdminClient::connect(&connection).await?.call(Method::PATCH, &path, Some(body)).await
        }
        TenantCommand::Delete { id, connection } => {
            let path = format!("/tenants/{}", segment(&id));
            AdminClient::connect(&connection).await?.call(Method::DELETE, &path, None).await?;
            Ok(json!({"deleted": id}))
        }
    }
}

pub async fn client(command: ClientCommand) -> anyhow::Result<Value> {
    match command {
        ClientCommand::Create { tenant, kind, fields, connection } => {
            let path = format!("/tenants/{}/clients", segment(&tenant));
            let body = client_body(fields, kind);
            AdminClient::connect(&connection).await?.call(Method::POST, &path, Some(body)).await
        }
        ClientCommand::List { tenant, connection } => {
            let path = format!("/tenants/{}/clients", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::GET, &path, None).await
        }
        ClientCommand::Get { tenant, client_id, connection } => {
            let path = format!("/tenants/{}/clients/{}", segment(&tenant), segment(&client_id));
            AdminClient::connect(&connection).await?.call(Method::GET, &path, None).await
        }
        ClientCommand::Update { tenant, client_id, fields, connection } => {
            let path = format!("/tenants/{}/clients/{}", segment(&tenant), segment(&client_id));
            let body = client_body(fields, None);
            AdminClient::connect(&connection).await?.call(Method::PATCH, &path, Some(body)).await
        }
        ClientCommand::Delete { tenant, client_id, connection } => {
            let path = format!("/tenants/{}/clients/{}", segment(&tenant), segment(&client_id));
            AdminClient::connect(&connection).await?.call(Method::DELETE, &path, None).await?;
            Ok(json!({"deleted": client_id}))
        }
        ClientCommand::RotateSecret { tenant, client_id, connection } => {
            let path = format!("/tenants/{}/clients/{}/secret", segment(&tenant), segment(&client_id));
            AdminClient::connect(&connection).await?.call(Method::POST, &path, None).await
        }
    }
}

pub async fn keys(command: KeysCommand) -> anyhow::Result<Value> {
    match command {
        KeysCommand::List { tenant, connection } => {
            let path = format!("/tenants/{}/keys", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::GET, &path, None).await
        }
        KeysCommand::Rotate { tenant, connection } => {
            let path = format!("/tenants/{}/keys/rotate", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::POST, &path, None).await
        }
    }
}

fn read_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// The admin API's policy-set body from files on disk.
fn policy_body(files: &PolicyFiles) -> anyhow::Result<Value> {
    let mut body = serde_json::Map::new();
    body.insert("policies".into(), json!(read_file(&files.policies)?));
    if let Some(schema) = &files.schema {
        let format = if schema.extension().is_some_and(|e| e == "json") { "json" } else { "cedar" };
        body.insert("schema".into(), json!(read_file(schema)?));
        body.insert("schema_format".into(), json!(format));
    }
    if let Some(links) = &files.links {
        let links: Value = serde_json::from_str(&read_file(links)?).context("the links file is not JSON")?;
        body.insert("template_links".into(), links);
    }
    Ok(Value::Object(body))
}

pub async fn policy(command: PolicyCommand) -> anyhow::Result<Value> {
    match command {
        PolicyCommand::Push { tenant, files, connection } => {
            let path = format!("/tenants/{}/policies", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::PUT, &path, Some(policy_body(&files)?)).await
        }
        PolicyCommand::Validate { tenant, files, connection } => {
            let path = format!("/tenants/{}/policies/validate", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::POST, &path, Some(policy_body(&files)?)).await
        }
        PolicyCommand::Get { tenant, connection } => {
            let path = format!("/tenants/{}/policies", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::GET, &path, None).await
        }
        PolicyCommand::Versions { tenant, connection } => {
            let path = format!("/tenants/{}/policies/versions", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::GET, &path, None).await
        }
        PolicyCommand::Rollback { tenant, version, connection } => {
            let path = format!("/tenants/{}/policies/rollback", segment(&tenant));
            let body = json!({ "version": version });
            AdminClient::connect(&connection).await?.call(Method::POST, &path, Some(body)).await
        }
    }
}

pub async fn entities(command: EntitiesCommand) -> anyhow::Result<Value> {
    match command {
        EntitiesCommand::Push { tenant, file, connection } => {
            let entities: Value = serde_json::from_str(&read_file(&file)?).context("the entities file is not JSON")?;
            let path = format!("/tenants/{}/entities", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::PUT, &path, Some(entities)).await
        }
        EntitiesCommand::Get { tenant, connection } => {
            let path = format!("/tenants/{}/entities", segment(&tenant));
            AdminClient::connect(&connection).await?.call(Method::GET, &path, None).await
        }
        EntitiesCommand::Delete { tenant, uids, connection } => {
            let path = format!("/tenants/{}/entities", segment(&tenant));
            let body = json!({ "uids": uids });
            AdminClient::connect(&connection).await?.call(Method::DELETE, &path, Some(body)).await
        }
    }
}
