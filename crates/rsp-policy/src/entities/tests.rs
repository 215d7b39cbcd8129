use serde_json::json;

use super::*;
use crate::document::SchemaSource;

fn uid(text: &str) -> EntityRef {
    text.parse().unwrap()
}

fn in_group(store: &EntityStore, member: &str, group: &str) -> bool {
    store.cedar().is_ancestor_of(uid(group).uid(), uid(member).uid())
}

fn hierarchy() -> EntityStore {
    EntityStore::from_json(
        json!([
            {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 3}, "parents": [{"type": "Group", "id": "eng"}]},
            {"uid": {"type": "Group", "id": "eng"}, "attrs": {}, "parents": [{"type": "Group", "id": "staff"}]},
            {"uid": {"type": "Group", "id": "staff"}, "attrs": {}, "parents": []},
        ]),
        None,
    )
    .unwrap()
}

fn schema() -> Schema {
    let text = "entity Group; entity User in [Group] { level: Long, manager?: User };";
    Schema::parse(&SchemaSource::Cedar(text.to_owned())).unwrap().0
}

#[test]
fn builds_the_transitive_hierarchy() {
    let store = hierarchy();
    assert_eq!(store.len(), 3);
    assert!(store.contains(&uid(r#"Group::"eng""#)));
    assert!(in_group(&store, r#"User::"alice""#, r#"Group::"staff""#));
    assert_eq!(store.to_json().as_array().unwrap().len(), 3);
    let uids: Vec<String> = store.uids().map(|uid| uid.to_string()).collect();
    assert_eq!(uids, [r#"Group::"eng""#, r#"Group::"staff""#, r#"User::"alice""#]);
}

#[test]
fn upsert_returns_a_new_store_and_leaves_the_old_one() {
    let old = hierarchy();
    let new = old
        .upsert(json!([
            {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 4}, "parents": []},
            {"uid": {"type": "User", "id": "bob"}, "attrs": {}, "parents": [{"type": "Group", "id": "eng"}]},
        ]))
        .unwrap();
    assert_eq!((old.len(), new.len()), (3, 4));
    assert!(in_group(&old, r#"User::"alice""#, r#"Group::"staff""#));
    assert!(!in_group(&new, r#"User::"alice""#, r#"Group::"staff""#), "replaced entity has new parents");
    assert!(in_group(&new, r#"User::"bob""#, r#"Group::"staff""#));
}

#[test]
fn delete_recomputes_the_hierarchy_exactly() {
    let store = hierarchy();
    let without_eng = store.delete(&[uid(r#"Group::"eng""#), uid(r#"Group::"absent""#)]).unwrap();
    assert_eq!(without_eng.len(), 2);
    assert!(!in_group(&without_eng, r#"User::"alice""#, r#"Group::"staff""#));
    assert!(in_group(&store, r#"User::"alice""#, r#"Group::"staff""#), "the old snapshot is untouched");
    let unchanged = store.delete(&[uid(r#"User::"nobody""#)]).unwrap();
    assert_eq!(unchanged.len(), 3);
}

#[test]
fn malformed_batches_are_refused_whole() {
    let store = hierarchy();
    assert_eq!(store.upsert(json!({"uid": {}})).unwrap_err(), EntityError::NotAnArray);
    let missing_uid = store.upsert(json!([{"attrs": {}, "parents": []}])).unwrap_err();
    assert!(matches!(missing_uid, EntityError::Malformed { index: 0, .. }), "{missing_uid}");
    let not_object = store.upsert(json!([{"uid": {"type": "User", "id": "x"}}, 3])).unwrap_err();
    assert!(matches!(not_object, EntityError::Malformed { index: 1, .. }), "{not_object}");
    let twice = json!([
        {"uid": {"type": "User", "id": "x"}, "attrs": {}, "parents": []},
        {"uid": {"type": "User", "id": "x"}, "attrs": {}, "parents": []},
    ]);
    assert_eq!(store.upsert(twice).unwrap_err(), EntityError::Duplicate { uid: r#"User::"x""#.into() });
    let bad_parent = store.upsert(json!([{"uid": {"type": "User", "id": "x"}, "attrs": {}, "parents": [7]}]));
    assert!(matches!(bad_parent, Err(EntityError::Invalid(_))), "{bad_parent:?}");
}

#[test]
fn entities_are_checked_against_the_schema() {
    let schema = schema();
    let good = json!([
        {"uid": {"type": "User", "id": "alice"}, "attrs": {"level": 3}, "parents": [{"type": "Group", "id": "eng"}]},
        {"uid": {"type": "User", "id": "bob"}, "attrs": {"level": 1, "manager": {"type": "User", "id": "alice"}}, "parents": []},
    ]);
    let store = EntityStore::from_json(good, Some(&schema)).unwrap();
    assert!(store.schema().unwrap().same(&schema));

    let wrong_type = json!([{"uid": {"type": "User", "id": "carol"}, "attrs": {"level": "high"}, "parents": []}]);
    let error = store.upsert(wrong_type).unwrap_err();
    assert!(matches!(&error, EntityError::Invalid(message) if message.contains("level")), "{error}");
    let undeclared = json!([{"uid": {"type": "Robot", "id": "r2"}, "attrs": {}, "parents": []}]);
    assert!(store.upsert(undeclared).is_err());
}

#[test]
fn a_new_schema_rereads_every_entity() {
    // Without a schema, `{"type", "id"}` in an attribute is a record; with this schema it is a User.
    let raw = json!([{"uid": {"type": "User", "id": "bob"}, "attrs": {"level": 1, "manager": {"type": "User", "id": "a"}}, "parents": []}]);
    let untyped = EntityStore::from_json(raw, None).unwrap();
    let typed = untyped.with_schema(Some(&schema())).unwrap();
    assert!(typed.schema().is_some());
    assert!(typed.with_schema(typed.schema()).unwrap().schema().unwrap().same(typed.schema().unwrap()));

    let extra_attr = EntityStore::from_json(
        json!([{"uid": {"type": "User", "id": "x"}, "attrs": {"level": 1, "shoe": 9}, "parents": []}]),
        None,
    )
    .unwrap();
    assert!(extra_attr.with_schema(Some(&schema())).is_err());
}
