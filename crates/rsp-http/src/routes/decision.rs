//! The policy decision API of each tenant: `POST /t/{tenant}/v1/authorize` and `/batch`. Callers present
//! a bearer token of the tenant with scope `rsp:authorize`; verified tokens are cached, so a decision
//! costs no signature check on the hot path.

use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rsp_core::TenantId;
use rsp_policy::{Decision, DecisionRequest, RequestError};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

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

/// A decision as the API shows it, serialized straight from the [`Decision`]: a batch answers a hundred
/// of them, and a `Value` tree per item cost the batch endpoint a fifth of its time in allocations.
#[derive(Serialize)]
struct DecisionBody<'a> {
    decision: &'static str,
    reasons: &'a [String],
    errors: &'a [String],
    policy_version: u64,
    entity_version: u64,
    /// Present (and `false`) only on a default deny of an action no policy names, so the common body
    /// stays as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    action_named: Option<bool>,
}

impl<'a> From<&'a Decision> for DecisionBody<'a> {
    fn from(decision: &'a Decision) -> Self {
        Self {
            decision: if decision.allowed { "Allow" } else { "Deny" },
            reasons: &decision.reasons,
            errors: &decision.errors,
            policy_version: decision.policy_version,
            entity_version: decision.entity_version,
            action_named: (!decision.action_named).then_some(false),
        }
    }
}

/// One item of a batch answer: a decision, or why its request could not be decided.
#[derive(Serialize)]
#[serde(untagged)]
enum ItemBody<'a> {
    Decided(DecisionBody<'a>),
    Invalid { error: &'static str, error_description: String },
}

impl<'a> From<&'a Result<Arc<Decision>, RequestError>> for ItemBody<'a> {
    fn from(result: &'a Result<Arc<Decision>, RequestError>) -> Self {
        match result {
            Ok(decision) => Self::Decided((&**decision).into()),
            Err(error) => Self::Invalid { error: "invalid_request", error_description: error.to_string() },
        }
    }
}

#[derive(Serialize)]
struct BatchAnswer<'a> {
    results: Vec<ItemBody<'a>>,
}

/// `value` as an `application/json` response, written into one buffer of about `capacity` bytes (axum's
/// `Json` starts at 128 bytes and regrows, copying a batch answer several times over).
fn json_response(value: &impl Serialize, capacity: usize) -> Response {
    let mut body = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut body, value) {
        Ok(()) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response(),
        // Strings and integers always serialize; should that ever change, the caller still gets an answer.
        Err(error) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", error.to_string()).into_response()
        }
    }
}

/// About the size of one decision's JSON, so a batch answer is written into one buffer without regrowing.
const DECISION_JSON_BYTES: usize = 128;

async fn authorize(
    State(state): State<AppState>,
    DecisionCaller(tenant): DecisionCaller,
    JsonBody(body): JsonBody<Box<RawValue>>,
) -> Result<Response, ApiError> {
    let request = DecisionRequest::from_json_text(body.get()).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let decision = state.policy.authorize(&tenant, &request).await?;
    count_outcomes([Some(&*decision)]);
    Ok(json_response(&DecisionBody::from(&*decision), DECISION_JSON_BYTES))
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
) -> Result<Response, ApiError> {
    if body.requests.len() > MAX_BATCH {
        return Err(ApiError::invalid_request(format!("requests: at most {MAX_BATCH} per batch")));
    }
    let requests: Vec<_> = body.requests.iter().map(|text| DecisionRequest::from_json_text(text.get())).collect();
    let results = state.policy.authorize_batch(&tenant, &requests).await?;
    count_outcomes(results.iter().map(|result| result.as_deref().ok()));
    let answer = BatchAnswer { results: results.iter().map(ItemBody::from).collect() };
    Ok(json_response(&answer, DECISION_JSON_BYTES * results.len() + 16))
}

/// Counts decisions by outcome, one counter update per outcome present rather than one per decision:
/// each update looks its labelled counter up in the registry.
/// `None` stands for a request that could not be decided.
fn count_outcomes<'a>(results: impl IntoIterator<Item = Option<&'a Decision>>) {
    let (mut allowed, mut denied, mut invalid) = (0, 0, 0);
    for result in results {
        match result {
            Some(decision) if decision.allowed => allowed += 1,
            Some(_) => denied += 1,
            None => invalid += 1,
        }
    }
    for (outcome, count) in [("allow", allowed), ("deny", denied), ("invalid", invalid)] {
        if count > 0 {
            crate::metrics::count(crate::metrics::DECISIONS, "outcome", outcome, count);
        }
    }
}
