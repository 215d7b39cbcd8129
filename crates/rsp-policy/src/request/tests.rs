use serde_json::json;

use super::*;

fn parse(value: Value) -> Result<DecisionRequest, RequestError> {
    DecisionRequest::from_json(value)
}

#[test]
fn both_reference_forms_are_accepted() {
    let strings = parse(json!({
        "principal": "User::\"alice\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\"",
        "context": {"mfa": true},
    }))
    .unwrap();
    let objects = parse(json!({
        "principal": {"type": "User", "id": "alice"}, "action": {"type": "Action", "id": "read"},
        "resource": {"type": "Doc", "id": "d1"}, "context": {"mfa": true},
    }))
    .unwrap();
    assert_eq!(strings, objects);
    assert_eq!(strings.action.to_string(), r#"Action::"read""#);
    assert_eq!(strings.context["mfa"], json!(true));
    assert_eq!(strings.entities, None);
}

#[test]
fn context_and_entities_are_optional() {
    let request = parse(
        json!({"principal": "User::\"a\"", "action": "Action::\"r\"", "resource": "Doc::\"d\"", "context": null}),
    )
    .unwrap();
    assert!(request.context.is_empty());
    let with_entities = parse(json!({
        "principal": "User::\"a\"", "action": "Action::\"r\"", "resource": "Doc::\"d\"",
        "entities": [{"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": []}],
    }))
    .unwrap();
    assert_eq!(with_entities.entities.map(|entities| entities.len()), Some(1));
}

#[test]
fn malformed_fields_are_named() {
    let base = json!({"principal": "User::\"a\"", "action": "Action::\"r\"", "resource": "Doc::\"d\""});
    let with = |field: &str, value: Value| {
        let mut request = base.clone();
        request[field] = value;
        parse(request).unwrap_err()
    };
    let error = with("principal", json!("alice"));
    assert_eq!(error.field, "principal");
    assert!(
        error
            .to_string()
            .starts_with(r#"principal: expected an entity reference like User::"alice" or {"type":…,"id":…}"#),
        "{error}"
    );
    assert_eq!(with("action", json!(7)).field, "action");
    assert_eq!(with("resource", json!({"type": "Doc"})).field, "resource");
    assert_eq!(with("context", json!([1])).to_string(), "context: expected a JSON object, got an array");
    assert_eq!(with("entities", json!({})).to_string(), "entities: expected a JSON array of entities, got an object");
    assert_eq!(with("contxt", json!({})).to_string(), "request: unknown field `contxt`");

    let mut missing = base.clone();
    missing.as_object_mut().unwrap().remove("resource");
    let error = parse(missing).unwrap_err();
    assert_eq!(error.field, "resource");
    assert!(error.message.starts_with("missing; expected an entity reference"), "{error}");
    assert_eq!(parse(json!([1])).unwrap_err().to_string(), "request: expected a JSON object, got an array");
}

#[test]
fn serde_deserialisation_reports_the_field_too() {
    let error = serde_json::from_str::<DecisionRequest>(
        r#"{"principal": 1, "action": "Action::\"r\"", "resource": "D::\"d\""}"#,
    )
    .unwrap_err();
    assert!(error.to_string().starts_with("principal: expected an entity reference"), "{error}");
    let request: DecisionRequest =
        serde_json::from_str(r#"{"principal": "User::\"a\"", "action": "Action::\"r\"", "resource": "D::\"d\""}"#)
            .unwrap();
    let round_trip: DecisionRequest = serde_json::from_value(serde_json::to_value(&request).unwrap()).unwrap();
    assert_eq!(round_trip, request);
}

#[test]
fn canonical_bytes_ignore_spelling_and_key_order() {
    let a = parse(json!({
        "principal": "User::\"alice\"", "action": "Action::\"read\"", "resource": "Doc::\"d1\"",
        "context": {"b": {"y": 1, "x": [true, {"q": "s", "p": null}]}, "a": "text \"quoted\""},
    }))
    .unwrap();
    let b = parse(json!({
        "context": {"a": "text \"quoted\"", "b": {"x": [true, {"p": null, "q": "s"}], "y": 1}},
        "resource": {"type": "Doc", "id": "d1"}, "action": {"type": "Action", "id": "read"},
        "principal": {"__entity": {"type": "User", "id": "alice"}},
    }))
    .unwrap();
    let bytes = a.canonical_bytes().unwrap();
    assert_eq!(bytes, b.canonical_bytes().unwrap());
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        r#"[["User","alice"],["Action","read"],["Doc","d1"],{"a":"text \"quoted\"","b":{"x":[true,{"p":null,"q":"s"}],"y":1}}]"#
    );

    let other_context = a.clone().with_context(Map::new());
    assert_ne!(other_context.canonical_bytes(), a.canonical_bytes());
    assert_eq!(a.with_entities(Vec::new()).canonical_bytes(), None, "requests with entities are never cached");
}

#[test]
fn canonical_bytes_tell_apart_every_id_however_it_is_spelled() {
    let ids = ["a", "a\"", "a\\", "a'b", "a\"],[\"Doc\",\"b", "::\"", "é", "a b", ""];
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        let as_object = parse(json!({
            "principal": {"type": "User", "id": id}, "action": "Action::\"read\"", "resource": "Doc::\"d1\"",
        }))
        .unwrap();
        let as_string = parse(json!({
            "principal": EntityRef::new("User", id).unwrap().to_string(), "action": "Action::\"read\"",
            "resource": "Doc::\"d1\"",
        }))
        .unwrap();
        let bytes = as_object.canonical_bytes().unwrap();
        assert_eq!(bytes, as_string.canonical_bytes().unwrap(), "{id}");
        assert!(seen.insert(bytes), "{id} shares its key with another id");
    }
}

/// The text reader's fast path must agree with the value reader on every shape, errors included.
#[test]
fn text_and_value_readers_agree() {
    let texts = [
        r#"{"principal":"User::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\"","context":{"mfa":true,"n":1}}"#,
        r#"{"principal":"User::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"{"principal":"User::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\"","context":null,"entities":null}"#,
        r#"{"principal":"User::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\"","entities":[{"uid":{"type":"Doc","id":"d"},"attrs":{},"parents":[]}]}"#,
        r#"{"principal":{"type":"User","id":"a"},"action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"{"principal":"User::\"a\"","principal":"User::\"b\"","action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"{"principal":"User::\"a\\\"q\"","action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"{"principal":"User::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\"","extra":1}"#,
        r#"{"principal":"User::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\"","context":[1]}"#,
        r#"{"principal":"User::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\"","entities":{}}"#,
        r#"{"principal":"not a ref","action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"{"principal":"if::\"a\"","action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"{"action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"{"principal":7,"action":"Action::\"r\"","resource":"Doc::\"d\""}"#,
        r#"[1,2]"#,
        r#""text""#,
    ];
    for text in texts {
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(DecisionRequest::from_json_text(text), DecisionRequest::from_json(value), "{text}");
    }
    let broken = DecisionRequest::from_json_text("{\"principal\": ").unwrap_err();
    assert!(broken.to_string().contains("invalid JSON"), "{broken}");
}
