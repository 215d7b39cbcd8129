//! `/admin/v1/tenants/{tenant}/users`: a tenant's end users. Responses never carry a password or its
//! hash, nor a TOTP secret (only whether TOTP is on); a password travels only in the body of a create or
//! set-password call.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rsp_core::{Secret, User};
use rsp_oauth::users::{NewUser, UserChanges};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Admin;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::router::AppState;
use crate::routes::path::PathParams;

/// Bodies here hold a username and a password at most (128 characters, 1024 bytes): anything larger is
/// refused while it is read, long before a hasher could see it.
const MAX_USER_BODY_BYTES: usize = 8 * 1024;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// A password in a body, wrapped at once so it cannot reach a `Debug` string.
#[derive(Deserialize)]
#[serde(from = "String")]
pub struct PasswordField(Secret);

impl From<String> for PasswordField {
    fn from(value: String) -> Self {
        Self(Secret::new(value))
    }
}

impl std::fmt::Debug for PasswordField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    username: String,
    password: Option<PasswordField>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    username: Option<String>,
    disabled: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    password: PasswordField,
}

/// The user as the API shows it; `totp_enabled` comes from the TOTP store (see [`user_view`]).
pub fn user_json(user: &User, totp_enabled: bool) -> Value {
    json!({
        "user_id": user.user_id.as_str(),
        "tenant": user.tenant_id.as_str(),
        "username": user.username.as_str(),
        "disabled": user.is_disabled(),
        "has_password": user.password_hash.is_some(),
        "totp_enabled": totp_enabled,
        "created_at": user.created_at.0,
        "updated_at": user.updated_at.0,
        "password_changed_at": user.password_changed_at.map(|t| t.0),
    })
}

/// [`user_json`] with the user's TOTP state looked up.
async fn user_view(state: &AppState, user: &User) -> Result<Value, ApiError> {
    let totp_enabled = state.auth.user_totp_enabled(&user.tenant_id, &user.user_id).await?;
    Ok(user_json(user, totp_enabled))
}

pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let page = state.auth.list_users(&tenant, params.cursor.as_deref(), params.limit).await?;
    let mut users = Vec::with_capacity(page.users.len());
    for user in &page.users {
        users.push(user_view(&state, user).await?);
    }
    Ok(Json(json!({
        "users": users,
        "next_cursor": page.next_cursor,
    })))
}

pub async fn create(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<NewUserBody, MAX_USER_BODY_BYTES>,
) -> Result<Response, ApiError> {
    let new = NewUser { username: body.username, password: body.password.map(|p| p.0) };
    let user = state.auth.create_user(&tenant, new).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, user = %user.user_id, "admin created user");
    Ok((StatusCode::CREATED, Json(user_json(&user, false))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams((tenant, user_id)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let user = state.auth.get_user(&tenant, &user_id).await?;
    Ok(Json(user_view(&state, &user).await?))
}

pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams((tenant, user_id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<UserPatch, MAX_USER_BODY_BYTES>,
) -> Result<Json<Value>, ApiError> {
    let changes = UserChanges { username: body.username, disabled: body.disabled };
    let user = state.auth.update_user(&tenant, &user_id, changes).await?;
    Ok(Json(user_view(&state, &user).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    admin: Admin,
    PathParams((tenant, user_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_user(&tenant, &user_id).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, user = %user_id, "admin deleted user");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn set_password(
    State(state): State<AppState>,
    admin: Admin,
    PathParams((tenant, user_id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<PasswordBody, MAX_USER_BODY_BYTES>,
) -> Result<Json<Value>, ApiError> {
    let user = state.auth.set_user_password(&tenant, &user_id, &body.password.0).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, user = %user_id, "admin set user password");
    Ok(Json(user_view(&state, &user).await?))
}

/// A lost device: the user's TOTP and recovery codes are removed; the next login needs the password only.
pub async fn reset_totp(
    State(state): State<AppState>,
    admin: Admin,
    PathParams((tenant, user_id)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let removed = state.auth.reset_user_totp(&tenant, &user_id).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, user = %user_id, removed, "admin reset user TOTP");
    let user = state.auth.get_user(&tenant, &user_id).await?;
    Ok(Json(user_json(&user, false)))
}
