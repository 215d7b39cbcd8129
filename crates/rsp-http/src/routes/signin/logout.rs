//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): `GET/POST /t/{tenant}/oauth2/logout`.
//!
//! A client sends the browser here with `id_token_hint`, `client_id`, `post_logout_redirect_uri`, `state`
//! and `ui_locales`, in the query or (§2) form-encoded in a POST body; `rsp_oauth::logout` validates them.
//! When the hint is an ID token of the browser's current session the session ends at once; otherwise
//! the user confirms on a page whose form carries a CSRF token bound to the session cookie and must come
//! from our `Origin`. A POST carrying `decision` is that confirmation; any other POST is a client's
//! request. Ending the session deletes its row and clears the cookie; then a 303 to the registered
//! `post_logout_redirect_uri` (with `state`), or a "You are signed out" page. A target that is not
//! registered is never followed: the request is refused on a page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use rsp_core::TenantId;
use rsp_oauth::logout::{LogoutError, LogoutRequest};
use rsp_oauth::{FormParams, OAuthError, SignedInUser};

use super::page::{Page, button};
use super::{FORM_EXPIRED, cookie_names, cookies, current_user, form_accepted, internal_page, see_other};
use crate::router::AppState;
use crate::routes::path::TenantPath;

/// The label of the confirmation form's CSRF token.
const FORM: &str = "logout";

pub async fn show(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    request(&state, &tenant, query.as_deref().unwrap_or_default(), &headers).await
}

pub async fn submit(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(raw) = std::str::from_utf8(&body) else {
        return refused(StatusCode::BAD_REQUEST, "the request is not valid UTF-8");
    };
    if form_urlencoded::parse(raw.as_bytes()).any(|(name, _)| name == "decision") {
        confirm(&state, &tenant, raw, &headers).await
    } else {
        request(&state, &tenant, raw, &headers).await
    }
}

/// A client's logout request: validated, then ended at once, confirmed on a page, or (without a
/// session) simply completed.
async fn request(state: &AppState, tenant: &TenantId, raw: &str, headers: &HeaderMap) -> Response {
    let request = match validate(state, tenant, raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let session = cookies::read(headers, cookie_names(state).session());
    let user = match current_user(state, tenant, headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match (session, user) {
        (Some(cookie), Some(user)) if request.hint_matches(&user) => end(state, &request, &cookie, &user).await,
        (Some(cookie), Some(_)) => confirmation_page(state, tenant, &request, &cookie),
        _ => finish(state, &request),
    }
}

/// The confirmation form's answer: only from our own page (CSRF token of this session, our `Origin`).
async fn confirm(state: &AppState, tenant: &TenantId, raw: &str, headers: &HeaderMap) -> Response {
    let session = cookies::read(headers, cookie_names(state).session()).unwrap_or_default();
    let posted = |name: &str| form_urlencoded::parse(raw.as_bytes()).find(|(n, _)| n == name).map(|(_, v)| v);
    let csrf = posted("csrf").unwrap_or_default();
    if !form_accepted(state, headers, FORM, &session, &csrf) {
        return refused(StatusCode::FORBIDDEN, FORM_EXPIRED);
    }
    let decision = posted("decision").unwrap_or_default();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form_urlencoded::parse(raw.as_bytes()).filter(|(n, _)| n != "csrf" && n != "decision"))
        .finish();
    let request = match validate(state, tenant, &form).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let user = match current_user(state, tenant, headers).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    match (decision.as_ref(), user) {
        ("logout", Some(user)) => end(state, &request, &session, &user).await,
        ("logout", None) => finish(state, &request),
        ("stay", _) => Page::default()
            .heading("You are still signed in")
            .paragraph("You can close this window.")
            .render("Signed in", StatusCode::OK),
        _ => refused(StatusCode::BAD_REQUEST, "choose to sign out or to stay signed in"),
    }
}

async fn validate(state: &AppState, tenant: &TenantId, raw: &str) -> Result<LogoutRequest, Response> {
    let pairs = form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    let params = FormParams::from_pairs(pairs).map_err(|e| refused(StatusCode::BAD_REQUEST, &e.to_string()))?;
    match state.auth.validate_logout(tenant, &params).await {
        Ok(request) => Ok(request),
        Err(LogoutError::Invalid(why)) => Err(refused(StatusCode::BAD_REQUEST, why)),
        Err(LogoutError::Internal(OAuthError::UnknownTenant)) => Err(refused(StatusCode::NOT_FOUND, "unknown tenant")),
        Err(LogoutError::Internal(cause)) => Err(internal_page(&cause)),
    }
}

/// Ends the session, clears its cookie, and finishes.
async fn end(state: &AppState, request: &LogoutRequest, cookie: &str, user: &SignedInUser) -> Response {
    if let Err(error) = state.auth.log_out(request, cookie, user).await {
        return internal_page(&error);
    }
    finish(state, request)
}

/// The registered target with `state`, or the signed-out page; the session cookie is cleared either way
/// (it names no live session any more, or never did).
fn finish(state: &AppState, request: &LogoutRequest) -> Response {
    let mut response = match request.redirect_location() {
        Some(location) => see_other(&location),
        None => Page::default()
            .heading("You are signed out")
            .paragraph("You can close this window.")
            .render("Signed out", StatusCode::OK),
    };
    let names = cookie_names(state);
    if let Some(clear) = names.clear(names.session()) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

fn confirmation_page(state: &AppState, tenant: &TenantId, request: &LogoutRequest, session: &str) -> Response {
    let csrf = state.auth.form_token(FORM, session);
    let fields = request.form_fields();
    let mut hidden: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
    hidden.push(("csrf", &csrf));
    let buttons = [
        "<div>".to_owned(),
        button("decision", "logout", "Sign out", true, true),
        button("decision", "stay", "Stay signed in", false, false),
        "</div>".to_owned(),
    ]
    .concat();
    let question = match &request.client {
        Some(client) => format!("{} asks to sign you out. Sign out?", client.name),
        None => "Sign out of your account?".to_owned(),
    };
    Page::default()
        .heading("Sign out")
        .paragraph(&question)
        .form(&state.auth.issuers().endpoint(tenant, "/oauth2/logout"), &hidden, &buttons)
        .render("Sign out", StatusCode::OK)
}

/// A refused logout request: a page, never a redirect.
fn refused(status: StatusCode, message: &str) -> Response {
    Page::default().heading("Sign-out request refused").error(message).render("Error", status)
}
