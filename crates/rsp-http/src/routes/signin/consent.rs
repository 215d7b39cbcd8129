//! The consent page: which client asks for what, allow or deny, and whether to remember the answer.
//! Its CSRF token is a MAC of the session cookie, so only a page this browser's session loaded can post.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use rsp_core::TenantId;

use super::page::{Page, button, checkbox, error_page};
use super::{
    FORM_EXPIRED, Pending, current_user, form_accepted, internal_page, issue_code, page_url, pending_id, see_other,
    validate,
};
use crate::router::AppState;
use crate::routes::path::TenantPath;

/// The label of the form's CSRF token.
const FORM: &str = "consent";
pub async fn show(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(pending) = pending_id(query.as_deref()) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "this consent link is incomplete; start again from the application",
        );
    };
    let names = super::cookie_names(&state);
    let (Some(session), Ok(Some(_user))) =
        (super::cookies::read(&headers, names.session()), current_user(&state, &tenant, &headers).await)
    else {
        return see_other(&page_url(&state, &tenant, "login", &pending));
    };
    let raw = match state.auth.parked_authorization(&tenant, &pending).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return expired(),
        Err(error) => return internal_page(&error),
    };
    let request = match validate(&state, &tenant, &raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    let scopes: Vec<String> = request.scope.iter().map(|s| s.as_str().to_owned()).collect();
    let csrf = state.auth.form_token(FORM, &session);
    let action = state.auth.issuers().endpoint(&tenant, "/oauth2/consent");
    let fields = [
        checkbox("remember", "Remember this decision"),
        "<div>".to_owned(),
        button("decision", "allow", "Allow", true, true),
        button("decision", "deny", "Deny", false, false),
        "</div>".to_owned(),
    ]
    .concat();
    Page::default()
        .heading(&format!("Allow {} to access your account?", request.client.name))
        .paragraph("The application asks for:")
        .list(&scopes)
        .form(&action, &[("pending", &pending), ("csrf", &csrf)], &fields)
        .render("Consent", StatusCode::OK)
}

fn expired() -> Response {
    error_page(StatusCode::BAD_REQUEST, "this sign-in request has expired; start again from the application")
}

/// The posted decision.
#[derive(Debug, Default)]
struct ConsentForm {
    pending: String,
    csrf: String,
    decision: String,
    remember: bool,
}

impl ConsentForm {
    fn parse(body: &[u8]) -> Self {
        let mut form = Self::default();
        for (name, value) in form_urlencoded::parse(body) {
            match name.as_ref() {
                "pending" => form.pending = value.into_owned(),
                "csrf" => form.csrf = value.into_owned(),
                "decision" => form.decision = value.into_owned(),
                "remember" => form.remember = value == "yes",
                _ => {}
            }
        }
        form
    }
}

pub async fn submit(
    State(state): State<AppState>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let posted = ConsentForm::parse(&body);
    let names = super::cookie_names(&state);
    let session = super::cookies::read(&headers, names.session()).unwrap_or_default();
    if !form_accepted(&state, &headers, FORM, &session, &posted.csrf) {
        return error_page(StatusCode::FORBIDDEN, FORM_EXPIRED);
    }
    let user = match current_user(&state, &tenant, &headers).await {
        Ok(Some(user)) => user,
        Ok(None) => return error_page(StatusCode::FORBIDDEN, "you are no longer signed in; start again"),
        Err(response) => return response,
    };
    decide(&state, &tenant, &posted, &user).await
}

async fn decide(state: &AppState, tenant: &TenantId, posted: &ConsentForm, user: &rsp_oauth::SignedInUser) -> Response {
    let raw = match state.auth.parked_authorization(tenant, &posted.pending).await {
        Ok(Some(raw)) => raw,
        Ok(None) => return expired(),
        Err(error) => return internal_page(&error),
    };
    let request = match validate(state, tenant, &raw).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    match posted.decision.as_str() {
        "allow" => {
            if posted.remember
                && let Err(error) = state.auth.remember_consent(&request, &user.user_id, &request.scope).await
            {
                return internal_page(&error);
            }
            issue_code(state, &request, user, Pending::Parked(&posted.pending)).await
        }
        "deny" => {
            if let Err(error) = state.auth.complete_authorization(tenant, &posted.pending).await {
                return internal_page(&error);
            }
            see_other(&request.error("access_denied", "the user denied the request").location())
        }
        _ => error_page(StatusCode::BAD_REQUEST, "choose allow or deny"),
    }
}
