//! TOTP set-up and removal for the signed-in user: `GET/POST /t/{tenant}/account/totp`.
//!
//! Without a live session the page parks its own address and sends the browser through the login page,
//! which comes back here afterwards (`rsp_oauth::account_return`). Every change asks for the current
//! password (PWD-6): starting a set-up shows the QR code (inline SVG, so the CSP stays
//! `default-src 'none'`) and the base32 secret, and a code from the app confirms it; the page after the
//! confirmation shows the ten recovery codes once. Turning TOTP off takes the password and a current
//! code. The form's CSRF token is a MAC of the session cookie under this form's label, the POST must come
//! from our `Origin`, and every successful POST answers 303.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use qrcode::QrCode;
use qrcode::render::svg;
use rsp_core::{Secret, TenantId, UserId};
use rsp_oauth::account_return::AccountPage;
use rsp_oauth::mfa::{MfaError, TotpStatus};

use super::page::{Page, button, code_input, error_page, input, read_fields};
use super::{
    FORM_EXPIRED, client_ip, cookie_names, cookies, current_user, form_accepted, internal_page, page_url, see_other,
};
use crate::client_address::ClientAddress;
use crate::router::AppState;
use crate::routes::path::TenantPath;

/// The label of the form's CSRF token.
const FORM: &str = "account-totp";

/// The posted form. Its `Debug` shows only the action.
#[derive(Default)]
struct AccountForm {
    csrf: String,
    action: String,
    password: String,
    code: String,
}

impl AccountForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        read_fields(
            body,
            &mut [
                ("csrf", &mut form.csrf),
                ("action", &mut form.action),
                ("password", &mut form.password),
                ("code", &mut form.code),
            ],
        );
        form
    }
}

impl std::fmt::Debug for AccountForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountForm").field("action", &self.action).finish_non_exhaustive()
    }
}

/// The signed-in browser: its session cookie and user id.
struct Signed {
    session: String,
    user: UserId,
}

async fn signed_in(state: &AppState, tenant: &TenantId, headers: &HeaderMap) -> Result<Option<Signed>, Response> {
    let session = cookies::read(headers, cookie_names(state).session());
    match (session, current_user(state, tenant, headers).await?) {
        (Some(session), Some(user)) => match UserId::parse(user.user_id.as_str()) {
            Ok(user) => Ok(Some(Signed { session, user })),
            Err(_) => Err(internal_page(&"a session names a user id that does not parse")),
        },
        _ => Ok(None),
    }
}

pub async fn show(State(state): State<AppState>, TenantPath(tenant): TenantPath, headers: HeaderMap) -> Response {
    let signed = match signed_in(&state, &tenant, &headers).await {
        Ok(Some(signed)) => signed,
        Ok(None) => {
            return match state.auth.park_account_return(&tenant, AccountPage::Totp).await {
                Ok(id) => see_other(&page_url(&state, &tenant, "login", &id)),
                Err(error) => internal_page(&error),
            };
        }
        Err(response) => return response,
    };
    let fresh_codes = match state.auth.take_new_recovery_codes(&tenant, &signed.user).await {
        Ok(codes) => codes,
        Err(error) => return internal_page(&error),
    };
    render(&state, &tenant, &signed, fresh_codes.as_deref(), None, StatusCode::OK).await
}

async fn render(
    state: &AppState,
    tenant: &TenantId,
    signed: &Signed,
    fresh_codes: Option<&[String]>,
    failure: Option<&str>,
    status: StatusCode,
) -> Response {
    let totp_status = match state.auth.totp_status(tenant, &signed.user).await {
        Ok(totp_status) => totp_status,
        Err(error) => return internal_page(&error),
    };
    let csrf = state.auth.form_token(FORM, &signed.session);
    let action = state.auth.issuers().endpoint(tenant, AccountPage::Totp.path());
    let hidden = [("csrf", csrf.as_str())];
    let password = || input("password", "Current password", "password", "", "current-password", true);
    let mut page = Page::default().heading("Two-step verification");
    if let Some(message) = failure {
        page = page.error(message);
    }
    let page = match totp_status {
        TotpStatus::Off => {
            let fields = [password(), button("action", "start", "Set up", true, false)].concat();
            page.paragraph("Protect your account with a code from an authenticator app. Enter your password to begin.")
                .form(&action, &hidden, &fields)
        }
        TotpStatus::Pending(pending) => {
            let qr = match qr_svg(&pending.uri) {
                Ok(qr) => qr,
                Err(error) => return internal_page(&error),
            };
            let fields =
                [code_input("code", "Authentication code"), button("action", "confirm", "Confirm", true, false)]
                    .concat();
            page.paragraph("Scan this QR code with your authenticator app, or enter the key below by hand.")
                .generated_markup(&qr)
                .code("totp-secret", &pending.secret.to_base32())
                .paragraph("Then enter the 6-digit code the app shows to finish.")
                .form(&action, &hidden, &fields)
        }
        TotpStatus::On { recovery_codes_left } => {
            let page = match fresh_codes {
                Some(codes) => page
                    .paragraph("Two-step verification is on. Save these recovery codes somewhere safe now: each works once if you lose your device, and they will not be shown again.")
                    .list_with_id("recovery-codes", codes),
                None => page.paragraph(&format!(
                    "Two-step verification is on. You have {recovery_codes_left} unused recovery codes."
                )),
            };
            // The password field takes the focus; the code field comes second.
            let code = code_input("code", "Authentication code").replacen(" autofocus", "", 1);
            let fields = [password(), code, button("action", "disable", "Turn off", false, false)].concat();
            page.paragraph("To turn it off, enter your password and a current code.").form(&action, &hidden, &fields)
        }
    };
    page.render("Two-step verification", status)
}

/// The `otpauth://` URI as an SVG QR code, without the XML prolog (the markup goes inline in HTML).
fn qr_svg(uri: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::new(uri.as_bytes())?;
    let image = code.render::<svg::Color>().min_dimensions(200, 200).build();
    let start = image.find("<svg").unwrap_or(0);
    let markup = image.get(start..).unwrap_or_default();
    Ok(markup.replacen("<svg", "<svg role=\"img\" aria-label=\"QR code of the authenticator key\"", 1))
}

pub async fn submit(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    client: Option<axum::Extension<ClientAddress>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let posted = AccountForm::parse(&body);
    let session = cookies::read(&headers, cookie_names(&state).session()).unwrap_or_default();
    if !form_accepted(&state, &headers, FORM, &session, &posted.csrf) {
        return error_page(StatusCode::FORBIDDEN, FORM_EXPIRED);
    }
    let signed = match signed_in(&state, &tenant, &headers).await {
        Ok(Some(signed)) => signed,
        Ok(None) => return error_page(StatusCode::FORBIDDEN, "you are no longer signed in; start again"),
        Err(response) => return response,
    };
    let ip = client_ip(client.as_ref().map(|axum::Extension(address)| address));
    let (password, code) = (Secret::new(posted.password), Secret::new(posted.code));
    let auth = &state.auth;
    let result = match posted.action.as_str() {
        "start" => auth.start_totp_enrolment(&tenant, &signed.user, &password, ip).await,
        "confirm" => auth.confirm_totp_enrolment(&tenant, &signed.user, &code).await,
        "disable" => auth.disable_totp(&tenant, &signed.user, &password, &code, ip).await,
        _ => return error_page(StatusCode::BAD_REQUEST, "unknown action"),
    };
    let (message, status) = match result {
        Ok(()) | Err(MfaError::AlreadyEnabled) => {
            return see_other(&state.auth.issuers().endpoint(&tenant, AccountPage::Totp.path()));
        }
        Err(MfaError::InvalidPassword) => ("The current password is not correct.", StatusCode::UNAUTHORIZED),
        Err(MfaError::InvalidCode) => ("Invalid authentication code.", StatusCode::UNAUTHORIZED),
        Err(MfaError::Throttled { .. }) => {
            ("Too many failed attempts. Wait a few minutes and try again.", StatusCode::TOO_MANY_REQUESTS)
        }
        Err(MfaError::NoPendingEnrolment | MfaError::NotEnabled | MfaError::Expired) => {
            ("That step has expired; start again.", StatusCode::CONFLICT)
        }
        Err(error @ MfaError::Internal(_)) => return internal_page(&error),
    };
    render(&state, &tenant, &signed, None, Some(message), status).await
}
