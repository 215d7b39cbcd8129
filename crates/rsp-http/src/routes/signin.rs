//! The authorization endpoint and the pages a person sees while signing in (RFC 6749 §4.1, OIDC Core
//! §3.1.2): `GET/POST /t/{tenant}/oauth2/authorize`, the login page and the consent page.
//!
//! The request is validated by `rsp_oauth` each time it is looked at. Errors that must not be redirected
//! (unknown client, unregistered redirect URI) are rendered as a page; the rest go to the redirect URI
//! with `state` and `iss`. While the user logs in or consents, the request is parked server-side and
//! the pages carry only its opaque id. Every redirect is a 303 (BCP 4.12), so a browser never re-posts
//! the credentials to the client. `prompt=none` never renders a page.
//!
//! # Layout
//! - this file: the endpoint and the steps shared by the pages (resume, consent check, code issuance);
//! - [`login`]: the login form (CSRF token bound to a pre-session cookie, Origin check);
//! - [`consent`]: the consent form; [`page`]: escaped HTML and the page headers; [`cookies`].
//! - [`logout`]: RP-initiated logout; [`password`]: the signed-in user's password change.
//! - [`totp`]: the login's TOTP step; [`totp_account`]: TOTP set-up and removal; `resume`: where a
//!   sign-in continues once the user is authenticated (shared by the login and TOTP pages).

pub mod consent;
pub mod cookies;
pub mod login;
pub mod logout;
pub mod page;
pub mod password;
pub(crate) mod resume;
pub mod totp;
pub mod totp_account;

use std::net::IpAddr;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use rsp_core::TenantId;
use rsp_oauth::authorize::{AuthorizationRequest, AuthorizeError};
use rsp_oauth::{FormParams, SignedInUser};

use super::path::TenantPath;
use crate::client_address::ClientAddress;
use crate::router::AppState;
use cookies::CookieNames;
use page::{error_page, with_page_headers};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/oauth2/authorize", get(authorize_get).post(authorize_post))
        .route("/t/{tenant}/oauth2/login", get(login::show).post(login::submit))
        .route("/t/{tenant}/oauth2/login/totp", get(totp::show).post(totp::submit))
        .route("/t/{tenant}/account/totp", get(totp_account::show).post(totp_account::submit))
        .route("/t/{tenant}/oauth2/consent", get(consent::show).post(consent::submit))
        .route("/t/{tenant}/oauth2/logout", get(logout::show).post(logout::submit))
        .route("/t/{tenant}/account/password", get(password::show).post(password::submit))
        .route(page::STYLESHEET_PATH, get(stylesheet))
}

async fn stylesheet() -> Response {
    let headers = [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")];
    (headers, page::STYLESHEET).into_response()
}

async fn authorize_get(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    authorize(&state, &tenant, &query.unwrap_or_default(), &headers).await
}

/// OIDC Core §3.1.2.1: the endpoint also accepts the parameters form-encoded in a POST body.
async fn authorize_post(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match std::str::from_utf8(&body) {
        Ok(raw) => authorize(&state, &tenant, raw, &headers).await,
        Err(_) => error_page(StatusCode::BAD_REQUEST, "the request is not valid UTF-8"),
    }
}

async fn authorize(state: &AppState, tenant: &TenantId, raw: &str, headers: &HeaderMap) -> Response {
    let request = match validate(state, tenant, raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let user = match current_user(state, tenant, headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match user {
        Some(user) if !request.needs_login(Some(&user), state.auth.now()) => {
            continue_signed_in(state, &request, &user, Pending::NotYet(raw)).await
        }
        _ if request.prompt.none => see_other(&request.error("login_required", "the user is not signed in").location()),
        _ => match state.auth.park_authorization(tenant, raw).await {
            Ok(id) => see_other(&page_url(state, tenant, "login", &id)),
            Err(error) => internal_page(&error),
        },
    }
}

/// A request waiting for the pages, or not parked yet.
pub(crate) enum Pending<'a> {
    /// Not parked: these are its raw parameters.
    NotYet(&'a str),
    /// Parked under this id.
    Parked(&'a str),
}

/// Parses and validates the raw parameters; a response (error page or error redirect) when they fail.
pub(crate) async fn validate(state: &AppState, tenant: &TenantId, raw: &str) -> Result<AuthorizationRequest, Response> {
    let pairs = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    let params = FormParams::from_pairs(pairs).map_err(|e| error_page(StatusCode::BAD_REQUEST, &e.to_string()))?;
    state.auth.validate_authorization(tenant, &params).await.map_err(|e| authorize_error(&e))
}

/// The signed-in user of the session cookie, if any.
pub(crate) async fn current_user(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
) -> Result<Option<SignedInUser>, Response> {
    let names = cookie_names(state);
    let Some(cookie) = cookies::read(headers, names.session()) else { return Ok(None) };
    state.auth.session_user(tenant, &cookie).await.map_err(|e| internal_page(&e))
}

/// With a signed-in user: the consent page when consent is needed, otherwise the code.
pub(crate) async fn continue_signed_in(
    state: &AppState,
    request: &AuthorizationRequest,
    user: &SignedInUser,
    pending: Pending<'_>,
) -> Response {
    let remembered = match state.auth.consent_covers(request, &user.user_id).await {
        Ok(covers) => covers,
        Err(error) => return internal_page(&error),
    };
    if request.prompt.consent || !remembered {
        if request.prompt.none {
            return see_other(&request.error("consent_required", "the user has not consented").location());
        }
        let id = match pending {
            Pending::Parked(id) => id.to_owned(),
            Pending::NotYet(raw) => match state.auth.park_authorization(&request.tenant, raw).await {
                Ok(id) => id,
                Err(error) => return internal_page(&error),
            },
        };
        return see_other(&page_url(state, &request.tenant, "consent", &id));
    }
    issue_code(state, request, user, pending).await
}

/// Issues the code and sends the browser to the client; the parked request, if any, is done with.
pub(crate) async fn issue_code(
    state: &AppState,
    request: &AuthorizationRequest,
    user: &SignedInUser,
    pending: Pending<'_>,
) -> Response {
    let response = match state.auth.issue_code(request, user).await {
        Ok(location) => see_other(&location),
        Err(error) => authorize_error(&error),
    };
    if let Pending::Parked(id) = pending
        && let Err(error) = state.auth.complete_authorization(&request.tenant, id).await
    {
        tracing::warn!(%error, "a completed authorization could not be forgotten; it expires on its own");
    }
    response
}

pub(crate) fn authorize_error(error: &AuthorizeError) -> Response {
    match error {
        AuthorizeError::Untrusted(why) => error_page(StatusCode::BAD_REQUEST, why),
        AuthorizeError::Redirect(redirect) => see_other(&redirect.location()),
        AuthorizeError::Internal(rsp_oauth::OAuthError::UnknownTenant) => {
            error_page(StatusCode::NOT_FOUND, "unknown tenant")
        }
        AuthorizeError::Internal(cause) => internal_page(cause),
    }
}

/// A 303 (BCP 4.12: never 307, which would re-post the form to the client) with the page headers.
pub(crate) fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => with_page_headers((StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response()),
        Err(_) => internal_page(&"a redirect location is not a valid header"),
    }
}

pub(crate) fn internal_page(cause: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %cause, "sign-in request failed");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "the server could not complete the request")
}

pub(crate) fn cookie_names(state: &AppState) -> CookieNames {
    CookieNames::for_issuer(state.auth.issuers().base())
}

/// The login or consent page of a parked request. The id is a base64url token: no escaping needed.
pub(crate) fn page_url(state: &AppState, tenant: &TenantId, page: &str, id: &str) -> String {
    format!("{}?pending={id}", state.auth.issuers().endpoint(tenant, &format!("/oauth2/{page}")))
}

/// What a refused form post is told (a stale page, or a post that is not ours: the same answer).
pub(crate) const FORM_EXPIRED: &str = "this form has expired; go back and try again";

/// Whether a posted form may be acted on (BCP 4.7): it comes from our own pages ([`same_origin`]) and
/// carries the CSRF token of `form` for the browser's `cookie`.
pub(crate) fn form_accepted(state: &AppState, headers: &HeaderMap, form: &str, cookie: &str, token: &str) -> bool {
    same_origin(state, headers) && state.auth.form_token_matches(form, cookie, token)
}

/// Whether a form post comes from our own pages: its `Origin`, which browsers send with every POST,
/// must be the issuer's origin. A request without `Origin` (not a browser) still needs the CSRF token.
pub(crate) fn same_origin(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let base = state.auth.issuers().base();
    let ours = base.find("://").and_then(|at| base.get(at + 3..)).map_or(base, |rest| {
        let host_end = rest.find('/').unwrap_or(rest.len());
        base.get(..base.len() - rest.len() + host_end).unwrap_or(base)
    });
    origin.to_str().is_ok_and(|value| value == ours)
}

/// The client's address as the [`client_address`](crate::client_address) middleware resolved it (the
/// peer, or whom a trusted proxy forwarded for); in-process tests without a socket share one address.
pub(crate) fn client_ip(client: Option<&ClientAddress>) -> IpAddr {
    client.copied().unwrap_or(ClientAddress::UNKNOWN).0
}

/// The `pending` query parameter of a page.
pub(crate) fn pending_id(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(name, _)| name == "pending")
        .map(|(_, value)| value.into_owned())
        .filter(|value| !value.is_empty() && value.len() <= 64)
}
