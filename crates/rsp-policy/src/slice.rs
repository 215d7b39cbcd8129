//! [`ScopeIndex`]: the policies of a set whose scope can match a request, so that Cedar evaluates only
//! those.
//!
//! Cedar evaluates a policy as `principal scope && action scope && resource scope && conditions`, left to
//! right and short-circuiting, so a policy whose scope is false for a request neither determines the
//! decision nor reports an error: leaving it out of the set changes nothing in Cedar's response (the
//! decision, the determining policies, the errors). The scope test below is Cedar's own: `==` on entity
//! uids, `is` on the entity type, and `in` through the same `Entities` the decision uses (an entity not
//! in them is `in` only itself, as in Cedar). On the peers' 100-policy workload a request's scopes leave a
//! few policies of the hundred, and Cedar's time per decision shrinks with them.
//!
//! Every uid and type a scope names is numbered once, when the set is compiled; a request then costs a
//! hash lookup for each of its three entities and their ancestors, and the test of each policy's scope is
//! a comparison of small integers.
//!
//! Cedar can only hold a static policy in a set built this way (a template-linked one needs its template
//! and link), so a set with templates is not sliced: it is decided whole, as before.

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, Entities, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint,
};

/// A policy set's scopes, read once when the set is compiled.
#[derive(Debug, Default)]
pub(crate) struct ScopeIndex {
    /// `None` when the set must be decided whole (it has templates).
    scoped: Option<Scoped>,
}

#[derive(Debug)]
struct Scoped {
    /// Every entity uid a scope names, numbered.
    uids: HashMap<EntityUid, u32>,
    /// Every entity type an `is` scope names, numbered.
    types: HashMap<EntityTypeName, u32>,
    policies: Vec<(Policy, PolicyScope)>,
}

#[derive(Debug)]
struct PolicyScope {
    principal: Scope,
    action: ActionScope,
    resource: Scope,
}

/// A principal or resource scope over numbered uids and types.
#[derive(Debug)]
enum Scope {
    Any,
    Eq(u32),
    In(u32),
    Is(u32),
    IsIn(u32, u32),
}

#[derive(Debug)]
enum ActionScope {
    Any,
    Eq(u32),
    In(Vec<u32>),
}

/// Numbers uids and types as the index is built.
#[derive(Default)]
struct Numbering {
    uids: HashMap<EntityUid, u32>,
    types: HashMap<EntityTypeName, u32>,
}

impl Numbering {
    fn uid(&mut self, uid: EntityUid) -> u32 {
        let next = u32::try_from(self.uids.len()).unwrap_or(u32::MAX);
        *self.uids.entry(uid).or_insert(next)
    }

    fn type_name(&mut self, type_name: EntityTypeName) -> u32 {
        let next = u32::try_from(self.types.len()).unwrap_or(u32::MAX);
        *self.types.entry(type_name).or_insert(next)
    }

    fn principal(&mut self, constraint: PrincipalConstraint) -> Scope {
        match constraint {
            PrincipalConstraint::Any => Scope::Any,
            PrincipalConstraint::Eq(uid) => Scope::Eq(self.uid(uid)),
            PrincipalConstraint::In(uid) => Scope::In(self.uid(uid)),
            PrincipalConstraint::Is(type_name) => Scope::Is(self.type_name(type_name)),
            PrincipalConstraint::IsIn(type_name, uid) => Scope::IsIn(self.type_name(type_name), self.uid(uid)),
        }
    }

    fn resource(&mut self, constraint: ResourceConstraint) -> Scope {
        match constraint {
            ResourceConstraint::Any => Scope::Any,
            ResourceConstraint::Eq(uid) => Scope::Eq(self.uid(uid)),
            ResourceConstraint::In(uid) => Scope::In(self.uid(uid)),
            ResourceConstraint::Is(type_name) => Scope::Is(self.type_name(type_name)),
            ResourceConstraint::IsIn(type_name, uid) => Scope::IsIn(self.type_name(type_name), self.uid(uid)),
        }
    }

    fn action(&mut self, constraint: ActionConstraint) -> ActionScope {
        match constraint {
            ActionConstraint::Any => ActionScope::Any,
            ActionConstraint::Eq(uid) => ActionScope::Eq(self.uid(uid)),
            ActionConstraint::In(uids) => ActionScope::In(uids.into_iter().map(|uid| self.uid(uid)).collect()),
        }
    }
}

/// One request entity as the scopes see it: its own number, its type's, and the numbers of itself and its
/// ancestors in the decision's entities (only those some scope names; the rest cannot matter).
struct Lineage {
    itself: Option<u32>,
    type_name: Option<u32>,
    within: Vec<u32>,
}

impl Lineage {
    fn of(uid: &EntityUid, entities: &Entities, scoped: &Scoped) -> Self {
        let itself = scoped.uids.get(uid).copied();
        let ancestors = entities.ancestors(uid).into_iter().flatten();
        let within = itself.into_iter().chain(ancestors.filter_map(|ancestor| scoped.uids.get(ancestor).copied()));
        Self { itself, type_name: scoped.types.get(uid.type_name()).copied(), within: within.collect() }
    }

    /// Cedar's `uid in target`: the entity itself or one of its ancestors.
    fn is_in(&self, target: u32) -> bool {
        self.within.contains(&target)
    }

    fn matches(&self, scope: &Scope) -> bool {
        match *scope {
            Scope::Any => true,
            Scope::Eq(uid) => self.itself == Some(uid),
            Scope::In(uid) => self.is_in(uid),
            Scope::Is(type_name) => self.type_name == Some(type_name),
            Scope::IsIn(type_name, uid) => self.type_name == Some(type_name) && self.is_in(uid),
        }
    }

    fn matches_action(&self, scope: &ActionScope) -> bool {
        match scope {
            ActionScope::Any => true,
            ActionScope::Eq(uid) => self.itself == Some(*uid),
            ActionScope::In(uids) => uids.iter().any(|uid| self.is_in(*uid)),
        }
    }
}

impl ScopeIndex {
    pub(crate) fn new(set: &PolicySet) -> Self {
        if set.templates().next().is_some() {
            return Self { scoped: None };
        }
        let mut numbering = Numbering::default();
        let policies = set
            .policies()
            .map(|policy| {
                let scope = PolicyScope {
                    principal: numbering.principal(policy.principal_constraint()),
                    action: numbering.action(policy.action_constraint()),
                    resource: numbering.resource(policy.resource_constraint()),
                };
                (policy.clone(), scope)
            })
            .collect();
        Self { scoped: Some(Scoped { uids: numbering.uids, types: numbering.types, policies }) }
    }

    /// The policies whose scope matches the request, as a set of their own; `None` when the whole set is
    /// to be used (it has templates, or every policy matches).
    pub(crate) fn slice(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        entities: &Entities,
    ) -> Option<PolicySet> {
        let scoped = self.scoped.as_ref()?;
        let principal = Lineage::of(principal, entities, scoped);
        let action = Lineage::of(action, entities, scoped);
        let resource = Lineage::of(resource, entities, scoped);
        let matching: Vec<&Policy> = scoped
            .policies
            .iter()
            .filter(|(_, scope)| {
                principal.matches(&scope.principal)
                    && action.matches_action(&scope.action)
                    && resource.matches(&scope.resource)
            })
            .map(|(policy, _)| policy)
            .collect();
        if matching.len() == scoped.policies.len() {
            return None;
        }
        // Ids are unique in the source set and every policy is static, so adding cannot fail; if it
        // somehow did, deciding with the whole set is still right.
        PolicySet::from_policies(matching.into_iter().cloned()).ok()
    }
}

#[cfg(test)]
mod tests;
