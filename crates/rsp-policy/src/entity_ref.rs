//! [`EntityRef`]: a Cedar entity uid parsed at the edge, from either of the two forms callers write.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{LazyLock, PoisonError, RwLock};

use cedar_policy::{EntityId, EntityTypeName, EntityUid};
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
        let type_name = type_name(entity_type)
            .map_err(|error| EntityRefError { reason: format!("invalid entity type `{entity_type}`: {error}") })?;
        Ok(Self(EntityUid::from_type_name_and_id(type_name, EntityId::new(id))))
    }

    /// From either form held in a JSON value: a string in Cedar syntax, or an object with `type` and
    /// `id` (Cedar's `{"__entity": {…}}` escape is accepted too).
    pub fn from_json(value: &Value) -> Result<Self, EntityRefError> {
        match value {
            Value::String(text) => text.parse(),
            Value::Object(fields) => match plain_object(fields) {
                Some(plain) => Ok(plain),
                None => EntityUid::from_json(value.clone())
                    .map(Self)
                    .map_err(|error| EntityRefError { reason: cedar_message(&error) }),
            },
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

    /// Writes `["Type","id"]`, the id unescaped: one spelling per entity, for cache keys. Cheaper than the
    /// Cedar form, whose id escaping took a tenth of the batch endpoint's time. A type name is Cedar
    /// identifiers joined by `::` (ASCII letters, digits and `_`), so it needs no JSON escaping and cannot
    /// contain the quote that ends it.
    pub(crate) fn write_key(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        use std::io::Write;
        out.extend_from_slice(b"[\"");
        write!(out, "{}", self.0.type_name()).map_err(serde_json::Error::io)?;
        out.extend_from_slice(b"\",");
        serde_json::to_writer(&mut *out, self.id())?;
        out.push(b']');
        Ok(())
    }

    pub(crate) fn uid(&self) -> &EntityUid {
        &self.0
    }

    pub(crate) fn from_uid(uid: EntityUid) -> Self {
        Self(uid)
    }
}

/// The Cedar string form, which escapes the id (`User::"a\"b"`).
impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for EntityRef {
    type Err = EntityRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(plain) = plain_text(text) {
            return Ok(plain);
        }
        EntityUid::from_str(text).map(Self).map_err(|error| EntityRefError { reason: error.to_string() })
    }
}

/// The most type names [`type_name`] remembers; past it the memory starts again, so callers sending
/// ever-new names cost parse time, never memory.
const REMEMBERED_TYPE_NAMES: usize = 1024;

/// Type names already parsed. Every decision request names three entities, Cedar's parser is a full
/// grammar (a few microseconds a name), and a tenant uses a handful of types.
static TYPE_NAMES: LazyLock<RwLock<HashMap<Box<str>, EntityTypeName>>> = LazyLock::new(RwLock::default);

/// `text` as a type name, parsed by Cedar once per process. Only names made of ASCII letters, digits,
/// `_` and `:` are remembered: for those Cedar's every parser (type name, uid string, JSON) agrees.
fn type_name(text: &str) -> Result<EntityTypeName, Box<cedar_policy::ParseErrors>> {
    if !is_plain_type_name(text) {
        return EntityTypeName::from_str(text).map_err(Box::new);
    }
    if let Some(known) = TYPE_NAMES.read().unwrap_or_else(PoisonError::into_inner).get(text) {
        return Ok(known.clone());
    }
    let parsed = EntityTypeName::from_str(text).map_err(Box::new)?;
    let mut known = TYPE_NAMES.write().unwrap_or_else(PoisonError::into_inner);
    if known.len() >= REMEMBERED_TYPE_NAMES {
        known.clear();
    }
    known.insert(text.into(), parsed.clone());
    Ok(parsed)
}

/// Only ASCII letters, digits, `_` and `:`: no whitespace, comments or escapes, on which Cedar's parsers
/// could differ.
fn is_plain_type_name(text: &str) -> bool {
    text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':')
}

/// The reference in `Type::"id"` without Cedar's parser, when the type is a plain name and the id has no
/// escapes (printable ASCII other than `"` and `\`), as decision requests write them. `None` for
/// anything else, which Cedar's parser reads (or explains).
fn plain_text(text: &str) -> Option<EntityRef> {
    // A type name cannot contain `"`, so the first `::"` starts the id.
    let (entity_type, rest) = text.split_once("::\"")?;
    let id = rest.strip_suffix('"')?;
    let plain_id = id.bytes().all(|byte| matches!(byte, b' '..=b'~') && byte != b'"' && byte != b'\\');
    if !(is_plain_type_name(entity_type) && plain_id) {
        return None;
    }
    EntityRef::new(entity_type, id).ok()
}

/// The reference in `{"type": …, "id": …}` (exactly those two fields, both strings), built by
/// [`EntityRef::new`]; `None` for any other object, which Cedar's JSON reader reads (or explains).
fn plain_object(fields: &serde_json::Map<String, Value>) -> Option<EntityRef> {
    let (Some(Value::String(entity_type)), Some(Value::String(id))) = (fields.get("type"), fields.get("id")) else {
        return None;
    };
    if fields.len() != 2 || !is_plain_type_name(entity_type) {
        return None;
    }
    EntityRef::new(entity_type, id).ok()
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

    /// The fast paths must read exactly what Cedar's parsers read, and refuse what they refuse.
    #[test]
    fn every_form_reads_as_cedar_reads_it() {
        let types = [
            "User",
            "Photos::Album",
            "_x9",
            "A::B::C",
            "if",
            "true",
            "in",
            "__cedar",
            "__cedar::X",
            "9User",
            "User:",
            "User:::X",
            "::User",
            "User::",
            "",
            "Us er",
            "User ",
            "Üser",
            "a::if",
            "is",
            "has",
            "like",
        ];
        let ids = ["alice", "", "a b", "a::\"b", "tab\there", "back\\slash", "quote\"d", "é", "*", "U123", "\u{0}"];
        for entity_type in types {
            for id in ids {
                let literal = serde_json::to_string(id).unwrap();
                let text = format!("{entity_type}::{literal}");
                let cedar = EntityUid::from_str(&text).ok();
                assert_eq!(text.parse::<EntityRef>().ok().map(|r| r.0), cedar, "{text}");
                // The Cedar string form escapes differently from JSON: try Cedar's own spelling too.
                if let Some(uid) = &cedar {
                    assert_eq!(EntityRef::from_str(&uid.to_string()).unwrap().0, *uid);
                }
                let object = json!({"type": entity_type, "id": id});
                let cedar = EntityUid::from_json(object.clone()).ok();
                assert_eq!(EntityRef::from_json(&object).ok().map(|r| r.0), cedar, "{object}");
                let with_more = json!({"type": entity_type, "id": id, "extra": 1});
                let cedar = EntityUid::from_json(with_more.clone()).ok();
                assert_eq!(EntityRef::from_json(&with_more).ok().map(|r| r.0), cedar, "{with_more}");
            }
            let new = EntityRef::new(entity_type, "x").ok().map(|r| r.0);
            let cedar = EntityTypeName::from_str(entity_type)
                .ok()
                .map(|name| EntityUid::from_type_name_and_id(name, EntityId::new("x")));
            assert_eq!(new, cedar, "{entity_type}");
        }
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
