//! The admin API's policy surface: a tenant's Cedar policy set (versioned), its validation, and its
//! entities.

use axum::Json;
use axum::extract::State;
use rsp_core::TenantId;
use rsp_core::policy::PolicySetVersion;
use rsp_policy::{EntityRef, PolicyDocument, SchemaSource, TemplateLink, service::document_of};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Admin;
use crate::error::ApiError;
use crate::extract::{JsonBody, MAX_BATCH_BYTES};
use crate::router::AppState;
use crate::routes::path::PathParams;

fn tenant_id(raw: &str) -> Result<TenantId, ApiError> {
    TenantId::parse(raw).map_err(|_| ApiError::not_found("tenant"))
}

/// A policy set as the API takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    policies: String,
    /// Schema text: Cedar syntax, or JSON syntax (as text or as a JSON object).
    schema: Option<Value>,
    /// `cedar` (default for text) or `json`.
    schema_format: Option<String>,
    #[serde(default)]
    template_links: Vec<TemplateLink>,
}

impl PolicyBody {
    fn into_document(self) -> Result<PolicyDocument, ApiError> {
        let schema = match (self.schema, self.schema_format.as_deref()) {
            (None, _) => None,
            (Some(Value::String(text)), None | Some("cedar")) => Some(SchemaSource::Cedar(text)),
            (Some(Value::String(text)), Some("json")) => Some(SchemaSource::Json(text)),
            (Some(object @ Value::Object(_)), None | Some("json")) => Some(SchemaSource::Json(object.to_string())),
            (Some(_), Some(other)) if other != "cedar" && other != "json" => {
                return Err(ApiError::invalid_request("schema_format must be cedar or json"));
            }
            (Some(_), _) => return Err(ApiError::invalid_request("schema must be Cedar text or a JSON schema")),
        };
        Ok(PolicyDocument { policies: self.policies, schema, template_links: self.template_links })
    }
}

fn version_json(version: &PolicySetVersion) -> Result<Value, ApiError> {
    let document = document_of(&version.content)?;
    let (schema, schema_format) = match &document.schema {
        Some(SchemaSource::Cedar(text)) => (Some(text.clone()), Some("cedar")),
        Some(SchemaSource::Json(text)) => (Some(text.clone()), Some("json")),
        None => (None, None),
    };
    Ok(json!({
        "version": version.version,
        "policies": document.policies,
        "schema": schema,
        "schema_format": schema_format,
        "template_links": document.template_links,
        "created_at": version.created_at.0,
        "created_by": version.created_by,
    }))
}

pub async fn put_policies(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<PolicyBody, MAX_BATCH_BYTES>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_id(&tenant)?;
    let version = state.policy.put_policies(&tenant, &body.into_document()?, &admin.client_id).await?;
    Ok(Json(json!({ "version": version })))
}

pub async fn get_policies(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let latest = state.policy.latest(&tenant_id(&tenant)?).await?.ok_or_else(|| ApiError::not_found("policy set"))?;
    Ok(Json(version_json(&latest)?))
}

/// A dry run: every diagnostic, nothing stored.
pub async fn validate_policies(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<PolicyBody, MAX_BATCH_BYTES>,
) -> Result<Json<Value>, ApiError> {
    let tenant = tenant_id(&tenant)?;
    match state.policy.check(&tenant, &body.into_document()?).await {
        Ok(()) => Ok(Json(json!({"valid": true, "diagnostics": []}))),
        Err(rsp_policy::PolicyServiceError::InvalidPolicies(diagnostics)) => {
            Ok(Json(json!({"valid": false, "diagnostics": diagnostics})))
        }
        Err(other) => Err(other.into()),
    }
}

pub async fn list_versions(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let versions = state.policy.versions(&tenant_id(&tenant)?).await?;
    let versions: Vec<Value> = versions
        .into_iter()
        .map(|(version, at, by)| json!({"version": version, "created_at": at.0, "created_by": by}))
        .collect();
    Ok(Json(json!({ "versions": versions })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackBody {
    version: u64,
}

pub async fn rollback(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<RollbackBody>,
) -> Result<Json<Value>, ApiError> {
    let version = state.policy.rollback(&tenant_id(&tenant)?, body.version, &admin.client_id).await?;
    Ok(Json(json!({ "version": version, "restored": body.version })))
}

/// Entities to upsert: a Cedar JSON entity array, or `{"entities": [...]}`.
pub async fn put_entities(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<Value, MAX_BATCH_BYTES>,
) -> Result<Json<Value>, ApiError> {
    let entities = match body {
        Value::Object(mut object) if object.len() == 1 && object.contains_key("entities") => {
            object.remove("entities").unwrap_or(Value::Null)
        }
        other => other,
    };
    let version = state.policy.put_entities(&tenant_id(&tenant)?, entities, &admin.client_id).await?;
    Ok(Json(json!({ "entity_version": version })))
}

pub async fn get_entities(
    State(state): State<AppState>,
    _admin: Admin,
    PathParams(tenant): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let snapshot = state.policy.snapshot(&tenant_id(&tenant)?).await?;
    Ok(Json(json!({"entity_version": snapshot.entity_version(), "entities": snapshot.entities().to_json()})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteBody {
    uids: Vec<Value>,
}

pub async fn delete_entities(
    State(state): State<AppState>,
    admin: Admin,
    PathParams(tenant): PathParams<String>,
    JsonBody(body): JsonBody<DeleteBody>,
) -> Result<Json<Value>, ApiError> {
    let uids = body
        .uids
        .iter()
        .map(|uid| EntityRef::from_json(uid).map_err(|e| ApiError::invalid_request(format!("uids: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let version = state.policy.delete_entities(&tenant_id(&tenant)?, &uids, &admin.client_id).await?;
    Ok(Json(json!({ "entity_version": version })))
}
