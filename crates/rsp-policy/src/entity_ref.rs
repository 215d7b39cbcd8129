//! [`EntityRef`]: a Cedar entity uid parsed at the edge, from either of the two forms callers write.

use std::fmt;
use std::str::FromStr;

use cedar_policy::EntityUid;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::cedar_message;

/// What a caller is told when a value is not an entity reference.
pub(crate) const EXPECTED_REF: &str = r#"expected an entity reference like User::"alice" or {"type":…,"id":…}"#;

/// A reference to a Cedar entity, such as `User::"alice"`. Parsed from the Cedar string form
/// (`User::"alice"`) or the JSON form (`{"type": "User", "id": "alice"}`); a value that exists has a
/// valid type name. It displays in the Cedar form and serialises in the JSON form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityRef(EntityUid);

/// Why a value is not an entity reference; the message is shown to callers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{EXPECTED_REF} ({reason})")]
pub struct EntityRefError {
    reason: String,
}

impl EntityRef {
    /// From a type name (`User`, `Photos::Album`) and an id, which may contain any character.
    pub fn new(entity_type: &str, id: &str) -> Result<Self, EntityRefError> {
        let type_name = cedar_policy::EntityTypeName::from_str(entity_type)
            .map_err(|error| EntityRefError { reason: format!("invalid entity type `{entity_type}`: {error}") })?;
        Ok(Self(EntityUid::from_type_name_and_id(type_name, cedar_policy::EntityId::new(id))))
    }

    /// From either form held in a JSON value: a string in Cedar syntax, or an object with `type` and
    /// `id` (Cedar's `{"__entity": {…}}` escape is accepted too).
    pub fn from_json(value: &Value) -> Result<Self, EntityRefError> {
        match value {
            Value::String(text) => text.parse(),
            Value::Object(_) => EntityUid::from_json(value.clone())
                .map(Self)
                .map_err(|error| EntityRefError { reason: cedar_message(&error) }),
            _ => Err(EntityRefError { reason: format!("got {}", json_kind(value)) }),
        }
    }

    /// The type name, namespace included (`Photos::Album`).
    pub fn entity_type(&self) -> String {
        self.0.type_name().to_string()
    }

    /// The id, unescaped.
    pub fn id(&self) -> &str {
        self.0.id().unescaped()
    }

    pub(crate) fn uid(&self) -> &EntityUid {
        &self.0
    }

    pub(crate) fn from_uid(uid: EntityUid) -> Self {
        Self(uid)
    }
}

/// The Cedar string form, which escapes the id: the canonical spelling used in cache keys.
impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EntityRef {
    type Err = EntityRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        EntityUid::from_str(text).map(Self).map_err(|error| EntityRefError { reason: error.to_string() })
    }
}

impl Serialize for EntityRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct TypeAndId<'a> {
            #[serde(rename = "type")]
            entity_type: String,
            id: &'a str,
        }
        TypeAndId { entity_type: self.entity_type(), id: self.id() }.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}

/// How a JSON value is named in an error message.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn both_forms_parse_to_the_same_reference() {
        let from_string = EntityRef::from_json(&json!(r#"Photos::Album::"trip \"2024\"""#)).unwrap();
        let from_object = EntityRef::from_json(&json!({"type": "Photos::Album", "id": "trip \"2024\""})).unwrap();
        let from_escape = EntityRef::from_json(&json!({"__entity": {"type": "Photos::Album", "id": "trip \"2024\""}}));
        assert_eq!(from_string, from_object);
        assert_eq!(from_escape.unwrap(), from_object);
        assert_eq!(from_object.entity_type(), "Photos::Album");
        assert_eq!(from_object.id(), "trip \"2024\"");
        assert_eq!(from_object.to_string(), r#"Photos::Album::"trip \"2024\"""#);
        assert_eq!(EntityRef::new("Photos::Album", "trip \"2024\"").unwrap(), from_object);
    }

    #[test]
    fn serialises_as_type_and_id_and_round_trips() {
        let reference = EntityRef::new("User", "alice").unwrap();
        let json = serde_json::to_value(&reference).unwrap();
        assert_eq!(json, json!({"type": "User", "id": "alice"}));
        assert_eq!(serde_json::from_value::<EntityRef>(json).unwrap(), reference);
    }

    #[test]
    fn malformed_references_say_what_was_expected() {
        for bad in [json!("alice"), json!(42), json!({"type": "User"}), json!({"type": "no spaces", "id": "x"})] {
            let error = EntityRef::from_json(&bad).unwrap_err().to_string();
            assert!(error.starts_with(EXPECTED_REF), "{bad}: {error}");
        }
        assert!(EntityRef::new("not a type", "x").is_err());
    }
}
