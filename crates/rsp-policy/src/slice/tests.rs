//! Slicing must not change a response: random policy sets with every scope form, decided whole and sliced.

use std::collections::BTreeSet;
use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Entities, EntityUid, PolicySet, Request, Response};
use serde_json::{Value, json};

use super::ScopeIndex;

/// xorshift64*: deterministic, so a failure replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[self.below(options.len())]
    }
}

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).unwrap()
}

fn entity(kind: &str, id: &str, parents: &[(&str, String)], attrs: Value) -> Value {
    let parents: Vec<Value> = parents.iter().map(|(kind, id)| json!({"type": kind, "id": id})).collect();
    json!({"uid": {"type": kind, "id": id}, "parents": parents, "attrs": attrs})
}

/// Users in groups in roles (so `in` goes through two levels), documents in folders in a root folder,
/// actions in action groups. Some documents lack `secret`, so policies reading it report errors.
fn entities(rng: &mut Rng) -> Entities {
    let mut all = vec![
        entity("Action", "read", &[("Action", "viewing".into())], json!({})),
        entity("Action", "list", &[("Action", "viewing".into())], json!({})),
        entity("Action", "write", &[("Action", "editing".into())], json!({})),
        entity("Action", "delete", &[("Action", "editing".into())], json!({})),
        entity("Action", "viewing", &[("Action", "everything".into())], json!({})),
        entity("Action", "editing", &[("Action", "everything".into())], json!({})),
        entity("Action", "everything", &[], json!({})),
        entity("Folder", "root", &[], json!({})),
    ];
    for r in 0..3 {
        all.push(entity("Role", &format!("r{r}"), &[], json!({})));
    }
    for g in 0..6 {
        all.push(entity("Group", &format!("g{g}"), &[("Role", format!("r{}", rng.below(3)))], json!({})));
    }
    for f in 0..4 {
        all.push(entity("Folder", &format!("f{f}"), &[("Folder", "root".into())], json!({})));
    }
    for u in 0..20 {
        let groups = [("Group", format!("g{}", rng.below(6))), ("Group", format!("g{}", rng.below(6)))];
        all.push(entity("User", &format!("u{u}"), &groups[..1 + rng.below(2)], json!({"level": rng.below(5)})));
    }
    for d in 0..20 {
        let attrs = if rng.below(3) == 0 {
            json!({"owner": {"__entity": {"type": "User", "id": format!("u{}", rng.below(20))}}})
        } else {
            json!({"owner": {"__entity": {"type": "User", "id": format!("u{}", rng.below(20))}}, "secret": rng.below(2) == 0})
        };
        all.push(entity("Doc", &format!("d{d}"), &[("Folder", format!("f{}", rng.below(4)))], attrs));
    }
    Entities::from_json_value(Value::Array(all), None).unwrap()
}

fn policies(rng: &mut Rng, count: usize) -> PolicySet {
    let mut text = String::new();
    for i in 0..count {
        let effect = rng.pick(&["permit", "permit", "forbid"]);
        let principal = match rng.below(8) {
            0 => "principal".to_owned(),
            1 => format!("principal == User::\"u{}\"", rng.below(22)),
            2 => format!("principal in Group::\"g{}\"", rng.below(6)),
            3 => format!("principal in Role::\"r{}\"", rng.below(3)),
            4 => "principal is User".to_owned(),
            5 => format!("principal is User in Group::\"g{}\"", rng.below(6)),
            6 => format!("principal is Group in Role::\"r{}\"", rng.below(3)),
            _ => format!("principal in User::\"u{}\"", rng.below(20)),
        };
        let action = match rng.below(5) {
            0 => "action".to_owned(),
            1 => format!("action == Action::\"{}\"", rng.pick(&["read", "list", "write", "delete", "nothing"])),
            2 => format!("action in Action::\"{}\"", rng.pick(&["viewing", "editing", "everything", "read"])),
            3 => format!(
                "action in [Action::\"{}\", Action::\"{}\"]",
                rng.pick(&["read", "write", "viewing"]),
                rng.pick(&["delete", "editing", "list"])
            ),
            _ => "action in []".to_owned(),
        };
        let resource = match rng.below(7) {
            0 => "resource".to_owned(),
            1 => format!("resource == Doc::\"d{}\"", rng.below(22)),
            2 => format!("resource in Folder::\"f{}\"", rng.below(4)),
            3 => "resource in Folder::\"root\"".to_owned(),
            4 => "resource is Doc".to_owned(),
            5 => format!("resource is Doc in Folder::\"f{}\"", rng.below(4)),
            _ => "resource is Folder".to_owned(),
        };
        let condition = rng.pick(&[
            "",
            "when { principal.level > 2 }",
            "when { resource.secret }",
            "unless { context.night }",
            "when { resource.owner == principal }",
        ]);
        text.push_str(&format!("@id(\"p{i}\")\n{effect}({principal}, {action}, {resource}) {condition};\n"));
    }
    let parsed = PolicySet::from_str(&text).unwrap();
    // Give the policies their annotated ids, as the compiler does, so reasons name them.
    let mut set = PolicySet::new();
    for policy in parsed.policies() {
        let id = policy.annotation("id").unwrap().to_owned();
        set.add(policy.new_id(cedar_policy::PolicyId::new(id))).unwrap();
    }
    set
}

type Outcome = (cedar_policy::Decision, BTreeSet<String>, BTreeSet<String>);

fn outcome(response: &Response) -> Outcome {
    let diagnostics = response.diagnostics();
    (
        response.decision(),
        diagnostics.reason().map(ToString::to_string).collect(),
        diagnostics.errors().map(ToString::to_string).collect(),
    )
}

#[test]
fn a_sliced_set_decides_every_request_as_the_whole_set_does() {
    let authorizer = Authorizer::new();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut sliced, mut decided, mut with_errors, mut allowed) = (0usize, 0usize, 0usize, 0usize);
    for _set in 0..40 {
        let entities = entities(&mut rng);
        let count = 10 + rng.below(40);
        let set = policies(&mut rng, count);
        let index = ScopeIndex::new(&set);
        for _request in 0..150 {
            let principal = uid(&match rng.below(10) {
                0 => "User::\"ghost\"".to_owned(),
                1 => format!("Group::\"g{}\"", rng.below(6)),
                _ => format!("User::\"u{}\"", rng.below(20)),
            });
            let action =
                uid(&format!("Action::\"{}\"", rng.pick(&["read", "list", "write", "delete", "viewing", "unknown"])));
            let resource = uid(&match rng.below(10) {
                0 => "Doc::\"missing\"".to_owned(),
                1 => format!("Folder::\"f{}\"", rng.below(4)),
                _ => format!("Doc::\"d{}\"", rng.below(20)),
            });
            let context = Context::from_json_value(json!({"night": rng.below(2) == 0}), None).unwrap();
            let request = Request::new(principal.clone(), action.clone(), resource.clone(), context, None).unwrap();
            let whole = outcome(&authorizer.is_authorized(&request, &set, &entities));
            let slice = index.slice(&principal, &action, &resource, &entities);
            if let Some(slice) = &slice {
                sliced += 1;
                assert!(slice.policies().count() < set.policies().count());
                let part = outcome(&authorizer.is_authorized(&request, slice, &entities));
                assert_eq!(part, whole, "{principal} {action} {resource}\n{set}");
            }
            decided += 1;
            with_errors += usize::from(!whole.2.is_empty());
            allowed += usize::from(whole.0 == cedar_policy::Decision::Allow);
        }
    }
    // The sets exercise every outcome, so agreement means something.
    assert!(sliced * 10 > decided * 9, "{sliced} of {decided} requests sliced");
    assert!(with_errors > 100 && allowed > 500 && allowed < decided - 500, "{with_errors} {allowed} {decided}");
}

#[test]
fn a_set_with_templates_is_decided_whole() {
    let set = PolicySet::from_str(
        "permit(principal == ?principal, action, resource);\npermit(principal in Group::\"g0\", action, resource);",
    )
    .unwrap();
    let entities = Entities::empty();
    let index = ScopeIndex::new(&set);
    assert!(index.slice(&uid("User::\"u1\""), &uid("Action::\"read\""), &uid("Doc::\"d1\""), &entities).is_none());
}

#[test]
fn a_request_every_policy_matches_uses_the_whole_set() {
    let set = PolicySet::from_str("permit(principal, action, resource);\nforbid(principal is User, action, resource);")
        .unwrap();
    let index = ScopeIndex::new(&set);
    let entities = Entities::empty();
    let (user, read, doc) = (uid("User::\"u1\""), uid("Action::\"read\""), uid("Doc::\"d1\""));
    assert!(index.slice(&user, &read, &doc, &entities).is_none());
    let group = uid("Group::\"g1\"");
    let slice = index.slice(&group, &read, &doc, &entities).unwrap();
    assert_eq!(slice.policies().count(), 1, "`is User` cannot match a group");
}
