//! Where a sign-in continues once the user is authenticated (after the password, or after the second
//! factor): the parked authorization request, or the account page that sent the browser to log in.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rsp_core::TenantId;
use rsp_oauth::account_return::AccountPage;
use rsp_oauth::authorize::AuthorizationRequest;
use rsp_oauth::users::AuthenticatedUser;

use super::page::error_page;
use super::{Pending, continue_signed_in, cookie_names, cookies, internal_page, see_other, validate};
use crate::router::AppState;

/// What a `pending` id stands for.
pub(crate) enum Parked {
    /// An authorization request, validated again just now.
    Authorization(Box<AuthorizationRequest>),
    /// The way back to an account page.
    Account(AccountPage),
}

/// The parked step under `pending`, or the page to answer with (expired, or the request no longer valid).
pub(crate) async fn find(state: &AppState, tenant: &TenantId, pending: &str) -> Result<Parked, Response> {
    match state.auth.parked_authorization(tenant, pending).await {
        Ok(Some(raw)) => return validate(state, tenant, &raw).await.map(|r| Parked::Authorization(Box::new(r))),
        Ok(None) => {}
        Err(error) => return Err(internal_page(&error)),
    }
    match state.auth.parked_account_return(tenant, pending).await {
        Ok(Some(page)) => Ok(Parked::Account(page)),
        Ok(None) => Err(expired()),
        Err(error) => Err(internal_page(&error)),
    }
}

pub(crate) fn expired() -> Response {
    error_page(StatusCode::BAD_REQUEST, "this sign-in request has expired; start again from the application")
}

/// Starts a session for `user` in place of the browser's old one, continues the parked step, sets the
/// session cookie and drops the pre-session cookie.
pub(crate) async fn start_session_and_continue(
    state: &AppState,
    tenant: &TenantId,
    headers: &HeaderMap,
    pending: &str,
    parked: &Parked,
    user: &AuthenticatedUser,
) -> Response {
    let names = cookie_names(state);
    if let Some(old) = cookies::read(headers, names.session())
        && let Err(error) = state.auth.end_session(tenant, &old).await
    {
        return internal_page(&error);
    }
    let (cookie, signed_in) = match state.auth.start_session(tenant, user).await {
        Ok(started) => started,
        Err(error) => return internal_page(&error),
    };
    let mut response = match parked {
        Parked::Authorization(request) => {
            continue_signed_in(state, request, &signed_in, Pending::Parked(pending)).await
        }
        Parked::Account(page) => {
            if let Err(error) = state.auth.complete_account_return(tenant, pending).await {
                tracing::warn!(%error, "a used account return could not be forgotten; it expires on its own");
            }
            see_other(&state.auth.issuers().endpoint(tenant, page.path()))
        }
    };
    let set =
        [names.set(names.session(), &cookie, state.auth.session_lifetime_secs()), names.clear(names.pre_session())];
    for value in set.into_iter().flatten() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}
