//! A tenant with a public code-flow client, a user, and helpers that walk the authorization code flow
//! through the use cases as the pages and the token endpoint will.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use rsp_core::{Client, ClientKind, ManualClock, TenantId, UnixTime};
use rsp_oauth::admin::{ClientSettings, NewTenant};
use rsp_oauth::authorize::{AuthorizationRequest, AuthorizeError};
use rsp_oauth::crypto::MasterKey;
use rsp_oauth::pkce;
use rsp_oauth::{
    AuthService, ClientCredentials, FormParams, Issuers, OAuthError, SignedInUser, TokenResponse, TokenSettings,
    UserClaimsSource,
};
use rsp_store::SqliteStore;
use serde_json::{Map, Value, json};

pub const REDIRECT: &str = "https://app.example/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const USER: &str = "user-42";
pub const START: i64 = 1_800_000_000;

/// Claims of the one user this test server knows.
#[derive(Debug)]
pub struct OneUser;

#[async_trait]
impl UserClaimsSource for OneUser {
    async fn claims(&self, _tenant: &TenantId, user_id: &str) -> Option<Map<String, Value>> {
        (user_id == USER).then(|| {
            json!({"name": "Ada Lovelace", "email": "ada@example.com", "email_verified": true, "phone_number": "+1"})
                .as_object()
                .unwrap()
                .clone()
        })
    }
}

#[derive(Debug)]
pub struct Flow {
    pub auth: Arc<AuthService>,
    pub tenant: TenantId,
    pub client: Client,
    pub clock: Arc<ManualClock>,
}

impl Flow {
    pub async fn start() -> Self {
        Self::start_with(TokenSettings::default()).await
    }

    pub async fn start_with(settings: TokenSettings) -> Self {
        let store = Arc::new(SqliteStore::in_memory().await.unwrap());
        let clock = Arc::new(ManualClock::new(UnixTime(START)));
        let auth = AuthService::new(
            store,
            clock.clone(),
            &MasterKey::generate(),
            Issuers::new("https://id.example.com"),
            settings,
        )
        .with_user_claims(Arc::new(OneUser));
        auth.create_tenant(NewTenant { id: "acme".into(), name: "Acme".into(), signing_alg: None }).await.unwrap();
        let client = public_client(&auth, &["authorization_code", "refresh_token"]).await;
        Self { auth: Arc::new(auth), tenant: TenantId::parse("acme").unwrap(), client, clock }
    }

    pub async fn public_client(&self, grants: &[&str]) -> Client {
        public_client(&self.auth, grants).await
    }

    pub fn user(&self) -> SignedInUser {
        SignedInUser {
            user_id: USER.into(),
            auth_time: UnixTime(START - 5),
            amr: vec!["pwd".into(), "otp".into()],
            acr: Some("urn:rsp:mfa".into()),
        }
    }

    /// Authorization parameters for this flow's client, with `overrides` replacing or adding (an empty
    /// value removes the parameter).
    pub fn params(&self, overrides: &[(&str, &str)]) -> FormParams {
        let mut pairs: Vec<(String, String)> = [
            ("client_id", self.client.client_id.as_str()),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid offline_access profile"),
            ("state", "s t+a&t=e"),
            ("nonce", "n-0S6_WzA2Mj"),
            ("code_challenge", &pkce::s256(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("prompt", "consent"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        for (name, value) in overrides {
            pairs.retain(|(n, _)| n != name);
            if !value.is_empty() {
                pairs.push(((*name).to_owned(), (*value).to_owned()));
            }
        }
        FormParams::from_pairs(pairs).unwrap()
    }

    pub async fn validate(&self, overrides: &[(&str, &str)]) -> Result<AuthorizationRequest, AuthorizeError> {
        self.auth.validate_authorization(&self.tenant, &self.params(overrides)).await
    }

    /// The query of the redirect `Location` a successful authorization produces.
    pub async fn authorize(&self, overrides: &[(&str, &str)]) -> HashMap<String, String> {
        let request = self.validate(overrides).await.unwrap();
        query_of(&self.auth.issue_code(&request, &self.user()).await.unwrap())
    }

    pub async fn code(&self, overrides: &[(&str, &str)]) -> String {
        self.authorize(overrides).await.remove("code").unwrap()
    }

    pub fn credentials(&self, client: &Client) -> ClientCredentials {
        ClientCredentials::None { client_id: Some(client.client_id.to_string()) }
    }

    pub async fn exchange_as(
        &self,
        client: &Client,
        code: &str,
        verifier: Option<&str>,
        redirect_uri: &str,
    ) -> Result<TokenResponse, OAuthError> {
        let mut pairs = vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), redirect_uri.to_owned()),
        ];
        if let Some(verifier) = verifier {
            pairs.push(("code_verifier".into(), verifier.into()));
        }
        let params = FormParams::from_pairs(pairs).unwrap();
        self.auth.token(&self.tenant, &self.credentials(client), &params).await.map(|(r, _)| r)
    }

    pub async fn exchange(&self, code: &str) -> Result<TokenResponse, OAuthError> {
        self.exchange_as(&self.client, code, Some(VERIFIER), REDIRECT).await
    }

    pub async fn refresh(&self, refresh_token: &str, scope: Option<&str>) -> Result<TokenResponse, OAuthError> {
        let mut pairs = vec![
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), refresh_token.into()),
        ];
        if let Some(scope) = scope {
            pairs.push(("scope".into(), scope.into()));
        }
        let params = FormParams::from_pairs(pairs).unwrap();
        self.auth.token(&self.tenant, &self.credentials(&self.client), &params).await.map(|(r, _)| r)
    }

    /// The revocation endpoint, called by `client` (RFC 7009).
    pub async fn revoke(&self, client: &Client, token: &str, hint: &str) -> Result<(), OAuthError> {
        let params =
            FormParams::from_pairs(vec![("token".into(), token.into()), ("token_type_hint".into(), hint.into())])
                .unwrap();
        self.auth.revocation_endpoint(&self.tenant, &self.credentials(client), &params).await
    }

    /// Whether the access token still works at userinfo (live, not revoked).
    pub async fn usable(&self, access_token: &str) -> bool {
        self.auth.userinfo(&self.tenant, access_token).await.is_ok()
    }
}

pub fn query_of(location: &str) -> HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A public client of tenant `acme` for the code flow with `grants`.
pub async fn public_client(auth: &AuthService, grants: &[&str]) -> Client {
    let settings = ClientSettings {
        name: Some("app".into()),
        kind: Some(ClientKind::Public),
        grant_types: Some(grants.iter().map(|g| (*g).to_owned()).collect()),
        scope: Some("openid offline_access profile email api".into()),
        audiences: Some(vec!["https://api.example.com".into()]),
        redirect_uris: Some(vec![REDIRECT.into(), "http://127.0.0.1/cb".into()]),
        ..Default::default()
    };
    auth.create_client("acme", settings).await.unwrap().0
}
