//! What the workers send: each scenario's requests prepared once, and the set-up (a throw-away tenant
//! through the admin API) that creates what they need.

use std::fmt;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use url::form_urlencoded::{Serializer, byte_serialize};

use super::args::{LoadtestArgs, Scenario};
use super::cedar::CedarWorkload;
use super::connection::{PlainConnection, PlainRequest};
use super::login;
use crate::bootstrap::{ADMIN_CLIENT_FILE, AdminCredentials};
use crate::cli::admin::AdminClient;
use crate::cli::args::Connection;

/// One request, ready to send; its `Authorization` value (none when empty) is a credential, so never
/// printed.
#[derive(Clone)]
struct Prepared {
    url: String,
    authorization: String,
    content_type: &'static str,
    body: String,
}

pub(super) const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// A [`Prepared`] request in the form the client takes without parsing anything again: for `http://`
/// the whole request built once for a [`PlainConnection`], otherwise the URL parsed once (reqwest would parse
/// a string per request, a quarter of the load generator's instructions) and the `Authorization` header
/// validated once.
enum Ready {
    Plain(PlainRequest),
    Reqwest { url: reqwest::Url, authorization: Option<HeaderValue>, content_type: &'static str, body: String },
}

impl TryFrom<Prepared> for Ready {
    type Error = anyhow::Error;

    fn try_from(request: Prepared) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(&request.url).with_context(|| format!("{} is not a URL", request.url))?;
        let authorization = match request.authorization.as_str() {
            "" => None,
            value => Some(HeaderValue::from_str(value).context("the credentials are not a valid header")?),
        };
        if url.scheme() == "http" {
            return Ok(Self::Plain(PlainRequest::post(&url, authorization, request.content_type, &request.body)?));
        }
        Ok(Self::Reqwest { url, authorization, content_type: request.content_type, body: request.body })
    }
}

/// What one unit of load is: a single prepared request, or a browser's whole login.
enum Steps {
    /// Sent in turn, one per unit.
    Requests(Vec<Ready>),
    /// Three requests per unit; see [`login`].
    Login(login::Flow),
}

/// The requests of one scenario, ready to send in turn.
pub(super) struct Workload {
    /// What is measured, for the report: the endpoint, or the scenario's endpoints.
    pub url: String,
    /// Cedar decisions answered by one successful request.
    pub decisions_per_request: u64,
    /// Whether the workers should spread their connections over many loopback source addresses, so that
    /// the server's per-IP counters see many clients (the login storm).
    pub many_sources: bool,
    steps: Steps,
}

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let requests = match &self.steps {
            Steps::Requests(requests) => requests.len(),
            Steps::Login(_) => 3,
        };
        f.debug_struct("Workload").field("url", &self.url).field("requests", &requests).finish_non_exhaustive()
    }
}

impl Workload {
    /// Whether the target may speak TLS (anything but a plain `http://` URL), so clients need trusted roots.
    pub fn tls(&self) -> bool {
        !self.url.starts_with("http://")
    }

    fn form(url: String, authorization: String, body: String) -> anyhow::Result<Self> {
        let request = Prepared { url: url.clone(), authorization, content_type: FORM, body };
        Self::requests(url, 0, vec![request])
    }

    fn requests(url: String, decisions_per_request: u64, requests: Vec<Prepared>) -> anyhow::Result<Self> {
        let requests = requests.into_iter().map(Ready::try_from).collect::<anyhow::Result<_>>()?;
        Ok(Self { url, decisions_per_request, many_sources: false, steps: Steps::Requests(requests) })
    }

    /// Sends the `seq`th unit of load (requests repeat in order) and reads every answer whole, so the
    /// connection can be reused; true when the server answered as the scenario expects. `http://`
    /// requests go over `connection`, the rest (and logins) through `client`.
    pub async fn send(&self, client: &reqwest::Client, connection: &mut PlainConnection, seq: usize) -> bool {
        let requests = match &self.steps {
            Steps::Requests(requests) => requests,
            Steps::Login(flow) => return flow.run(client, seq).await,
        };
        let Some(request) = requests.get(seq % requests.len().max(1)) else { return false };
        let (url, authorization, content_type, body) = match request {
            Ready::Plain(request) => return connection.send(request).await,
            Ready::Reqwest { url, authorization, content_type, body } => (url, authorization, content_type, body),
        };
        let mut builder = client.post(url.clone()).header(CONTENT_TYPE, *content_type);
        if let Some(authorization) = authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let sent = builder.body(body.clone()).send().await;
        match sent {
            Ok(response) => {
                let success = response.status().is_success();
                response.bytes().await.is_ok() && success
            }
            Err(_) => false,
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
    if args.wrong_password && args.scenario != Scenario::Login {
        bail!("--wrong-password applies to the login scenario only");
    }
    if let Some(url) = &args.authorize_url {
        return Ok((external_decisions(args, url)?, None));
    }
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
    if args.scenario == Scenario::Login {
        let flow = login::Flow::set_up(&fixture.admin, &tenant_api, issuer, args.wrong_password).await?;
        let url = format!("{issuer}/oauth2/{{authorize, login}}");
        return Ok(Workload {
            url,
            decisions_per_request: 0,
            many_sources: args.wrong_password,
            steps: Steps::Login(flow),
        });
    }
    let body = json!({"name": "loadtest", "scope": "api:read rsp:authorize"});
    let created = fixture.admin.call(Method::POST, &format!("{tenant_api}/clients"), Some(body)).await?;
    let field = |name: &str| created.get(name).and_then(Value::as_str).map(str::to_owned);
    let id = field("client_id").context("the client registration has no client_id")?;
    let secret = field("client_secret").context("the client registration has no client_secret")?;
    let basic = basic(&id, &secret);
    let token_url = format!("{issuer}/oauth2/token");
    match args.scenario {
        Scenario::ClientCredentials => {
            Workload::form(token_url, basic, form(&[("grant_type", "client_credentials"), ("scope", "api:read")]))
        }
        Scenario::Introspect => {
            let token = mint(&token_url, &basic, Some("api:read")).await?;
            Workload::form(format!("{issuer}/oauth2/introspect"), basic, form(&[("token", &token)]))
        }
        Scenario::Mixed => {
            let cedar = CedarWorkload::load(args.cedar_workload.as_deref())?;
            cedar.install(&fixture.admin, &tenant_api).await?;
            let decision_token = mint(&token_url, &basic, Some("rsp:authorize")).await?;
            let api_token = mint(&token_url, &basic, Some("api:read")).await?;
            let (_, _, decisions) = decisions(args, issuer, &decision_token, &cedar.requests)?;
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
            let mut requests = Vec::with_capacity(decisions.len() * 3);
            for decision in decisions {
                requests.extend([issue.clone(), decision, introspect.clone()]);
            }
            let url = format!("{issuer}/{{oauth2/token, v1/authorize, oauth2/introspect}}");
            Workload::requests(url, 0, requests)
        }
        Scenario::Authorize | Scenario::AuthorizeBatch => {
            let cedar = CedarWorkload::load(args.cedar_workload.as_deref())?;
            cedar.install(&fixture.admin, &tenant_api).await?;
            let token = mint(&token_url, &basic, Some("rsp:authorize")).await?;
            let (url, size, requests) = decisions(args, issuer, &token, &cedar.requests)?;
            Workload::requests(url, size, requests)
        }
        Scenario::Login => bail!("the login scenario is set up above"),
    }
}

/// The decision requests (one workload request per body, or `--batch-size` of them in turn), their
/// endpoint and the decisions each asks for.
fn decisions(
    args: &LoadtestArgs,
    issuer: &str,
    token: &str,
    requests: &[Value],
) -> anyhow::Result<(String, u64, Vec<Prepared>)> {
    let (url, size, bodies) = decision_bodies(args, issuer, requests)?;
    let authorization = format!("Bearer {token}");
    let requests = bodies
        .into_iter()
        .map(|body| Prepared { url: url.clone(), authorization: authorization.clone(), content_type: JSON, body })
        .collect();
    Ok((url, u64::try_from(size)?, requests))
}

/// The decision endpoint under `issuer` and the request bodies for it, with the decisions per body.
fn decision_bodies(
    args: &LoadtestArgs,
    issuer: &str,
    requests: &[Value],
) -> anyhow::Result<(String, usize, Vec<String>)> {
    if args.scenario == Scenario::AuthorizeBatch {
        let size = usize::from(args.batch_size);
        let batches = requests.len().div_ceil(size);
        let bodies = (0..batches)
            .map(|batch| {
                let chunk: Vec<&Value> = requests.iter().cycle().skip(batch * size).take(size).collect();
                serde_json::to_string(&json!({ "requests": chunk }))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((format!("{issuer}/v1/authorize/batch"), size, bodies))
    } else {
        let bodies = requests.iter().map(serde_json::to_string).collect::<Result<Vec<_>, _>>()?;
        Ok((format!("{issuer}/v1/authorize"), 1, bodies))
    }
}

/// Single decisions against another decision server (`--authorize-url`, e.g. cedar-agent's
/// `/v1/is_authorized`), whose policies and entities were loaded by its own API: the workload's request
/// bodies as they are, without credentials.
fn external_decisions(args: &LoadtestArgs, url: &str) -> anyhow::Result<Workload> {
    if args.scenario != Scenario::Authorize {
        bail!("--authorize-url measures the authorize scenario only");
    }
    let cedar = CedarWorkload::load(args.cedar_workload.as_deref())?;
    let requests = cedar
        .requests
        .iter()
        .map(|request| {
            let body = serde_json::to_string(request)?;
            Ok(Prepared { url: url.to_owned(), authorization: String::new(), content_type: JSON, body })
        })
        .collect::<anyhow::Result<_>>()?;
    Workload::requests(url.to_owned(), 1, requests)
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
        Scenario::ClientCredentials => Workload::form(token_url.to_owned(), basic, form(&fields)),
        Scenario::Introspect => {
            let url = args.introspect_url.clone().context("the introspect scenario needs --introspect-url")?;
            let token = mint_with(token_url, &basic, &fields).await?;
            Workload::form(url, basic, form(&[("token", &token)]))
        }
        Scenario::Authorize | Scenario::AuthorizeBatch | Scenario::Mixed | Scenario::Login => {
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

pub(super) fn form(fields: &[(&str, &str)]) -> String {
    Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// A value unlikely to repeat, for the tenant's name: std's hasher keys are random per process.
pub(super) fn random() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id())
}
