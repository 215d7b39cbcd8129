//! The self-service password change: `GET/POST /t/{tenant}/account/password` (PWD-6).
//!
//! Only for a live session; the form's CSRF token is a MAC of the session cookie under its own label and
//! the POST must come from our `Origin`. The current password is required and a wrong one counts as a
//! failed login for the throttle. After the change every grant and session of the user has ended
//! (`rsp_oauth::users::change`); this browser gets a fresh session with the same authentication, so the
//! person who just proved the password stays signed in here and nowhere else. Then a 303 back to the page.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rsp_core::{Secret, TenantId, UserId};
use rsp_oauth::SignedInUser;
use rsp_oauth::users::{AuthenticatedUser, PasswordChangeError};

use super::page::{Page, button, input, read_fields};
use super::{FORM_EXPIRED, client_ip, cookie_names, cookies, current_user, form_accepted, internal_page, see_other};
use crate::client_address::ClientAddress;
use crate::router::AppState;
use crate::routes::path::TenantPath;

/// The label of the form's CSRF token.
const FORM: &str = "password";
const WRONG_PASSWORD: &str = "The current password is not correct.";

/// The posted form. Its `Debug` never shows the passwords.
#[derive(Default)]
struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

impl PasswordForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        read_fields(
            body,
            &mut [
                ("csrf", &mut form.csrf),
                ("current_password", &mut form.current_password),
                ("new_password", &mut form.new_password),
            ],
        );
        form
    }
}

impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

pub async fn show(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let (session, _) = match signed_in(&state, &tenant, &headers).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let changed = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).any(|(name, _)| name == "changed");
    let notice = changed.then_some("Your password has been changed. You are signed out everywhere else.");
    form(&state, &tenant, &session, notice, None, StatusCode::OK)
}

pub async fn submit(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    client: Option<axum::Extension<ClientAddress>>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let posted = PasswordForm::parse(&body);
    let session = cookies::read(&headers, cookie_names(&state).session()).unwrap_or_default();
    if !form_accepted(&state, &headers, FORM, &session, &posted.csrf) {
        return refused(StatusCode::FORBIDDEN, FORM_EXPIRED);
    }
    let (session, user) = match signed_in(&state, &tenant, &headers).await {
        Ok(signed_in) => signed_in,
        Err(response) => return response,
    };
    let Ok(user_id) = UserId::parse(user.user_id.as_str()) else {
        return internal_page(&"a session names a user id that does not parse");
    };
    let ip = client_ip(client.as_ref().map(|axum::Extension(address)| address));
    let (current, new) = (Secret::new(posted.current_password), Secret::new(posted.new_password));
    let changed = match state.auth.change_own_password(&tenant, &user_id, &current, &new, ip).await {
        Ok(changed) => changed,
        Err(PasswordChangeError::WrongPassword) => {
            return form(&state, &tenant, &session, None, Some(WRONG_PASSWORD), StatusCode::UNAUTHORIZED);
        }
        Err(PasswordChangeError::Throttled { .. }) => {
            let message = "Too many failed attempts. Wait a few minutes and try again.";
            return form(&state, &tenant, &session, None, Some(message), StatusCode::TOO_MANY_REQUESTS);
        }
        Err(PasswordChangeError::Rejected(why)) => {
            let message = format!("The new password was refused: {why}.");
            return form(&state, &tenant, &session, None, Some(&message), StatusCode::BAD_REQUEST);
        }
        Err(error @ PasswordChangeError::Internal(_)) => return internal_page(&error),
    };
    // Every session of the user has ended, this one too; this browser continues in a new one.
    let continued = AuthenticatedUser {
        user_id,
        username: changed.username.as_str().to_owned(),
        auth_time: user.auth_time,
        amr: user.amr,
    };
    let cookie = match state.auth.start_session(&tenant, &continued).await {
        Ok((cookie, _)) => cookie,
        Err(error) => return internal_page(&error),
    };
    let mut response = see_other(&format!("{}?changed", state.auth.issuers().endpoint(&tenant, "/account/password")));
    let names = cookie_names(&state);
    if let Some(set) = names.set(names.session(), &cookie, state.auth.session_lifetime_secs()) {
        response.headers_mut().append(header::SET_COOKIE, set);
    }
    response
}

/// The session cookie and its live user, or the page that says a session is needed.
async fn signed_in(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
) -> Result<(String, SignedInUser), Response> {
    let session = cookies::read(headers, cookie_names(state).session());
    match (session, current_user(state, tenant, headers).await?) {
        (Some(session), Some(user)) => Ok((session, user)),
        _ => Err(refused(
            StatusCode::UNAUTHORIZED,
            "you are not signed in; sign in through your application, then come back",
        )),
    }
}

fn form(
    state: &AppState,
    tenant: &TenantId,
    session: &str,
    notice: Option<&str>,
    failure: Option<&str>,
    status: StatusCode,
) -> Response {
    let csrf = state.auth.form_token(FORM, session);
    let action = state.auth.issuers().endpoint(tenant, "/account/password");
    let fields = [
        input("current_password", "Current password", "password", "", "current-password", true),
        input("new_password", "New password", "password", "", "new-password", false),
        button("action", "change", "Change password", true, false),
    ]
    .concat();
    let mut page = Page::default().heading("Change your password");
    if let Some(notice) = notice {
        page = page.paragraph(notice);
    }
    if let Some(message) = failure {
        page = page.error(message);
    }
    page.form(&action, &[("csrf", &csrf)], &fields).render("Change password", status)
}

fn refused(status: StatusCode, message: &str) -> Response {
    Page::default().heading("Request refused").error(message).render("Error", status)
}
