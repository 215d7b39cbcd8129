//! The admin API under `/admin/v1`: tenants, clients, keys, users, policies and the audit trail. Every
//! call needs a platform token with scope `rsp:admin`; the OpenAPI document is public.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use rsp_core::{Client, ClientKind, Secret, Tenant};
use rsp_oauth::admin::{ClientSettings, NewTenant, TenantChanges};
use serde::Deserialize;
use serde_json::{Value, json};

use super::path::PathParams;
use crate::error::ApiError;
use crate::extract::{BearerToken, JsonBody};
use crate::router::AppState;

mod audit;
mod permissions;
mod policies;
mod users;

/// The OpenAPI 3.1 description of this API, kept beside the routes it describes.
pub const OPENAPI: &str = include_str!("admin/openapi.json");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/tenants", get(list_tenants).post(create_tenant))
        .route("/admin/v1/tenants/{tenant}", get(get_tenant).patch(update_tenant).delete(delete_tenant))
        .route("/admin/v1/tenants/{tenant}/clients", get(list_clients).post(create_client))
        .route(
            "/admin/v1/tenants/{tenant}/clients/{client_id}",
            get(get_client).patch(update_client).delete(delete_client),
        )
        .route("/admin/v1/tenants/{tenant}/clients/{client_id}/secret", post(rotate_secret))
        .route("/admin/v1/tenants/{tenant}/users", get(users::list).post(users::create))
        .route("/admin/v1/tenants/{tenant}/users/{user_id}", get(users::get).patch(users::update).delete(users::delete))
        .route("/admin/v1/tenants/{tenant}/users/{user_id}/password", post(users::set_password))
        .route("/admin/v1/tenants/{tenant}/users/{user_id}/totp", delete(users::reset_totp))
        .route("/admin/v1/tenants/{tenant}/keys", get(list_keys))
        .route("/admin/v1/tenants/{tenant}/keys/rotate", post(rotate_keys))
        .route("/admin/v1/tenants/{tenant}/audit", get(audit::list))
        .route("/admin/v1/tenants/{tenant}/policies", get(policies::get_policies).put(policies::put_policies))
        .route("/admin/v1/tenants/{tenant}/policies/validate", post(policies::validate_policies))
        .route("/admin/v1/tenants/{tenant}/policies/versions", get(policies::list_versions))
        .route("/admin/v1/tenants/{tenant}/policies/rollback", post(policies::rollback))
        .route(
            "/admin/v1/tenants/{tenant}/entities",
            get(policies::get_entities).put(policies::put_entities).delete(policies::delete_entities),
        )
}

/// A caller holding a valid admin token; its client id is recorded with each change.
#[derive(Debug)]
pub struct Admin {
    pub client_id: String,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        let claims = state.auth.authorize_admin(token.expose()).await?;
        let route = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
        let action = permissions::action_name(&parts.method, &route)
            .ok_or_else(|| ApiError::new(StatusCode::FORBIDDEN, "access_denied", "unknown admin operation"))?;
        let tenant = RawPathParams::from_request_parts(parts, state)
            .await
            .ok()
            .and_then(|params| params.iter().find(|(name, _)| *name == "tenant").map(|(_, v)| v.to_owned()));
        if !permissions::is_break_glass(action, tenant.as_deref()) {
            let allowed = state
                .policy
                .permits_admin(&claims.client_id, action, tenant.as_deref())
                .await
                .map_err(ApiError::from)?;
            if allowed == Some(false) {
                tracing::info!(client = %claims.client_id, action, "admin call denied by policy");
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "access_denied",
                    "denied by the platform's admin policies",
                ));
            }
        }
        Ok(Admin { client_id: claims.client_id.clone() })
    }
}

async fn openapi() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

fn tenant_json(state: &AppState, tenant: &Tenant) -> Value {
    json!({
        "id": tenant.id.as_str(),
        "name": tenant.name,
        "signing_alg": tenant.signing_alg.as_str(),
        "issuer": state.auth.issuers().issuer(&tenant.id),
        "created_at": tenant.created_at.0,
        "updated_at": tenant.updated_at.0,
    })
}

fn client_json(client: &Client, secret: Option<&Secret>) -> Value {
    let mut value = json!({
        "client_id": client.client_id.as_str(),
        "tenant": client.tenant_id.as_str(),
        "name": client.name,
        "kind": match client.kind { ClientKind::Confidential => "confidential", ClientKind::Public => "public" },
        "grant_types": client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": client.scopes.to_string(),
        "audiences": client.audiences,
        "introspect_audiences": client.introspect_audiences,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "created_at": client.created_at.0,
        "updated_at": client.updated_at.0,
    });
    if let (Some(secret), Some(object)) = (secret, value.as_object_mut()) {
        object.insert("client_secret".into(), json!(secret.expose()));
    }
    value
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantBody {
    id: String,
    name: String,
    signing_alg: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantPatch {
    name: Option<String>,
    signing_alg: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ClientBody {
    name: Option<String>,
    kind: Option<ClientKind>,
    grant_types: Option<Vec<String>>,
    scope: Option<String>,
    audiences: Option<Vec<String>>,
    introspect_audiences: Option<Vec<String>>,
    redirect_uris: Option<Vec<String>>,
    post_logout_redirect_uris: Option<Vec<String>>,
}

impl From<ClientBody> for ClientSettings {
    fn from(body: ClientBody) -> Self {
        ClientSettings {
            name: body.name,
            kind: body.kind,
            grant_types: body.grant_types,
            scope: body.scope,
            audiences: body.audiences,
            introspect_audiences: body.introspect_audiences,
            redirect_uris: body.redirect_uris,
            post_logout_redirect_uris: body.post_logout_redirect_uris,
        }
    }
}

async fn list_tenants(State(state): State<AppState>, _admin: Admin) -> Result<Json<Value>, ApiError> {
    let tenants = state.auth.list_tenants().await?;
    Ok(Json(json!({"tenants": tenants.iter().map(|t| tenant_json(&state, t)).collect::<Vec<_>>()})))
}

async fn create_tenant(
    State(state): State<AppState>,
    admin: Admin,
    JsonBody(body): JsonBody<TenantBody>,
) -> Result<Response, ApiError> {
    let tenant =
        state.auth.create_tenant(NewTenant { id: body.id, name: body.name, signing_alg: body.signing_alg }).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant.id, "admin created tenant");
    Ok((StatusCode::CREATED, Json(tenant_json(&state, &tenant))).into_response())
}

async fn get_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(tenant_json(&state, &state.auth.get_tenant(&tenant).await?)))
}

async fn update_tenant(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<TenantPatch>,
) -> Result<Json<Value>, ApiError> {
    let changes = TenantChanges { name: body.name, signing_alg: body.signing_alg };
    Ok(Json(tenant_json(&state, &state.auth.update_tenant(&tenant, changes).await?)))
}

async fn delete_tenant(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_tenant(&tenant).await?;
    if let Ok(id) = rsp_core::TenantId::parse(tenant.as_str()) {
        state.policy.forget_tenant(&id).await;
    }
    tracing::info!(actor = %admin.client_id, tenant = %tenant, "admin deleted tenant");
    Ok(StatusCode::NO_CONTENT)
}

async fn list_clients(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let clients = state.auth.list_clients(&tenant).await?;
    Ok(Json(json!({"clients": clients.iter().map(|c| client_json(c, None)).collect::<Vec<_>>()})))
}

async fn create_client(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<ClientBody>,
) -> Result<Response, ApiError> {
    let (client, secret) = state.auth.create_client(&tenant, body.into()).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, client = %client.client_id, "admin created client");
    Ok((StatusCode::CREATED, Json(client_json(&client, secret.as_ref()))).into_response())
}

async fn get_client(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams((tenant, client_id)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(client_json(&state.auth.get_client(&tenant, &client_id).await?, None)))
}

async fn update_client(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams((tenant, client_id)): PathParams<(String, String)>,
    JsonBody(body): JsonBody<ClientBody>,
) -> Result<Json<Value>, ApiError> {
    let client = state.auth.update_client(&tenant, &client_id, body.into()).await?;
    Ok(Json(client_json(&client, None)))
}

async fn delete_client(
    State(state): State<AppState>,
    admin: Admin,
    PathParams((tenant, client_id)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.auth.delete_client(&tenant, &client_id).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, client = %client_id, "admin deleted client");
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_secret(
    State(state): State<AppState>,
    admin: Admin,
    PathParams((tenant, client_id)): PathParams<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let (client, secret) = state.auth.rotate_client_secret(&tenant, &client_id).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, client = %client_id, "admin rotated client secret");
    Ok(Json(client_json(&client, Some(&secret))))
}

async fn list_keys(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"keys": state.auth.list_keys(&tenant).await?})))
}

async fn rotate_keys(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let keys = state.auth.rotate_keys(&tenant).await?;
    tracing::info!(actor = %admin.client_id, tenant = %tenant, "admin rotated signing keys");
    Ok(Json(json!({"keys": keys})))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests fail loudly")]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    /// The (path, method) pairs `routes()` serves, read from this file's source so the list cannot drift:
    /// every `name(` call after `Router::new()` must be `route` or a method router.
    fn routed() -> BTreeSet<(String, String)> {
        let source = include_str!("admin.rs");
        let start = source.find("Router::new()").unwrap() + "Router::new()".len();
        let body = &source[start..start + source[start..].find("\n}\n").unwrap()];
        let mut pairs = BTreeSet::new();
        let mut path = None;
        for (open, _) in body.match_indices('(') {
            let name_start = body[..open].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap() + 1;
            let name = &body[name_start..open];
            if name == "route" {
                path = Some(body[open..].split('"').nth(1).unwrap());
                continue;
            }
            assert!(METHODS.contains(&name), "unexpected `{name}(` in routes(): teach this test about it");
            pairs.insert((path.unwrap().to_owned(), name.to_owned()));
        }
        pairs
    }

    #[test]
    fn openapi_document_describes_exactly_the_routes() {
        let doc: Value = serde_json::from_str(OPENAPI).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap().iter().filter(|(m, _)| METHODS.contains(&m.as_str())) {
                assert!(operation["operationId"].is_string(), "{method} {path} has no operationId");
                documented.insert((path.clone(), method.clone()));
            }
        }
        assert_eq!(documented, routed());
    }
}
