//! The policy decision API of each tenant: `POST /t/{tenant}/v1/authorize` and `/batch`. Callers present
//! a bearer token of the tenant with scope `rsp:authorize`; verified tokens are cached, so a decision
//! costs no signature check on the hot path.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::routing::post;
use axum::{Json, Router};
use rsp_core::TenantId;
use rsp_policy::{Decision, DecisionRequest, RequestError};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::path::TenantPath;
use crate::error::ApiError;
use crate::extract::{BearerToken, JsonBody, MAX_BATCH_BYTES};
use crate::router::AppState;

/// The most requests one batch may carry.
pub const MAX_BATCH: usize = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{tenant}/v1/authorize", post(authorize))
        .route("/t/{tenant}/v1/authorize/batch", post(authorize_batch))
}

/// The tenant of the route, once its caller is known to be allowed to ask the tenant's decision point.
#[derive(Debug)]
struct DecisionCaller(TenantId);

impl FromRequestParts<AppState> for DecisionCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let TenantPath(tenant) = TenantPath::from_request_parts(parts, state).await?;
        let BearerToken(token) = BearerToken::from_request_parts(parts, state).await?;
        state.auth.authorize_decision_caller(&tenant, token.expose()).await?;
        Ok(DecisionCaller(tenant))
    }
}

fn decision_json(decision: &Decision) -> Value {
    let mut body = json!({
        "decision": if decision.allowed { "Allow" } else { "Deny" },
        "reasons": decision.reasons,
        "errors": decision.errors,
        "policy_version": decision.policy_version,
        "entity_version": decision.entity_version,
    });
    // Present only on a default deny of an action no policy names, so the common body stays as it was.
    if !decision.action_named
        && let Some(object) = body.as_object_mut()
    {
        object.insert("action_named".into(), Value::Bool(false));
    }
    body
}

fn item_json(result: &Result<Decision, RequestError>) -> Value {
    match result {
        Ok(decision) => decision_json(decision),
        Err(error) => json!({"error": "invalid_request", "error_description": error.to_string()}),
    }
}

async fn authorize(
    State(state): State<AppState>,
    DecisionCaller(tenant): DecisionCaller,
    JsonBody(body): JsonBody<Box<RawValue>>,
) -> Result<Json<Value>, ApiError> {
    let request = DecisionRequest::from_json_text(body.get()).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let decision = state.policy.authorize(&tenant, &request).await?;
    record(&[Ok(decision.clone())]);
    Ok(Json(decision_json(&decision)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    /// Kept as text: each request is read on its own, so a malformed one fails alone.
    requests: Vec<Box<RawValue>>,
}

async fn authorize_batch(
    State(state): State<AppState>,
    DecisionCaller(tenant): DecisionCaller,
    JsonBody(body): JsonBody<BatchBody, MAX_BATCH_BYTES>,
) -> Result<Json<Value>, ApiError> {
    if body.requests.len() > MAX_BATCH {
        return Err(ApiError::invalid_request(format!("requests: at most {MAX_BATCH} per batch")));
    }
    let requests: Vec<_> = body.requests.iter().map(|text| DecisionRequest::from_json_text(text.get())).collect();
    let results = state.policy.authorize_batch(&tenant, &requests).await?;
    record(&results);
    Ok(Json(json!({"results": results.iter().map(item_json).collect::<Vec<_>>()})))
}

fn record(results: &[Result<Decision, RequestError>]) {
    for result in results {
        let outcome = match result {
            Ok(decision) if decision.allowed => "allow",
            Ok(_) => "deny",
            Err(_) => "invalid",
        };
        metrics::counter!(crate::metrics::DECISIONS, "outcome" => outcome).increment(1);
    }
}
