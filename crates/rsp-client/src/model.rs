//! What a caller asks and what it gets back, plus the wire shapes of the decision endpoints.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ClientError;

/// A Cedar entity reference such as `User::"alice"`. Sent as `{"type","id"}` so no Cedar string escaping
/// is ever needed on the wire, and so two spellings of one entity share one cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EntityUid {
    #[serde(rename = "type")]
    pub type_name: String,
    pub id: String,
}

impl EntityUid {
    pub fn new(type_name: impl Into<String>, id: impl Into<String>) -> Self {
        Self { type_name: type_name.into(), id: id.into() }
    }
}

impl fmt::Display for EntityUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{:?}", self.type_name, self.id)
    }
}

/// Parses the Cedar form `Namespace::Type::"id"`; the id may contain `\"` and `\\` escapes.
impl FromStr for EntityUid {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || ClientError::InvalidRequest(format!("not a Cedar entity reference: {s}"));
        let (type_name, quoted) = s.split_once("::\"").ok_or_else(invalid)?;
        let body = quoted.strip_suffix('"').ok_or_else(invalid)?;
        if type_name.is_empty() {
            return Err(invalid());
        }
        let mut id = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => id.push(chars.next().ok_or_else(invalid)?),
                '"' => return Err(invalid()),
                other => id.push(other),
            }
        }
        Ok(Self::new(type_name, id))
    }
}

/// One authorization question. `entities` carries request-specific Cedar JSON entities (for example the
/// resource's attributes); such requests are never cached because the answer depends on them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorizeRequest {
    pub principal: EntityUid,
    pub action: EntityUid,
    pub resource: EntityUid,
    pub context: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<Value>>,
}

impl AuthorizeRequest {
    pub fn new(principal: EntityUid, action: EntityUid, resource: EntityUid) -> Self {
        Self { principal, action, resource, context: Map::new(), entities: None }
    }

    #[must_use]
    pub fn with_context(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.context.insert(key.into(), value.into());
        self
    }

    #[must_use]
    pub fn with_entities(mut self, entities: Vec<Value>) -> Self {
        self.entities = Some(entities);
        self
    }
}

/// Cedar's two answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// Where a [`Decision`] came from. A fallback carries the error that caused it, so a caller can log it
/// or tell "the policy said no" from "the policy could not be asked".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecidedBy {
    Server,
    Cache,
    Fallback(ClientError),
}

/// The answer to an [`AuthorizeRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    /// Ids of the policies that determined the effect.
    pub reasons: Vec<String>,
    /// Policy evaluation errors the server reported (the decision stands regardless).
    pub errors: Vec<String>,
    /// The policy set version that decided; `None` for fallbacks.
    pub policy_version: Option<u64>,
    /// `false` when the server denied by default because no policy of the tenant names the action.
    pub action_named: bool,
    pub decided_by: DecidedBy,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    pub fn is_fallback(&self) -> bool {
        matches!(self.decided_by, DecidedBy::Fallback(_))
    }

    pub(crate) fn fallback(effect: Effect, cause: ClientError) -> Self {
        Self {
            effect,
            reasons: Vec::new(),
            errors: Vec::new(),
            policy_version: None,
            action_named: true,
            decided_by: DecidedBy::Fallback(cause),
        }
    }
}

/// A decision as the server sends it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireDecision {
    decision: Effect,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    errors: Vec<String>,
    #[serde(default)]
    policy_version: Option<u64>,
    #[serde(default = "named")]
    action_named: bool,
}

fn named() -> bool {
    true
}

impl From<WireDecision> for Decision {
    fn from(wire: WireDecision) -> Self {
        Self {
            effect: wire.decision,
            reasons: wire.reasons,
            errors: wire.errors,
            policy_version: wire.policy_version,
            action_named: wire.action_named,
            decided_by: DecidedBy::Server,
        }
    }
}

/// An OAuth-style error body (RFC 6749 §5.2, RFC 6750 §3).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WireError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl WireError {
    pub fn describe(&self) -> String {
        match &self.error_description {
            Some(description) => format!("{}: {description}", self.error),
            None => self.error.clone(),
        }
    }
}

/// One item of a batch answer: a decision, or the error of that item alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum WireItem {
    Decision(WireDecision),
    Error(WireError),
}

#[derive(Debug, Serialize)]
pub(crate) struct WireBatchRequest<'a> {
    pub requests: &'a [&'a AuthorizeRequest],
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireBatchResponse {
    pub results: Vec<WireItem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cedar_entity_references() {
        assert_eq!("User::\"alice\"".parse::<EntityUid>().unwrap(), EntityUid::new("User", "alice"));
        assert_eq!("App::Doc::\"a\\\"b\"".parse::<EntityUid>().unwrap(), EntityUid::new("App::Doc", "a\"b"));
        for bad in ["User", "User::alice", "::\"x\"", "User::\"a\"b\"", "User::\"x"] {
            assert!(bad.parse::<EntityUid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_in_cedar_form() {
        assert_eq!(EntityUid::new("User", "a\"b").to_string(), "User::\"a\\\"b\"");
    }

    #[test]
    fn batch_items_are_decisions_or_errors() {
        let items: Vec<WireItem> = serde_json::from_str(
            r#"[{"decision":"Allow","reasons":["p1"],"errors":[],"policy_version":3},
                {"error":"invalid_request","error_description":"unknown entity type"}]"#,
        )
        .unwrap();
        assert!(matches!(&items[0], WireItem::Decision(d) if d.decision == Effect::Allow));
        assert!(matches!(&items[1], WireItem::Error(e) if e.describe() == "invalid_request: unknown entity type"));
    }
}
