//! What an author writes: a [`PolicyDocument`] (Cedar policies, an optional schema, template links), and
//! the [`Schema`] once parsed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use cedar_policy::ffi::DetailedError;
use serde::{Deserialize, Serialize};

use crate::EntityRef;
use crate::error::{Diagnostic, DiagnosticSource};

/// A tenant's policies as written: the input of [`validate`](crate::validate).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDocument {
    /// All policies and templates, as one Cedar text. A statement's id is its `@id("…")` annotation,
    /// else Cedar's positional id (`policy0`, `policy1`, … counting every statement).
    pub policies: String,
    /// When present, policies are validated against it (strict mode) and entities and request contexts
    /// must conform to it.
    #[serde(default)]
    pub schema: Option<SchemaSource>,
    /// Template-linked policies, created in order after the templates are parsed.
    #[serde(default)]
    pub template_links: Vec<TemplateLink>,
}

/// A schema's text, in either of Cedar's two syntaxes. Serialised as `{"format": "cedar", "text": "…"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", content = "text", rename_all = "lowercase")]
pub enum SchemaSource {
    /// The human-readable Cedar schema syntax (`entity User; action read appliesTo {…};`).
    Cedar(String),
    /// The JSON schema syntax.
    Json(String),
}

/// A policy made from a template by filling its slots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateLink {
    /// The template's id (its `@id`, or positional id).
    pub template_id: String,
    /// The id of the linked policy; it must not collide with any other id.
    pub new_id: String,
    /// Slot values, keyed `?principal` and `?resource`.
    pub values: BTreeMap<String, EntityRef>,
}

/// A parsed Cedar schema. Cheap to clone; two clones are the [same](Schema::same) schema, which lets an
/// entity store built against it skip re-validation.
#[derive(Clone)]
pub struct Schema(Arc<cedar_policy::Schema>);

impl Schema {
    /// Parses a schema. On success also returns Cedar's warnings (e.g. a type shadowing a builtin).
    pub fn parse(source: &SchemaSource) -> Result<(Self, Vec<Diagnostic>), Vec<Diagnostic>> {
        let schema_diagnostic = |detail: DetailedError, text: &str| {
            let mut found = vec![Diagnostic::from_cedar(DiagnosticSource::Schema, None, &detail, text)];
            found.extend(
                detail
                    .related
                    .iter()
                    .map(|related| Diagnostic::from_cedar(DiagnosticSource::Schema, None, related, text)),
            );
            found
        };
        match source {
            SchemaSource::Cedar(text) => match cedar_policy::Schema::from_cedarschema_str(text) {
                Ok((schema, warnings)) => {
                    let warnings = warnings
                        .map(|warning| {
                            Diagnostic::from_cedar(DiagnosticSource::Schema, None, &DetailedError::from(&warning), text)
                        })
                        .collect();
                    Ok((Self(Arc::new(schema)), warnings))
                }
                Err(error) => Err(schema_diagnostic(DetailedError::from(&error), text)),
            },
            SchemaSource::Json(text) => match cedar_policy::Schema::from_json_str(text) {
                Ok(schema) => Ok((Self(Arc::new(schema)), Vec::new())),
                Err(error) => Err(schema_diagnostic(DetailedError::from(&error), text)),
            },
        }
    }

    /// Whether both are clones of one parsed schema (not a structural comparison).
    pub fn same(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    pub(crate) fn cedar(&self) -> &cedar_policy::Schema {
        &self.0
    }
}

/// Whether two optional schemas are the same parse (or both absent).
pub(crate) fn same_schema(a: Option<&Schema>, b: Option<&Schema>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.same(b),
        _ => false,
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema").field("entity_types", &self.0.entity_types().count()).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn document_deserialises_with_defaults() {
        let document: PolicyDocument =
            serde_json::from_value(json!({"policies": "permit(principal, action, resource);"})).unwrap();
        assert_eq!(document.schema, None);
        assert!(document.template_links.is_empty());
        let document: PolicyDocument = serde_json::from_value(json!({
            "policies": "",
            "schema": {"format": "cedar", "text": "entity User;"},
            "template_links": [{"template_id": "t", "new_id": "l", "values": {"?principal": "User::\"a\""}}],
        }))
        .unwrap();
        assert_eq!(document.schema, Some(SchemaSource::Cedar("entity User;".into())));
        assert_eq!(document.template_links[0].values["?principal"].to_string(), r#"User::"a""#);
    }

    #[test]
    fn schema_errors_are_placed_in_the_schema_text() {
        let errors = Schema::parse(&SchemaSource::Cedar("entity User;\nentity Doc in [Nope;\n".into())).unwrap_err();
        let first = &errors[0];
        assert_eq!(first.source, DiagnosticSource::Schema);
        assert_eq!(first.line, Some(2), "{errors:?}");
        assert!(Schema::parse(&SchemaSource::Json("{\"\": {\"entityTypes\": 3}}".into())).is_err());
    }

    #[test]
    fn clones_are_the_same_schema_and_reparses_are_not() {
        let source = SchemaSource::Cedar("entity User;".into());
        let (a, _) = Schema::parse(&source).unwrap();
        let (b, _) = Schema::parse(&source).unwrap();
        assert!(a.same(&a.clone()));
        assert!(!a.same(&b));
        assert!(same_schema(None, None));
        assert!(!same_schema(Some(&a), None));
    }
}
