//! The login page: a username and password form whose CSRF token is a MAC of a pre-session cookie
//! (BCP 4.7), checked with the `Origin` before any password is hashed. Every failed attempt gets the
//! same page and the same 401, whatever the reason (PWD-5); a throttled one gets 429.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rsp_core::{Secret, TenantId};
use rsp_oauth::AuthService;
use rsp_oauth::sessions::{PENDING_LIFETIME_SECS, SESSION_LIFETIME_SECS};
use rsp_oauth::users::LoginError;

use super::page::{Page, button, error_page, input};
use super::{Pending, client_ip, continue_signed_in, cookie_names, internal_page, pending_id, same_origin, validate};
use crate::router::AppState;
use crate::routes::path::TenantPath;

const GENERIC_FAILURE: &str = "Invalid username or password.";

/// The posted form. Its `Debug` never shows the password.
#[derive(Default)]
pub struct LoginForm {
    pending: String,
    csrf: String,
    username: String,
    password: String,
}

impl LoginForm {
    /// Unknown fields are ignored; a repeated one keeps its last value.
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            let slot = match name.as_ref() {
                "pending" => &mut form.pending,
                "csrf" => &mut form.csrf,
                "username" => &mut form.username,
                "password" => &mut form.password,
                _ => continue,
            };
            *slot = value.into_owned();
        }
        form
    }
}

pub async fn show(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(pending) = pending_id(query.as_deref()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this sign-in link is incomplete; start again from the application",
        );
    };
    match state.auth.parked_authorization(&tenant, &pending).await {
        Ok(Some(_)) => {}
        Ok(None) => return expired(),
        Err(error) => return internal_page(&error),
    }
    let names = cookie_names(&state);
    let existing = super::cookies::read(&headers, names.pre_session());
    let pre_session = existing.clone().unwrap_or_else(AuthService::new_pre_session);
    let mut response = form(&state, &tenant, &pending, &pre_session, "", None, StatusCode::OK);
    if existing.is_none()
        && let Some(cookie) = names.set(names.pre_session(), &pre_session, PENDING_LIFETIME_SECS)
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn expired() -> Response {
    error_page(StatusCode::BAD_REQUEST, "this sign-in request has expired; start again from the application")
}

fn form(
    state: &AppState,
    tenant: &TenantId,
    pending: &str,
    pre_session: &str,
    username: &str,
    failure: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = state.auth.csrf_token(pre_session);
    let action = state.auth.issuers().endpoint(tenant, "/oauth2/login");
    let fields = [
        input("username", "Username", "text", username, "username", username.is_empty()),
        input("password", "Password", "password", "", "current-password", !username.is_empty()),
        button("action", "login", "Sign in", true, false),
    ]
    .concat();
    let mut page = Page::default().heading("Sign in");
    if let Some(message) = failure {
        page = page.error(message);
    }
    page.form(&action, &[("pending", pending), ("csrf", &csrf)], &fields).render("Sign in", status)
}

pub async fn submit(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    connect: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let posted = LoginForm::parse(&body);
    let names = cookie_names(&state);
    let pre_session = super::cookies::read(&headers, names.pre_session()).unwrap_or_default();
    if !same_origin(&state, &headers) || !state.auth.csrf_token_matches(&pre_session, &posted.csrf) {
        return error_page(StatusCode::FORBIDDEN, "this form has expired; go back and try again");
    }
    let raw = match state.auth.parked_authorization(&tenant, &posted.pending).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return expired(),
        Err(error) => return internal_page(&error),
    };
    let request = match validate(&state, &tenant, &raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let ip = client_ip(connect.as_ref().map(|axum::Extension(info)| info));
    let password = Secret::new(posted.password);
    let user = match state.auth.authenticate_user(&tenant, &posted.username, &password, ip).await {
        Ok(user) => user,
        Err(LoginError::InvalidCredentials | LoginError::InvalidInput(_)) => {
            let status = StatusCode::UNAUTHORIZED;
            return form(
                &state,
                &tenant,
                &posted.pending,
                &pre_session,
                &posted.username,
                Some(GENERIC_FAILURE),
                status,
            );
        }
        Err(LoginError::Throttled { .. }) => {
            let message = "Too many failed sign-in attempts. Wait a few minutes and try again.";
            let status = StatusCode::TOO_MANY_REQUESTS;
            return form(&state, &tenant, &posted.pending, &pre_session, &posted.username, Some(message), status);
        }
        Err(LoginError::UnknownTenant) => return error_page(StatusCode::NOT_FOUND, "unknown tenant"),
        Err(error @ LoginError::Internal(_)) => return internal_page(&error),
    };
    if let Some(old) = super::cookies::read(&headers, names.session())
        && let Err(error) = state.auth.end_session(&tenant, &old).await
    {
        return internal_page(&error);
    }
    let (cookie, signed_in) = match state.auth.start_session(&tenant, &user).await {
        Ok(started) => started,
        Err(error) => return internal_page(&error),
    };
    let mut response = continue_signed_in(&state, &request, &signed_in, Pending::Parked(&posted.pending)).await;
    let set = [names.set(names.session(), &cookie, SESSION_LIFETIME_SECS), names.clear(names.pre_session())];
    for value in set.into_iter().flatten() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("username", &self.username).finish_non_exhaustive()
    }
}
