//! [`authorize`]: Cedar's answer to a [`DecisionRequest`] against one [`Snapshot`].
//!
//! The wrapper adds request parsing, schema checks and request-carried entities, and nothing to Cedar's
//! semantics: the decision, the determining policies and the evaluation errors are Cedar's own (the
//! workload test in `tests/workload.rs` checks this against Cedar called directly).

use std::sync::LazyLock;

use cedar_policy::{Authorizer, Context, Entities, Entity, Request, Response, RestrictedExpression};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::document::Schema;
use crate::engine::Snapshot;
use crate::error::{RequestError, cedar_message};
use crate::request::DecisionRequest;

/// Cedar's authorizer holds no per-request state, so one serves every decision of the process.
static AUTHORIZER: LazyLock<Authorizer> = LazyLock::new(Authorizer::new);

/// The answer to one request, with the versions it was computed from (for audit and cache keys).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// Ids of the policies that determined the decision (the permits that allowed it, or the forbids
    /// that denied it), sorted; empty for a default deny.
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate, in Cedar's words (`error while evaluating policy `x`: …`),
    /// sorted. Cedar skips such a policy and the decision stands.
    pub errors: Vec<String>,
    pub policy_version: u64,
    pub entity_version: u64,
    /// `false` only for a default deny of an action that no policy of the tenant names: the tenant has
    /// written no rules for it, which a caller may treat differently from "rules exist and none permit"
    /// (token issuance then falls back to a client's registered scopes).
    pub action_named: bool,
}

/// Decides one request against one snapshot. `Err` only when the request itself is unusable (bad
/// context, entities or types for the schema); a policy that fails to evaluate is listed in
/// [`Decision::errors`] instead.
pub fn authorize(snapshot: &Snapshot, request: &DecisionRequest) -> Result<Decision, RequestError> {
    let schema = snapshot.schema().map(Schema::cedar);
    let cedar_request = cedar_request(request, schema)?;
    let merged;
    let entities = match &request.entities {
        None => snapshot.entities().cedar(),
        Some(extra) => {
            merged = merge_entities(snapshot.entities().cedar(), extra, schema)?;
            &merged
        }
    };
    // Only the policies whose scope matches: the response is the same (see `crate::slice`), for less work.
    let (principal, action, resource) = (request.principal.uid(), request.action.uid(), request.resource.uid());
    let sliced = snapshot.policies().slice(principal, action, resource, entities);
    let policies = sliced.as_ref().unwrap_or_else(|| snapshot.policies().policy_set());
    let response = AUTHORIZER.is_authorized(&cedar_request, policies, entities);
    Ok(decision(&response, snapshot, request))
}

/// Decides each request against the same snapshot, in order: a reload during the batch cannot give
/// two of its requests different policies.
pub fn authorize_batch(snapshot: &Snapshot, requests: &[DecisionRequest]) -> Vec<Result<Decision, RequestError>> {
    requests.iter().map(|request| authorize(snapshot, request)).collect()
}

fn cedar_request(request: &DecisionRequest, schema: Option<&cedar_policy::Schema>) -> Result<Request, RequestError> {
    use cedar_policy::{ContextJsonError, RequestValidationError as Invalid};
    let action = request.action.uid();
    // Without a schema nothing is type-directed, and a context of plain values is built directly.
    let plain = if schema.is_none() { plain_context(&request.context) } else { None };
    let context = match plain {
        Some(context) => context,
        None => Context::from_json_value(Value::Object(request.context.clone()), schema.map(|schema| (schema, action)))
            .map_err(|error| {
                let field = if matches!(error, ContextJsonError::MissingAction(_)) { "action" } else { "context" };
                RequestError::new(field, cedar_message(&error))
            })?,
    };
    Request::new(request.principal.uid().clone(), action.clone(), request.resource.uid().clone(), context, schema)
        .map_err(|error| {
            let field = match &error {
                Invalid::UndeclaredAction(_) | Invalid::ExternalAction(_) => "action",
                Invalid::UndeclaredPrincipalType(_) | Invalid::InvalidPrincipalType(_) => "principal",
                Invalid::UndeclaredResourceType(_) | Invalid::InvalidResourceType(_) => "resource",
                Invalid::InvalidContext(_) | Invalid::TypeOfContext(_) => "context",
                _ => "request",
            };
            RequestError::new(field, cedar_message(&error))
        })
}

/// The context Cedar's JSON parser would build from `fields` without a schema, when every value is plain:
/// booleans, 64-bit integers, strings, and arrays and objects of those (a set, a record). `None` for
/// anything else (an `__entity`, `__extn` or `__expr` escape, `null`, a fraction or an integer out of
/// range), which goes through Cedar's parser for its value or its error message. Cedar's parser tries each
/// form of its JSON value in turn and formats an error for every miss, which made it a third of the
/// time of a decision.
fn plain_context(fields: &Map<String, Value>) -> Option<Context> {
    let pairs = fields.iter().map(|(name, value)| Some((name.clone(), plain_value(value)?)));
    Context::from_pairs(pairs.collect::<Option<Vec<_>>>()?).ok()
}

fn plain_value(value: &Value) -> Option<RestrictedExpression> {
    const ESCAPES: [&str; 3] = ["__entity", "__extn", "__expr"];
    match value {
        Value::Bool(value) => Some(RestrictedExpression::new_bool(*value)),
        Value::Number(number) => number.as_i64().map(RestrictedExpression::new_long),
        Value::String(text) => Some(RestrictedExpression::new_string(text.clone())),
        Value::Array(items) => {
            items.iter().map(plain_value).collect::<Option<Vec<_>>>().map(RestrictedExpression::new_set)
        }
        Value::Object(fields) if !ESCAPES.iter().any(|escape| fields.contains_key(*escape)) => {
            let pairs = fields.iter().map(|(name, value)| Some((name.clone(), plain_value(value)?)));
            RestrictedExpression::new_record(pairs.collect::<Option<Vec<_>>>()?).ok()
        }
        Value::Object(_) | Value::Null => None,
    }
}

/// The stored entities with the request's upserted over them. The stored set is copied, so the request's
/// entities exist for this decision only.
fn merge_entities(
    stored: &Entities,
    extra: &[Value],
    schema: Option<&cedar_policy::Schema>,
) -> Result<Entities, RequestError> {
    let parsed = extra
        .iter()
        .enumerate()
        .map(|(index, json)| {
            Entity::from_json_value(json.clone(), schema)
                .map_err(|error| RequestError::new("entities", format!("entity {index}: {}", cedar_message(&error))))
        })
        .collect::<Result<Vec<_>, _>>()?;
    stored.clone().upsert_entities(parsed, schema).map_err(|error| RequestError::new("entities", cedar_message(&error)))
}

fn decision(response: &Response, snapshot: &Snapshot, request: &DecisionRequest) -> Decision {
    let diagnostics = response.diagnostics();
    let mut reasons: Vec<String> = diagnostics.reason().map(ToString::to_string).collect();
    reasons.sort_unstable();
    let mut errors: Vec<String> = diagnostics.errors().map(ToString::to_string).collect();
    errors.sort_unstable();
    let allowed = response.decision() == cedar_policy::Decision::Allow;
    // Only a default deny needs the scan over the policies: any determining policy names the action.
    let action_named = allowed || !reasons.is_empty() || snapshot.policies().names_action(&request.action);
    Decision {
        allowed,
        action_named,
        reasons,
        errors,
        policy_version: snapshot.policy_version(),
        entity_version: snapshot.entity_version(),
    }
}

#[cfg(test)]
mod tests;
