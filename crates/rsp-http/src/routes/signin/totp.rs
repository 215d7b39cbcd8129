//! The login's second step, `GET/POST /t/{tenant}/oauth2/login/totp`: after a right password for a user
//! with TOTP, the login page parks a challenge bound to the browser's pre-session cookie and sends the
//! browser here. The form takes a 6-digit code or a recovery code; its CSRF token is a MAC of the
//! pre-session cookie under this form's own label (BCP 4.7) and the POST must come from our `Origin`.
//! Wrong codes re-show the form with one message; after five, every attempt waits (HOTP-7.3).

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rsp_core::{Secret, TenantId};
use rsp_oauth::mfa::MfaError;
use rsp_oauth::users::AuthenticatedUser;

use super::page::{Page, button, code_input, error_page, read_fields};
use super::resume::{self, start_session_and_continue};
use super::{
    FORM_EXPIRED, client_ip, cookie_names, cookies, form_accepted, internal_page, page_url, pending_id, see_other,
};
use crate::client_address::ClientAddress;
use crate::router::AppState;
use crate::routes::path::TenantPath;

/// The label of the form's CSRF token.
const FORM: &str = "login-totp";
/// The page, relative to `/oauth2/`.
const PAGE: &str = "login/totp";

/// The posted form. Its `Debug` never shows the code.
#[derive(Default)]
struct TotpForm {
    pending: String,
    csrf: String,
    code: String,
}

impl TotpForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        read_fields(body, &mut [("pending", &mut form.pending), ("csrf", &mut form.csrf), ("code", &mut form.code)]);
        form
    }
}

impl std::fmt::Debug for TotpForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpForm").finish_non_exhaustive()
    }
}

/// Called by the login page when the password was right and the user has TOTP: parks the challenge and
/// sends the browser to this page (303), keeping the pre-session cookie.
pub(crate) async fn challenge(
    state: &AppState,
    tenant: &TenantId,
    pending: &str,
    pre_session: &str,
    user: &AuthenticatedUser,
) -> Response {
    match state.auth.begin_second_factor(tenant, user, pre_session).await {
        Ok(()) => see_other(&page_url(state, tenant, PAGE, pending)),
        Err(error) => internal_page(&error),
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
    let pre_session = cookies::read(&headers, cookie_names(&state).pre_session()).unwrap_or_default();
    match state.auth.second_factor_pending(&tenant, &pre_session).await {
        Ok(true) => form(&state, &tenant, &pending, &pre_session, None, StatusCode::OK),
        Ok(false) => see_other(&page_url(&state, &tenant, "login", &pending)),
        Err(error) => internal_page(&error),
    }
}

fn form(
    state: &AppState,
    tenant: &TenantId,
    pending: &str,
    pre_session: &str,
    failure: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = state.auth.form_token(FORM, pre_session);
    let action = state.auth.issuers().endpoint(tenant, &format!("/oauth2/{PAGE}"));
    let fields =
        [code_input("code", "Authentication code"), button("action", "verify", "Verify", true, false)].concat();
    let mut page = Page::default()
        .heading("Two-step verification")
        .paragraph("Enter the 6-digit code from your authenticator app, or one of your recovery codes.");
    if let Some(message) = failure {
        page = page.error(message);
    }
    page.form(&action, &[("pending", pending), ("csrf", &csrf)], &fields).render("Two-step verification", status)
}

pub async fn submit(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    client: Option<axum::Extension<ClientAddress>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let posted = TotpForm::parse(&body);
    let pre_session = cookies::read(&headers, cookie_names(&state).pre_session()).unwrap_or_default();
    if !form_accepted(&state, &headers, FORM, &pre_session, &posted.csrf) {
        return error_page(StatusCode::FORBIDDEN, FORM_EXPIRED);
    }
    let parked = match resume::find(&state, &tenant, &posted.pending).await {
        Ok(parked) => parked,
        Err(response) => return response,
    };
    let ip = client_ip(client.as_ref().map(|axum::Extension(address)| address));
    let code = Secret::new(posted.code);
    let refuse = |message: &str, status| form(&state, &tenant, &posted.pending, &pre_session, Some(message), status);
    match state.auth.complete_second_factor(&tenant, &pre_session, &code, ip).await {
        Ok(user) => start_session_and_continue(&state, &tenant, &headers, &posted.pending, &parked, &user).await,
        Err(MfaError::InvalidCode) => refuse("Invalid authentication code.", StatusCode::UNAUTHORIZED),
        Err(MfaError::Throttled { .. }) => {
            refuse("Too many wrong codes. Wait a few minutes and try again.", StatusCode::TOO_MANY_REQUESTS)
        }
        Err(MfaError::Expired | MfaError::NotEnabled) => {
            see_other(&page_url(&state, &tenant, "login", &posted.pending))
        }
        Err(error) => internal_page(&error),
    }
}
