//! The login page: a username and password form whose CSRF token is a MAC of a pre-session cookie
//! (BCP 4.7), checked with the `Origin` before any password is hashed. Every failed attempt gets the
//! same page and the same 401, whatever the reason (PWD-5); a throttled one gets 429. For a user with
//! TOTP a right password only leads on to the second step ([`super::totp`]).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rsp_core::{Secret, TenantId};
use rsp_oauth::AuthService;
use rsp_oauth::sessions::PENDING_LIFETIME_SECS;
use rsp_oauth::users::LoginError;

use super::page::{Page, button, error_page, input, read_fields};
use super::resume;
use super::{FORM_EXPIRED, client_ip, cookie_names, form_accepted, internal_page, pending_id};
use crate::client_address::ClientAddress;
use crate::router::AppState;
use crate::routes::path::TenantPath;

/// The label of the form's CSRF token.
const FORM: &str = "login";
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
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        read_fields(
            body,
            &mut [
                ("pending", &mut form.pending),
                ("csrf", &mut form.csrf),
                ("username", &mut form.username),
                ("password", &mut form.password),
            ],
        );
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
    let parked = match resume::find(&state, &tenant, &pending).await {
        Ok(parked) => parked,
        Err(response) => return response,
    };
    // OIDC Core §3.1.2.1: `login_hint` may prefill the username (only a value that could be one).
    let hint = match &parked {
        resume::Parked::Authorization(request) => request.login_hint.as_deref(),
        resume::Parked::Account(_) => None,
    }
    .filter(|hint| rsp_core::Username::parse(hint).is_ok())
    .unwrap_or_default();
    let names = cookie_names(&state);
    let existing = super::cookies::read(&headers, names.pre_session());
    let pre_session = existing.clone().unwrap_or_else(AuthService::new_pre_session);
    let mut response = form(&state, &tenant, &pending, &pre_session, hint, None, StatusCode::OK);
    if existing.is_none()
        && let Some(cookie) = names.set(names.pre_session(), &pre_session, PENDING_LIFETIME_SECS)
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
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
    let csrf = state.auth.form_token(FORM, pre_session);
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
    client: Option<axum::Extension<ClientAddress>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let posted = LoginForm::parse(&body);
    let names = cookie_names(&state);
    let pre_session = super::cookies::read(&headers, names.pre_session()).unwrap_or_default();
    if !form_accepted(&state, &headers, FORM, &pre_session, &posted.csrf) {
        return error_page(StatusCode::FORBIDDEN, FORM_EXPIRED);
    }
    let parked = match resume::find(&state, &tenant, &posted.pending).await {
        Ok(parked) => parked,
        Err(response) => return response,
    };
    let ip = client_ip(client.as_ref().map(|axum::Extension(address)| address));
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
    // With TOTP, the password alone starts no session: the second step finishes the login.
    match state.auth.second_factor_required(&tenant, &user.user_id).await {
        Ok(true) => return super::totp::challenge(&state, &tenant, &posted.pending, &pre_session, &user).await,
        Ok(false) => {}
        Err(error) => return internal_page(&error),
    }
    resume::start_session_and_continue(&state, &tenant, &headers, &posted.pending, &parked, &user).await
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm").field("username", &self.username).finish_non_exhaustive()
    }
}
