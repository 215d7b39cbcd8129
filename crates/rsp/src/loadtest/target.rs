//! What the workers send: each scenario's requests prepared once, and the set-up (a throw-away tenant
//! through the admin API) that creates what they need.

use std::fmt;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use url::form_urlencoded::{Serializer, byte_serialize};

use super::args::{LoadtestArgs, Scenario};
use crate::bootstrap::{ADMIN_CLIENT_FILE, AdminCredentials};
use crate::cli::admin::AdminClient;
use crate::cli::args::Connection;

const POLICIES: &str = include_str!("../../../rsp-policy/tests/fixtures/policies.json");
const ENTITIES: &str = include_str!("../../../rsp-policy/tests/fixtures/data.json");
const REQUESTS: &str = include_str!("../../../rsp-policy/tests/fixtures/requests.json");

/// One request, ready to send; its `Authorization` value is a credential, so never printed.
#[derive(Clone)]
struct Prepared {
    url: String,
    authorization: String,
    content_type: &'static str,
    body: String,
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// The requests of one scenario, ready to send in turn.
pub(super) struct Workload {
    /// What is measured, for the report: the endpoint, or the scenario's endpoints.
    pub url: String,
    /// Cedar decisions answered by one successful request.
    pub decisions_per_request: u64,
    requests: Vec<Prepared>,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("url", &self.url)
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl Workload {
    fn form(url: String, authorization: String, body: String) -> Self {
        let request = Prepared { url: url.clone(), authorization, content_type: FORM, body };
        Self { url, decisions_per_request: 0, requests: vec![request] }
    }

    /// The `seq`th request; requests repeat in order.
    pub fn request(&self, client: &reqwest::Client, seq: usize) -> reqwest::RequestBuilder {
        match self.requests.get(seq % self.requests.len().max(1)) {
            Some(request) => client
                .post(&request.url)
                .header(AUTHORIZATION, &request.authorization)
                .header(CONTENT_TYPE, request.content_type)
                .body(request.body.clone()),
            None => client.post(&self.url),
        }
    }
}

/// The tenant a set-up created, to delete afterwards.
#[derive(Debug)]
pub(super) struct Fixture {
    admin: AdminClient,
    pub tenant: String,
}

impl Fixture {
    pub async fn remove(self) -> anyhow::Result<()> {
        self.admin.call(Method::DELETE, &format!("/tenants/{}", self.tenant), None).await.map(drop)
    }
}

/// Prepares the scenario's requests: against `--token-url` as given, otherwise in a fresh tenant.
pub(super) async fn prepare(args: &LoadtestArgs) -> anyhow::Result<(Workload, Option<Fixture>)> {
    if let Some(token_url) = &args.token_url {
        return Ok((external(args, token_url).await?, None));
    }
    let admin = AdminClient::connect(&args.connection).await?;
    let base = server_url(&args.connection)?;
    let tenant = format!("loadtest-{:016x}", random());
    admin.call(Method::POST, "/tenants", Some(json!({"id": tenant, "name": "load test"}))).await?;
    let fixture = Fixture { admin, tenant };
    match populate(args, &fixture, &format!("{base}/t/{}", fixture.tenant)).await {
        Ok(workload) => Ok((workload, Some(fixture))),
        Err(error) => {
            if !args.keep {
                // The set-up error is the one worth reporting; a failed clean-up only adds noise.
                let _ = fixture.remove().await;
            }
            Err(error)
        }
    }
}

/// A client in the new tenant, and for the decision scenarios the Cedar workload.
async fn populate(args: &LoadtestArgs, fixture: &Fixture, issuer: &str) -> anyhow::Result<Workload> {
    let tenant_api = format!("/tenants/{}", fixture.tenant);
    let body = json!({"name": "loadtest", "scope": "api:read rsp:authorize"});
    let created = fixture.admin.call(Method::POST, &format!("{tenant_api}/clients"), Some(body)).await?;
    let field = |name: &str| created.get(name).and_then(Value::as_str).map(str::to_owned);
    let id = field("client_id").context("the client registration has no client_id")?;
    let secret = field("client_secret").context("the client registration has no client_secret")?;
    let basic = basic(&id, &secret);
    let token_url = format!("{issuer}/oauth2/token");
    match args.scenario {
        Scenario::ClientCredentials => {
            Ok(Workload::form(token_url, basic, form(&[("grant_type", "client_credentials"), ("scope", "api:read")])))
        }
        Scenario::Introspect => {
            let token = mint(&token_url, &basic, Some("api:read")).await?;
            Ok(Workload::form(format!("{issuer}/oauth2/introspect"), basic, form(&[("token", &token)])))
        }
        Scenario::Authorize | Scenario::AuthorizeBatch => {
            load_cedar_workload(fixture, &tenant_api).await?;
            let token = mint(&token_url, &basic, Some("rsp:authorize")).await?;
            decisions(args, issuer, &token)
        }
        Scenario::Mixed => {
            load_cedar_workload(fixture, &tenant_api).await?;
            let decision_token = mint(&token_url, &basic, Some("rsp:authorize")).await?;
            let api_token = mint(&token_url, &basic, Some("api:read")).await?;
            let decisions = decisions(args, issuer, &decision_token)?;
            let issue = Prepared {
                url: token_url.clone(),
                authorization: basic.clone(),
                content_type: FORM,
                body: form(&[("grant_type", "client_credentials"), ("scope", "api:read")]),
            };
            let introspect = Prepared {
                url: format!("{issuer}/oauth2/introspect"),
                authorization: basic.clone(),
                content_type: FORM,
                body: form(&[("token", &api_token)]),
            };
            let mut requests = Vec::with_capacity(decisions.requests.len() * 3);
            for decision in decisions.requests {
                requests.extend([issue.clone(), decision, introspect.clone()]);
            }
            Ok(Workload {
                url: format!("{issuer}/{{oauth2/token, v1/authorize, oauth2/introspect}}"),
                decisions_per_request: 0,
                requests,
            })
        }
    }
}

/// The Cedar workload's policies and entities, in the fixture tenant.
async fn load_cedar_workload(fixture: &Fixture, tenant_api: &str) -> anyhow::Result<()> {
    let policies = json!({"policies": policy_text()?});
    fixture.admin.call(Method::PUT, &format!("{tenant_api}/policies"), Some(policies)).await?;
    let entities: Value = serde_json::from_str(ENTITIES).context("the entity fixture is not JSON")?;
    fixture.admin.call(Method::PUT, &format!("{tenant_api}/entities"), Some(entities)).await?;
    Ok(())
}

/// The decision requests: one fixture request per body, or `--batch-size` of them in turn.
fn decisions(args: &LoadtestArgs, issuer: &str, token: &str) -> anyhow::Result<Workload> {
    let requests: Vec<Value> = serde_json::from_str(REQUESTS).context("the request fixture is not JSON")?;
    if requests.is_empty() {
        bail!("the request fixture is empty");
    }
    let (url, size, bodies) = if args.scenario == Scenario::AuthorizeBatch {
        let size = usize::from(args.batch_size);
        let batches = requests.len().div_ceil(size);
        let bodies = (0..batches)
            .map(|batch| {
                let chunk: Vec<&Value> = requests.iter().cycle().skip(batch * size).take(size).collect();
                serde_json::to_string(&json!({ "requests": chunk }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        (format!("{issuer}/v1/authorize/batch"), size, bodies)
    } else {
        let bodies = requests.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
        (format!("{issuer}/v1/authorize"), 1, bodies)
    };
    let authorization = format!("Bearer {token}");
    let requests = bodies
        .into_iter()
        .map(|body| Prepared { url: url.clone(), authorization: authorization.clone(), content_type: JSON, body })
        .collect();
    Ok(Workload { url, decisions_per_request: u64::try_from(size)?, requests })
}

/// The fixture's policies as one Cedar text, each under its `@id`.
fn policy_text() -> anyhow::Result<String> {
    let policies: Vec<Value> = serde_json::from_str(POLICIES).context("the policy fixture is not JSON")?;
    policies
        .iter()
        .map(|policy| {
            let text = |name: &str| policy.get(name).and_then(Value::as_str).context("a fixture policy lacks {name}");
            Ok(format!("@id(\"{}\")\n{}\n", text("id")?, text("content")?))
        })
        .collect()
}

/// Measures a peer's endpoints with the credentials given on the command line.
async fn external(args: &LoadtestArgs, token_url: &str) -> anyhow::Result<Workload> {
    let id = args.client_id.as_deref().context("--token-url needs --client-id")?;
    let secret = args.client_secret.as_ref().context("--token-url needs --client-secret")?;
    let basic = basic(id, secret.expose());
    let mut fields = vec![("grant_type", "client_credentials")];
    fields.extend(args.scope.as_deref().map(|scope| ("scope", scope)));
    fields.extend(args.resource.as_deref().map(|resource| ("resource", resource)));
    match args.scenario {
        Scenario::ClientCredentials => Ok(Workload::form(token_url.to_owned(), basic, form(&fields))),
        Scenario::Introspect => {
            let url = args.introspect_url.clone().context("the introspect scenario needs --introspect-url")?;
            let token = mint_with(token_url, &basic, &fields).await?;
            Ok(Workload::form(url, basic, form(&[("token", &token)])))
        }
        Scenario::Authorize | Scenario::AuthorizeBatch | Scenario::Mixed => {
            bail!("--token-url measures the client-credentials and introspect scenarios only")
        }
    }
}

/// The server's public URL: `--server`, or the one recorded in admin-client.json.
fn server_url(connection: &Connection) -> anyhow::Result<String> {
    if let Some(server) = &connection.server {
        return Ok(server.trim_end_matches('/').to_owned());
    }
    let path = connection.credentials.clone().unwrap_or_else(|| connection.data_dir.join(ADMIN_CLIENT_FILE));
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let credentials: AdminCredentials =
        serde_json::from_str(&text).with_context(|| format!("{} is not a credentials file", path.display()))?;
    let api = credentials.admin_api.trim_end_matches('/');
    api.strip_suffix("/admin/v1")
        .map(str::to_owned)
        .context("the credentials file's admin_api is not <server>/admin/v1")
}

/// An access token from `token_url`, for the scenarios that present one.
async fn mint(token_url: &str, basic: &str, scope: Option<&str>) -> anyhow::Result<String> {
    let mut fields = vec![("grant_type", "client_credentials")];
    fields.extend(scope.map(|scope| ("scope", scope)));
    mint_with(token_url, basic, &fields).await
}

/// An access token from `token_url` for a token request of these form fields.
async fn mint_with(token_url: &str, basic: &str, fields: &[(&str, &str)]) -> anyhow::Result<String> {
    let http = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(30)).build()?;
    let response = http
        .post(token_url)
        .header(AUTHORIZATION, basic)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(fields))
        .send()
        .await
        .with_context(|| format!("cannot reach {token_url}"))?;
    let status = response.status();
    if !status.is_success() {
        bail!("the token endpoint answered {status}");
    }
    let body: Value = response.json().await.context("the token response is not JSON")?;
    body.get("access_token")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the token response has no access_token")
}

/// HTTP Basic credentials, form-encoded before joining as RFC 6749 §2.3.1 asks.
fn basic(id: &str, secret: &str) -> String {
    let encode = |text: &str| byte_serialize(text.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(id), encode(secret))))
}

fn form(fields: &[(&str, &str)]) -> String {
    Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// A value unlikely to repeat, for the tenant's name: std's hasher keys are random per process.
fn random() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}
