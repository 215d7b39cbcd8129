//! The authorization endpoint's domain (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 9700): validating a
//! request, and issuing a code once the caller (the pages: login, consent) has a signed-in user.
//!
//! Errors come in two kinds (RFC 6749 §4.1.2.1): while the client or its `redirect_uri` is not yet
//! trusted, an error must be shown on a page and never redirected ([`AuthorizeError::Untrusted`]); after,
//! it goes back to the redirect URI with `state` and `iss` ([`AuthorizeError::Redirect`]). Every response
//! to the redirect URI carries `iss` (RFC 9207), the defence against mix-up attacks.

pub mod redirect_uri;

use std::sync::Arc;

use rsp_core::grant::{AuthorizationCode, Consent, Grant};
use rsp_core::{Client, GrantType, ScopeSet, TenantId, UnixTime};

use crate::audience::resolve_audience;
use crate::crypto::random_token;
use crate::sign_in::SignedInUser;
use crate::{AuthService, FormParams, OAuthError, pkce};

/// `openid`: the request is an OpenID Connect authentication (an ID token will be issued).
pub const OPENID_SCOPE: &str = "openid";
/// `offline_access`: a refresh token is wanted (OIDC Core §11).
pub const OFFLINE_ACCESS_SCOPE: &str = "offline_access";
/// The longest `state` or `nonce` accepted: values are echoed back, so their size is bounded.
const MAX_ECHOED_LEN: usize = 512;

/// The `prompt` values of OIDC Core §3.1.2.1 (`select_account` is accepted and means nothing here).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Show no page: answer `login_required`/`consent_required` when one would be needed.
    pub none: bool,
    /// Authenticate again even with a live session.
    pub login: bool,
    /// Ask for consent again even if it is remembered.
    pub consent: bool,
}

/// A validated authorization request: every field has been checked against the client's registration.
#[derive(Clone, Debug)]
pub struct AuthorizationRequest {
    pub tenant: TenantId,
    pub client: Arc<Client>,
    /// Exactly as sent (it matched a registered URI), for the token endpoint's comparison.
    pub redirect_uri: String,
    pub state: Option<String>,
    pub scope: ScopeSet,
    /// The resource the tokens will be for (RFC 8707).
    pub audience: String,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    pub code_challenge: String,
    /// The user an `id_token_hint` names: only that user may receive a code (OIDC Core §3.1.2.2).
    pub hinted_subject: Option<String>,
    /// The issuer, sent as `iss` with every response (RFC 9207).
    pub issuer: String,
}

/// An error for the client's redirect URI (RFC 6749 §4.1.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub error: &'static str,
    pub description: String,
    pub state: Option<String>,
    pub iss: String,
}

impl ErrorRedirect {
    /// The `Location` to send the browser to.
    pub fn location(&self) -> String {
        let mut pairs = vec![("error", self.error), ("error_description", self.description.as_str())];
        if let Some(state) = &self.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &self.iss));
        with_query(&self.redirect_uri, &pairs)
    }
}

/// Why an authorization request cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The client or redirect URI is unknown or does not match: show this on a page, never redirect.
    #[error("{0}")]
    Untrusted(String),
    /// Tell the client, at its redirect URI.
    #[error("{}: {}", .0.error, .0.description)]
    Redirect(ErrorRedirect),
    #[error(transparent)]
    Internal(#[from] OAuthError),
}

/// `uri` with `pairs` appended to its query (keeping any query the registered URI had).
pub(crate) fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut serializer = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        serializer.append_pair(name, value);
    }
    let query = serializer.finish();
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{query}")
}

impl AuthorizationRequest {
    /// An error response for this request, to send to its redirect URI (`login_required`,
    /// `consent_required`, `access_denied`, ... decided by the caller).
    pub fn error(&self, error: &'static str, description: impl Into<String>) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            error,
            description: description.into(),
            state: self.state.clone(),
            iss: self.issuer.clone(),
        }
    }

    /// Whether `user` must authenticate (again) before a code may be issued: `prompt=login`, or an
    /// authentication older than `max_age` (OIDC Core §3.1.2.1; `max_age=0` always asks).
    pub fn needs_login(&self, user: Option<&SignedInUser>, now: UnixTime) -> bool {
        match user {
            None => true,
            Some(user) => self.prompt.login || self.max_age == Some(0) || self.authentication_too_old(user, now),
        }
    }

    /// Whether `user` authenticated longer than `max_age` ago. A login that just happened (`auth_time`
    /// = now) satisfies even `max_age=0`.
    pub fn authentication_too_old(&self, user: &SignedInUser, now: UnixTime) -> bool {
        self.max_age.is_some_and(|max| now.0.saturating_sub(user.auth_time.0) > max)
    }

    pub fn wants_offline_access(&self) -> bool {
        self.scope.iter().any(|s| s.as_str() == OFFLINE_ACCESS_SCOPE)
    }
}

/// Parses `prompt`: known values only, and `none` alone (OIDC Core §3.1.2.1).
fn parse_prompt(value: Option<&str>) -> Result<Prompt, &'static str> {
    let mut prompt = Prompt::default();
    let Some(value) = value else {
        return Ok(prompt);
    };
    for item in value.split(' ') {
        match item {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => return Err("prompt has an unknown value"),
        }
    }
    if prompt.none && value.split(' ').count() > 1 {
        return Err("prompt=none cannot be combined with other values");
    }
    Ok(prompt)
}

fn echoed(params: &FormParams, name: &'static str) -> Result<Option<String>, &'static str> {
    match params.get(name) {
        Some(value) if value.len() > MAX_ECHOED_LEN || value.chars().any(char::is_control) => {
            Err("a parameter is too long or has control characters")
        }
        other => Ok(other.map(str::to_owned)),
    }
}

/// The flow itself: `response_type=code` in query mode, no request objects, a client registered for the
/// code flow, and an S256 PKCE challenge (RFC 9700 §2.1.1: required of every client). Returns the
/// challenge, or the error code and description for the redirect URI.
fn check_code_flow<'p>(params: &'p FormParams, client: &Client) -> Result<&'p str, (&'static str, &'static str)> {
    match params.get("response_type") {
        None => return Err(("invalid_request", "response_type is missing")),
        Some("code") => {}
        Some(_) => return Err(("unsupported_response_type", "only response_type=code is supported")),
    }
    if params.get("request").is_some() {
        return Err(("request_not_supported", "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        return Err(("request_uri_not_supported", "request_uri is not supported"));
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(("invalid_request", "only response_mode=query is supported"));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(("unauthorized_client", "this client may not use the authorization code flow"));
    }
    let challenge = params.get("code_challenge").ok_or(("invalid_request", "code challenge required"))?;
    if params.get("code_challenge_method") != Some(pkce::S256) {
        return Err(("invalid_request", "transform algorithm not supported"));
    }
    if !pkce::challenge_is_well_formed(challenge) {
        return Err(("invalid_request", "code_challenge must be 43 base64url characters"));
    }
    Ok(challenge)
}

impl AuthService {
    /// Validates an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636 §4.3).
    #[tracing::instrument(skip_all, fields(tenant = %tenant))]
    pub async fn validate_authorization(
        &self,
        tenant: &TenantId,
        params: &FormParams,
    ) -> Result<AuthorizationRequest, AuthorizeError> {
        let keys = self.keys.for_tenant(tenant).await?;
        let (client, requested) = self.trusted_target(tenant, params).await?;
        // From here on the redirect URI is trusted; `state` is echoed only once it is known to be sane.
        let issuer = self.issuers.issuer(tenant);
        let checked_state = echoed(params, "state");
        let safe_state = checked_state.clone().ok().flatten();
        let fail = |error: &'static str, description: &str| {
            AuthorizeError::Redirect(ErrorRedirect {
                redirect_uri: requested.to_owned(),
                error,
                description: description.to_owned(),
                state: safe_state.clone(),
                iss: issuer.clone(),
            })
        };
        let state = checked_state.map_err(|_| fail("invalid_request", "state is too long or malformed"))?;
        let code_challenge =
            check_code_flow(params, &client).map_err(|(error, description)| fail(error, description))?;
        let prompt = parse_prompt(params.get("prompt")).map_err(|e| fail("invalid_request", e))?;
        let max_age = params
            .get("max_age")
            .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| fail("invalid_request", "bad max_age")))
            .transpose()?;
        let nonce = echoed(params, "nonce").map_err(|e| fail("invalid_request", e))?;
        let login_hint = echoed(params, "login_hint").map_err(|e| fail("invalid_request", e))?;
        let hinted_subject = params
            .get("id_token_hint")
            .map(|hint| {
                crate::id_token::hinted_subject(&keys, hint, &issuer)
                    .ok_or_else(|| fail("invalid_request", "id_token_hint is not an ID token of this issuer"))
            })
            .transpose()?;
        let access = resolve_audience(&self.issuers, tenant, &client, params.get("scope"), params.get("resource"))
            .map_err(|e| match e {
                OAuthError::InvalidScope(m) => fail("invalid_scope", &m),
                OAuthError::InvalidTarget(m) => fail("invalid_target", &m),
                other => AuthorizeError::Internal(other),
            })?;
        Ok(AuthorizationRequest {
            tenant: tenant.clone(),
            client,
            redirect_uri: requested.to_owned(),
            state,
            scope: access.scope,
            audience: access.audience,
            nonce,
            prompt,
            max_age,
            login_hint,
            code_challenge: code_challenge.to_owned(),
            hinted_subject,
            issuer,
        })
    }

    /// The client and the redirect URI, both trusted, or an error that must not be redirected
    /// (RFC 6749 §4.1.2.1): a missing or unknown client, a missing or unregistered redirect URI.
    async fn trusted_target<'p>(
        &self,
        tenant: &TenantId,
        params: &'p FormParams,
    ) -> Result<(Arc<Client>, &'p str), AuthorizeError> {
        let untrusted = |why: &str| AuthorizeError::Untrusted(why.to_owned());
        let client_id = params.get("client_id").ok_or_else(|| untrusted("client_id is missing"))?;
        let client = self.lookup_client(tenant, client_id).await?.ok_or_else(|| untrusted("the client is unknown"))?;
        let requested = params.get("redirect_uri").ok_or_else(|| untrusted("redirect_uri is missing"))?;
        if !client.redirect_uris.iter().any(|registered| redirect_uri::matches(registered, requested)) {
            return Err(untrusted("redirect_uri is not registered for this client"));
        }
        Ok((client, requested))
    }

    /// Issues a code for a validated request and the user who signed in; returns the redirect `Location`
    /// (`code`, `state`, `iss`). The caller has obtained consent. `offline_access` is kept only when
    /// consent was asked explicitly (`prompt=consent`) or is remembered for it, and the client may
    /// refresh (OIDC Core §11); otherwise it is dropped.
    #[tracing::instrument(skip_all, fields(tenant = %request.tenant, client = %request.client.client_id))]
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        user: &SignedInUser,
    ) -> Result<String, AuthorizeError> {
        let now = self.clock.now();
        if !user.has_valid_subject() {
            return Err(OAuthError::Internal("the signed-in user's id is not a valid subject".into()).into());
        }
        if request.hinted_subject.as_ref().is_some_and(|sub| *sub != user.user_id) {
            return Err(AuthorizeError::Redirect(
                request.error("login_required", "the signed-in user is not the hinted one"),
            ));
        }
        if request.authentication_too_old(user, now) {
            return Err(AuthorizeError::Redirect(request.error("login_required", "the authentication is too old")));
        }
        if !self.sign_in_permitted(request, user).await? {
            return Err(AuthorizeError::Redirect(
                request.error("access_denied", "the tenant's policies do not allow this sign-in"),
            ));
        }
        let scope = self.consented_scope(request, &user.user_id).await?;
        let grant_id = random_token(16);
        let code = random_token(32);
        let grant = Grant {
            tenant_id: request.tenant.clone(),
            grant_id: grant_id.clone(),
            client_id: request.client.client_id.clone(),
            subject: user.user_id.clone(),
            scope,
            audience: request.audience.clone(),
            nonce: request.nonce.clone(),
            auth_time: user.auth_time,
            amr: user.amr.clone(),
            acr: user.acr.clone(),
            created_at: now,
            expires_at: now.plus_secs(self.settings.grant_lifetime_secs),
        };
        let stored = AuthorizationCode {
            tenant_id: request.tenant.clone(),
            code_hash: self.hasher.hash(&code),
            grant_id,
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            expires_at: now.plus_secs(self.settings.authorization_code_ttl_secs),
        };
        self.store.create_code(&grant, &stored, &[]).await.map_err(OAuthError::from)?;
        let mut pairs = vec![("code", code.as_str())];
        if let Some(state) = &request.state {
            pairs.push(("state", state));
        }
        pairs.push(("iss", &request.issuer));
        Ok(with_query(&request.redirect_uri, &pairs))
    }

    /// Whether the tenant's Cedar policies let this user sign in to this client (true when they do not
    /// govern sign-in, see [`rsp_core::ports::PolicyGate`]).
    async fn sign_in_permitted(&self, request: &AuthorizationRequest, user: &SignedInUser) -> Result<bool, OAuthError> {
        let Some(gate) = &self.policy_gate else { return Ok(true) };
        let verdict =
            gate.permits_sign_in(&request.tenant, &user.user_id, &request.client.client_id, &user.amr).await?;
        Ok(verdict.unwrap_or(true))
    }

    /// The requested scope, without `offline_access` unless it may be honoured (see [`Self::issue_code`]).
    async fn consented_scope(&self, request: &AuthorizationRequest, user_id: &str) -> Result<ScopeSet, OAuthError> {
        if !request.wants_offline_access() {
            return Ok(request.scope.clone());
        }
        let remembered = || async {
            let consent = self.store.find_consent(&request.tenant, user_id, &request.client.client_id).await?;
            Ok::<_, OAuthError>(consent.is_some_and(|c| c.scope.iter().any(|s| s.as_str() == OFFLINE_ACCESS_SCOPE)))
        };
        let may_refresh = request.client.allows_grant(GrantType::RefreshToken);
        if may_refresh && (request.prompt.consent || remembered().await?) {
            return Ok(request.scope.clone());
        }
        Ok(ScopeSet::from_scopes(request.scope.iter().filter(|s| s.as_str() != OFFLINE_ACCESS_SCOPE).cloned()))
    }

    /// Remembers that `user_id` consented to `scope` for the request's client (the consent page calls
    /// this when the user ticks "remember").
    pub async fn remember_consent(
        &self,
        request: &AuthorizationRequest,
        user_id: &str,
        scope: &ScopeSet,
    ) -> Result<(), OAuthError> {
        let consent = Consent {
            tenant_id: request.tenant.clone(),
            subject: user_id.to_owned(),
            client_id: request.client.client_id.clone(),
            scope: scope.clone(),
            granted_at: self.clock.now(),
        };
        Ok(self.store.save_consent(&consent, &[]).await?)
    }

    /// Whether `user_id` already consented to every scope of the request (so no consent page is needed
    /// unless `prompt=consent`).
    pub async fn consent_covers(&self, request: &AuthorizationRequest, user_id: &str) -> Result<bool, OAuthError> {
        let consent = self.store.find_consent(&request.tenant, user_id, &request.client.client_id).await?;
        Ok(consent.is_some_and(|c| request.scope.difference(&c.scope).next().is_none()))
    }
}
