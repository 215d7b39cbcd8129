//! The login scenario: a browser's password login, end to end over HTTP.
//!
//! One unit of load is what a browser does: `GET /oauth2/authorize` (answered 303 to the login page),
//! `GET` the login page (its CSRF token, its pending id and the pre-session cookie), then
//! `POST /oauth2/login` with the credentials. The right password is answered 303 (on to consent); with
//! `--wrong-password` the scenario is a credential-stuffing storm instead: every attempt names another
//! unknown username (so no account throttle is reached, and the server still hashes a dummy password to
//! answer alike), and the workers move to new loopback source addresses every few attempts, so the
//! per-IP throttle sees many clients, as it would a botnet. A storm attempt expects 401; a 429 means the
//! throttle answered before Argon2 did and counts as an error, so a storm that stops costing the server
//! shows.

use anyhow::Context;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::args::Secret;
use super::target::{FORM, form, random};
use crate::cli::admin::AdminClient;

/// Where the authorization request says the code goes; never followed.
const REDIRECT_URI: &str = "https://loadtest.invalid/callback";
/// A fixed PKCE verifier (RFC 7636 Appendix B): the flow never reaches the token exchange.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// The one account the right-password scenario signs in to.
const USERNAME: &str = "loadtest-user";

/// The prepared login: the URLs, and the credentials each attempt posts.
pub(super) struct Flow {
    authorize_url: String,
    login_url: String,
    password: Secret,
    /// `Some(prefix)`: a storm of unknown usernames `prefix-n`; none: the set-up account.
    storm: Option<String>,
}

impl Flow {
    /// Registers a code-flow client and an account in the test tenant (`tenant_api`).
    pub async fn set_up(admin: &AdminClient, tenant_api: &str, issuer: &str, wrong: bool) -> anyhow::Result<Self> {
        let body = json!({
            "name": "loadtest login",
            "grant_types": ["authorization_code"],
            "scope": "openid",
            "redirect_uris": [REDIRECT_URI],
        });
        let created = admin.call(Method::POST, &format!("{tenant_api}/clients"), Some(body)).await?;
        let client_id = created.get("client_id").and_then(Value::as_str).context("the client has no client_id")?;
        let password = Secret::from(format!("{:016x}{:016x}", random(), random()));
        let user = json!({"username": USERNAME, "password": password.expose()});
        admin.call(Method::POST, &format!("{tenant_api}/users"), Some(user)).await?;
        let query = form(&[
            ("client_id", client_id),
            ("redirect_uri", REDIRECT_URI),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "loadtest"),
            ("code_challenge", &rsp_oauth::pkce::s256(VERIFIER)),
            ("code_challenge_method", "S256"),
        ]);
        Ok(Self {
            authorize_url: format!("{issuer}/oauth2/authorize?{query}"),
            login_url: format!("{issuer}/oauth2/login"),
            password: if wrong { Secret::from(format!("wrong-{:016x}", random())) } else { password },
            storm: wrong.then(|| format!("nobody-{:08x}", random() as u32)),
        })
    }

    /// One login; true when the POST got the answer the scenario expects (303, or 401 in a storm).
    pub async fn run(&self, client: &reqwest::Client, seq: usize) -> bool {
        self.attempt(client, seq).await.unwrap_or(false)
    }

    async fn attempt(&self, client: &reqwest::Client, seq: usize) -> Option<bool> {
        let redirect = client.get(&self.authorize_url).send().await.ok()?;
        if redirect.status() != StatusCode::SEE_OTHER {
            return Some(false);
        }
        let page_url = redirect.headers().get(LOCATION)?.to_str().ok()?.to_owned();
        redirect.bytes().await.ok()?;
        let page = client.get(&page_url).send().await.ok()?;
        if page.status() != StatusCode::OK {
            return Some(false);
        }
        let cookie = page.headers().get(SET_COOKIE)?.to_str().ok()?.split(';').next()?.to_owned();
        let html = page.text().await.ok()?;
        let username = match &self.storm {
            Some(prefix) => format!("{prefix}-{seq}"),
            None => USERNAME.to_owned(),
        };
        let fields = [
            ("pending", hidden(&html, "pending")?),
            ("csrf", hidden(&html, "csrf")?),
            ("username", username.as_str()),
            ("password", self.password.expose()),
        ];
        let answer = client
            .post(&self.login_url)
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, FORM)
            .body(form(&fields))
            .send()
            .await
            .ok()?;
        let expected = if self.storm.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::SEE_OTHER };
        let status = answer.status();
        answer.bytes().await.ok()?;
        Some(status == expected)
    }
}

/// The value of the page's hidden input `name`; ids and tokens are base64url, so never escaped.
fn hidden<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    html.get(start..)?.split('"').next()
}

#[cfg(test)]
mod tests {
    use super::hidden;

    #[test]
    fn hidden_fields_are_read_from_the_page() {
        let html = r#"<input type="hidden" name="pending" value="abc_-1"><input name="csrf" value="x">"#;
        assert_eq!(hidden(html, "pending"), Some("abc_-1"));
        assert_eq!(hidden(html, "csrf"), Some("x"));
        assert_eq!(hidden(html, "username"), None);
    }
}
