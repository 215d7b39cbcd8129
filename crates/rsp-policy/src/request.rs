//! [`DecisionRequest`]: who wants to do what to which resource, read from the JSON a PEP sends.
//!
//! The shape is checked here, with errors that name the field; whether the context and entities conform
//! to the tenant's schema can only be checked against a snapshot, at decision time.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::entity_ref::{EXPECTED_REF, EntityRef, json_kind};
use crate::error::RequestError;

/// One authorization question. Deserialises from
/// `{"principal", "action", "resource", "context"?, "entities"?}`, where each of the first three is
/// `User::"alice"` or `{"type": "User", "id": "alice"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct DecisionRequest {
    pub principal: EntityRef,
    pub action: EntityRef,
    pub resource: EntityRef,
    /// Cedar context record, in Cedar's JSON value format; empty when absent.
    pub context: Map<String, Value>,
    /// Entities for this decision only, in Cedar's JSON entity format; on a uid conflict they win over
    /// the stored ones. A request that carries entities is never cached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entities: Option<Vec<Value>>,
}

const FIELDS: [&str; 5] = ["principal", "action", "resource", "context", "entities"];

impl DecisionRequest {
    /// A request with an empty context and no entities of its own.
    pub fn new(principal: EntityRef, action: EntityRef, resource: EntityRef) -> Self {
        Self { principal, action, resource, context: Map::new(), entities: None }
    }

    #[must_use]
    pub fn with_context(mut self, context: Map<String, Value>) -> Self {
        self.context = context;
        self
    }

    #[must_use]
    pub fn with_entities(mut self, entities: Vec<Value>) -> Self {
        self.entities = Some(entities);
        self
    }

    /// Reads a request from JSON; the error names the field at fault.
    pub fn from_json(value: Value) -> Result<Self, RequestError> {
        let Value::Object(mut fields) = value else {
            return Err(RequestError::new("request", format!("expected a JSON object, got {}", json_kind(&value))));
        };
        if let Some(unknown) = fields.keys().find(|key| !FIELDS.contains(&key.as_str())) {
            return Err(RequestError::new("request", format!("unknown field `{unknown}`")));
        }
        let mut reference = |field: &'static str| match fields.remove(field) {
            None => Err(RequestError::new(field, format!("missing; {EXPECTED_REF}"))),
            Some(value) => EntityRef::from_json(&value).map_err(|error| RequestError::new(field, error.to_string())),
        };
        let (principal, action, resource) = (reference("principal")?, reference("action")?, reference("resource")?);
        let context = match fields.remove("context") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(context)) => context,
            Some(other) => {
                return Err(RequestError::new("context", format!("expected a JSON object, got {}", json_kind(&other))));
            }
        };
        let entities = match fields.remove("entities") {
            None | Some(Value::Null) => None,
            Some(Value::Array(entities)) => Some(entities),
            Some(other) => {
                let message = format!("expected a JSON array of entities, got {}", json_kind(&other));
                return Err(RequestError::new("entities", message));
            }
        };
        Ok(Self { principal, action, resource, context, entities })
    }

    /// Reads a request from JSON text, with the same result and errors as [`Self::from_json`] on the
    /// parsed value. The usual shape (references in the string form, no duplicate fields) is read straight
    /// into the request, without the `Value` tree of the whole request in between; anything else takes the
    /// general path, which explains what is wrong.
    pub fn from_json_text(text: &str) -> Result<Self, RequestError> {
        if let Some(request) = Self::from_usual_text(text) {
            return Ok(request);
        }
        match serde_json::from_str::<Value>(text) {
            Ok(value) => Self::from_json(value),
            Err(error) => Err(RequestError::new("request", format!("invalid JSON: {error}"))),
        }
    }

    fn from_usual_text(text: &str) -> Option<Self> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Usual<'a> {
            #[serde(borrow)]
            principal: Cow<'a, str>,
            #[serde(borrow)]
            action: Cow<'a, str>,
            #[serde(borrow)]
            resource: Cow<'a, str>,
            #[serde(default)]
            context: Option<Map<String, Value>>,
            #[serde(default)]
            entities: Option<Vec<Value>>,
        }
        let usual: Usual<'_> = serde_json::from_str(text).ok()?;
        Some(Self {
            principal: usual.principal.parse().ok()?,
            action: usual.action.parse().ok()?,
            resource: usual.resource.parse().ok()?,
            context: usual.context.unwrap_or_default(),
            entities: usual.entities,
        })
    }

    /// A deterministic byte form of principal, action, resource and context: entity references as
    /// `["Type","id"]`, object keys sorted at every depth. Two requests with equal bytes get equal
    /// decisions from one snapshot. `None` when the request carries entities, whose decisions are not
    /// cached.
    pub fn canonical_bytes(&self) -> Option<Vec<u8>> {
        if self.entities.is_some() {
            return None;
        }
        let mut out = Vec::with_capacity(128);
        let written: serde_json::Result<()> = (|| {
            out.push(b'[');
            for reference in [&self.principal, &self.action, &self.resource] {
                reference.write_key(&mut out)?;
                out.push(b',');
            }
            write_object(&self.context, &mut out)?;
            out.push(b']');
            Ok(())
        })();
        written.ok().map(|()| out)
    }
}

impl TryFrom<Value> for DecisionRequest {
    type Error = RequestError;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        Self::from_json(value)
    }
}

/// Writes JSON with object keys sorted, whatever order the map keeps (serde_json's `preserve_order`
/// feature, if any crate in the build turns it on, makes maps keep insertion order).
fn write_canonical(value: &Value, out: &mut Vec<u8>) -> serde_json::Result<()> {
    match value {
        Value::Object(fields) => write_object(fields, out),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_canonical(item, out)?;
            }
            out.push(b']');
            Ok(())
        }
        scalar => serde_json::to_writer(out, scalar),
    }
}

fn write_object(fields: &Map<String, Value>, out: &mut Vec<u8>) -> serde_json::Result<()> {
    let mut sorted: Vec<(&String, &Value)> = fields.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (index, (key, value)) in sorted.into_iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        write_canonical(value, out)?;
    }
    out.push(b'}');
    Ok(())
}

#[cfg(test)]
mod tests;
