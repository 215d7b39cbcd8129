//! `/admin/v1/tenants/{tenant}/users`: a tenant's end users. Responses never carry a password or its
//! hash; a password travels only in the body of a create or set-password call.

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

pub fn user_json(user: &User) -> Value {
    json!({
        "user_id": user.user_id.as_str(),
        "tenant": user.tenant_id.as_str(),
        "username": user.username.as_str(),
        "disabled": user.is_disabled(),
        "has_password": user.password_hash.is_some(),
        "created_at": user.created_at.0,
        "updated_at": user.updated_at.0,
        "password_changed_at": user.password_changed_at.map(|t| t.0),
    })
}

pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
    params: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::invalid_request(e.body_text()))?;
    let page = state.auth.list_users(&tenant, params.cursor.as_deref(), params.limit).await?;
    Ok(Json(json!({
        "users": page.users.iter().map(user_json).collect::<Vec<_>>(),
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
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams((tenant, user_id)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(user_json(&state.auth.get_user(&tenant, &user_id).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams((tenant, user_id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<UserPatch, MAX_USER_BODY_BYTES>,
) -> Result<Json<Value>, ApiError> {
    let changes = UserChanges { username: body.username, disabled: body.disabled };
    Ok(Json(user_json(&state.auth.update_user(&tenant, &user_id, changes).await?)))
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
    Ok(Json(user_json(&user)))
}
