use super::*;
use crate::document::SchemaSource;
use crate::{EntityRef, TemplateLink};

fn document(policies: &str) -> PolicyDocument {
    PolicyDocument { policies: policies.to_owned(), ..PolicyDocument::default() }
}

const SCHEMA: &str = r#"
entity User { department: String };
entity Doc { owner: User, department: String };
action read appliesTo { principal: User, resource: Doc, context: { mfa: Bool } };
"#;

fn with_schema(policies: &str) -> PolicyDocument {
    PolicyDocument { schema: Some(SchemaSource::Cedar(SCHEMA.to_owned())), ..document(policies) }
}

fn link(template_id: &str, new_id: &str, values: &[(&str, &str)]) -> TemplateLink {
    TemplateLink {
        template_id: template_id.to_owned(),
        new_id: new_id.to_owned(),
        values: values.iter().map(|(slot, uid)| ((*slot).to_owned(), uid.parse::<EntityRef>().unwrap())).collect(),
    }
}

#[test]
fn policies_take_their_id_annotation_else_their_position() {
    let compiled = validate(&document(
        r#"permit(principal, action, resource);
           @id("named") @other("x") forbid(principal, action, resource);
           permit(principal == ?principal, action, resource);
           @id("tpl") permit(principal, action, resource == ?resource);"#,
    ))
    .unwrap();
    assert_eq!(compiled.policy_ids(), ["named", "policy0"]);
    assert_eq!(compiled.template_ids(), ["policy2", "tpl"]);
}

#[test]
fn duplicate_ids_are_reported_at_the_second_statement() {
    let errors = validate(&document(
        "@id(\"a\") permit(principal, action, resource);\n\n  @id(\"a\") forbid(principal, action, resource);\n\
         @id(\"policy0\") permit(principal, action, resource);\npermit(principal, action, resource);",
    ))
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let duplicate = &errors[0];
    assert_eq!(duplicate.policy_id.as_deref(), Some("a"));
    assert_eq!((duplicate.line, duplicate.column), (Some(3), Some(3)));
    assert!(duplicate.message.contains('a'), "{}", duplicate.message);

    // An @id may also collide with a positional id.
    let errors = validate(&document(
        "@id(\"policy1\") permit(principal, action, resource);\npermit(principal, action, resource);",
    ))
    .unwrap_err();
    assert_eq!(errors[0].policy_id.as_deref(), Some("policy1"));
    assert_eq!(errors[0].line, Some(2));
}

#[test]
fn a_syntax_error_names_the_policy_line_and_column() {
    let text = "@id(\"ok\") permit(principal, action, resource);\n\
                @id(\"broken\")\npermit(principal, action, resource) when { principal.level >= };\n\
                permit(principal, action, resource);";
    let errors = validate(&document(text)).unwrap_err();
    let error = &errors[0];
    assert_eq!(error.source, DiagnosticSource::Policies);
    assert_eq!(error.policy_id.as_deref(), Some("broken"));
    assert_eq!(error.line, Some(3), "{errors:?}");
    assert_eq!(error.column, Some(63), "{errors:?}");
    assert!(error.message.starts_with("unexpected token"), "{}", error.message);

    let errors =
        validate(&document("permit(principal, action, resource);\nforbid(principal, action, resourc);")).unwrap_err();
    assert_eq!(errors[0].policy_id.as_deref(), Some("policy1"), "{errors:?}");
    assert_eq!(errors[0].line, Some(2));
}

#[test]
fn a_missing_semicolon_is_attributed_to_the_last_statement() {
    let errors =
        validate(&document("permit(principal, action, resource);\n@id(\"last\") permit(principal, action, resource)"))
            .unwrap_err();
    assert_eq!(errors[0].policy_id.as_deref(), Some("last"), "{errors:?}");
    assert_eq!(errors[0].line, Some(2));
}

#[test]
fn the_empty_document_compiles_to_no_policies() {
    let compiled = validate(&document("")).unwrap();
    assert!(compiled.policy_ids().is_empty());
    assert!(compiled.schema().is_none());
}

#[test]
fn strict_validation_against_the_schema_reports_each_policy() {
    let compiled = validate(&with_schema(
        r#"@id("good") permit(principal, action == Action::"read", resource) when { resource.owner == principal && context.mfa };"#,
    ))
    .unwrap();
    assert!(compiled.schema().is_some());
    assert_eq!(compiled.policy_ids(), ["good"]);

    let errors = validate(&with_schema(
        "@id(\"fine\") permit(principal, action, resource);\n\
         @id(\"typo\") permit(principal, action == Action::\"read\", resource)\n  when { resource.ownr == principal };",
    ))
    .unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = &errors[0];
    assert_eq!(error.policy_id.as_deref(), Some("typo"));
    assert_eq!(error.line, Some(3), "{error:?}");
    assert!(error.message.contains("ownr"), "{}", error.message);
    assert!(error.message.starts_with(char::is_lowercase), "{}", error.message);
}

#[test]
fn schema_errors_stop_compilation() {
    let bad = PolicyDocument {
        schema: Some(SchemaSource::Cedar("entity User {".to_owned())),
        ..document("permit(principal, action, resource);")
    };
    let errors = validate(&bad).unwrap_err();
    assert!(errors.iter().all(|error| error.source == DiagnosticSource::Schema), "{errors:?}");

    let json = PolicyDocument {
        schema: Some(SchemaSource::Json(r#"{"": {"entityTypes": {"User": {}}, "actions": {"read": {}}}}"#.to_owned())),
        ..document(r#"permit(principal == User::"a", action == Action::"read", resource);"#)
    };
    assert!(validate(&json).is_ok(), "{:?}", validate(&json).unwrap_err());
}

#[test]
fn templates_are_linked_under_their_ids() {
    let mut doc = with_schema(
        r#"@id("viewer") permit(principal == ?principal, action == Action::"read", resource == ?resource);"#,
    );
    doc.template_links = vec![
        link("viewer", "alice-d1", &[("?principal", r#"User::"alice""#), ("?resource", r#"Doc::"d1""#)]),
        link("viewer", "bob-d2", &[("?principal", r#"User::"bob""#), ("?resource", r#"Doc::"d2""#)]),
    ];
    let compiled = validate(&doc).unwrap();
    assert_eq!(compiled.policy_ids(), ["alice-d1", "bob-d2"]);
    assert_eq!(compiled.template_ids(), ["viewer"]);
}

#[test]
fn bad_links_are_diagnosed_by_link_id() {
    let mut doc = document("@id(\"t\") permit(principal == ?principal, action, resource);");
    doc.template_links = vec![
        link("nope", "l1", &[("?principal", r#"User::"a""#)]),
        link("t", "l2", &[("?who", r#"User::"a""#)]),
        link("t", "l3", &[]),
        link("t", "t", &[("?principal", r#"User::"a""#)]),
    ];
    let errors = validate(&doc).unwrap_err();
    let ids: Vec<_> = errors.iter().map(|error| error.policy_id.as_deref().unwrap()).collect();
    assert_eq!(ids, ["l1", "l2", "l3", "t"], "{errors:?}");
    assert!(errors.iter().all(|error| error.source == DiagnosticSource::TemplateLinks && error.line.is_none()));
    assert!(errors[1].message.contains("?who"));
}

#[test]
fn links_are_validated_against_the_schema() {
    let template = r#"@id("viewer") permit(principal == ?principal, action == Action::"read", resource == ?resource);"#;
    let mut doc = with_schema(template);
    doc.template_links =
        vec![link("viewer", "unknown", &[("?principal", r#"Nope::"x""#), ("?resource", r#"Doc::"d1""#)])];
    let errors = validate(&doc).unwrap_err();
    assert_eq!(errors[0].policy_id.as_deref(), Some("unknown"), "{errors:?}");

    // A known type in the wrong place makes a policy that can never apply: Cedar warns, it does not refuse.
    doc.template_links =
        vec![link("viewer", "never", &[("?principal", r#"Doc::"d1""#), ("?resource", r#"Doc::"d1""#)])];
    let compiled = validate(&doc).unwrap();
    assert_eq!(compiled.warnings()[0].policy_id.as_deref(), Some("never"), "{:?}", compiled.warnings());
}

#[test]
fn diagnostics_display_their_position() {
    let diagnostic = Diagnostic {
        source: DiagnosticSource::Policies,
        policy_id: Some("p".into()),
        message: "unexpected token".into(),
        line: Some(2),
        column: Some(7),
    };
    assert_eq!(diagnostic.to_string(), "policy `p`: line 2, column 7: unexpected token");
}

#[test]
fn names_action_sees_only_explicit_action_scopes() {
    let compile =
        |text: &str| validate(&PolicyDocument { policies: text.into(), ..PolicyDocument::default() }).unwrap();
    let scope: EntityRef = "Action::\"RequestScope\"".parse().unwrap();
    assert!(!compile("permit(principal, action, resource);").names_action(&scope));
    assert!(compile("permit(principal, action == Action::\"RequestScope\", resource);").names_action(&scope));
    assert!(
        compile("forbid(principal, action in [Action::\"x\", Action::\"RequestScope\"], resource);")
            .names_action(&scope)
    );
    assert!(!compile("permit(principal, action == Action::\"read\", resource);").names_action(&scope));
}
