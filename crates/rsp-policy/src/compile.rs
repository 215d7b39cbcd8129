//! [`validate`]: a [`PolicyDocument`] in, a [`CompiledPolicies`] ready to install or every problem out.
//!
//! Steps: parse the schema; parse the policy text with Cedar; give each policy and template the id its
//! `@id` annotation names (Cedar's parser numbers them `policy0`, `policy1`, …); link templates; run
//! Cedar's validator in strict mode when there is a schema. Every step reports all its problems, and any
//! problem means no `CompiledPolicies`: a caller that installs only what compiled can never install half
//! a document.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::ffi::DetailedError;
use cedar_policy::{ActionConstraint, EntityUid, PolicyId, PolicySet, SlotId, ValidationMode, Validator};

use crate::EntityRef;
use crate::document::{PolicyDocument, Schema, TemplateLink};
use crate::error::{Diagnostic, DiagnosticSource, cedar_message};
use crate::slice::ScopeIndex;
use crate::source::{self, Statement};

/// A policy set that parsed, linked and (given a schema) validated. Cheap to clone.
#[derive(Clone)]
pub struct CompiledPolicies {
    set: Arc<PolicySet>,
    /// The set's scopes, so a decision evaluates only the policies that can apply to it.
    scopes: Arc<ScopeIndex>,
    /// The actions some policy names explicitly, read once: every default deny asks.
    named_actions: Arc<HashSet<EntityUid>>,
    schema: Option<Schema>,
    warnings: Vec<Diagnostic>,
}

impl CompiledPolicies {
    /// No policies and no schema: every request is denied.
    pub fn empty() -> Self {
        Self {
            set: Arc::new(PolicySet::new()),
            scopes: Arc::default(),
            named_actions: Arc::default(),
            schema: None,
            warnings: Vec::new(),
        }
    }

    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// Cedar's validation and schema warnings: worth showing an author, never a reason to refuse.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The ids of the policies that take part in decisions (static and template-linked), sorted.
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.set.policies().map(|policy| policy.id().to_string()).collect();
        ids.sort_unstable();
        ids
    }

    /// The ids of the templates, sorted.
    pub fn template_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.set.templates().map(|template| template.id().to_string()).collect();
        ids.sort_unstable();
        ids
    }

    /// Whether some policy names `action` explicitly in its action scope (`action == A` or
    /// `action in [.., A, ..]`). Policies for any action do not count: a tenant opts into governing an
    /// action such as `Action::"RequestScope"` by writing a policy about it.
    pub fn names_action(&self, action: &EntityRef) -> bool {
        self.named_actions.contains(action.uid())
    }

    pub(crate) fn policy_set(&self) -> &PolicySet {
        &self.set
    }

    /// The policies a request's scopes can match; `None` means the whole set (see [`crate::slice`]).
    pub(crate) fn slice(
        &self,
        principal: &cedar_policy::EntityUid,
        action: &cedar_policy::EntityUid,
        resource: &cedar_policy::EntityUid,
        entities: &cedar_policy::Entities,
    ) -> Option<PolicySet> {
        self.scopes.slice(principal, action, resource, entities)
    }
}

impl fmt::Debug for CompiledPolicies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledPolicies")
            .field("policies", &self.set.num_of_policies())
            .field("templates", &self.set.num_of_templates())
            .field("schema", &self.schema)
            .field("warnings", &self.warnings.len())
            .finish()
    }
}

/// Compiles a document; see the module documentation for the steps. `Err` holds every problem found,
/// in the order of the steps, and is never empty.
#[tracing::instrument(skip_all, fields(bytes = document.policies.len(), links = document.template_links.len()))]
pub fn validate(document: &PolicyDocument) -> Result<CompiledPolicies, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let schema = match document.schema.as_ref().map(Schema::parse) {
        None => None,
        Some(Ok((schema, schema_warnings))) => {
            warnings.extend(schema_warnings);
            Some(schema)
        }
        Some(Err(schema_errors)) => {
            errors.extend(schema_errors);
            None
        }
    };
    let text = document.policies.as_str();
    let statements = source::statements(text);
    let set = match PolicySet::from_str(text) {
        Ok(parsed) => Some(reidentify(&parsed, text, &statements, &mut errors)),
        Err(parse_errors) => {
            errors.extend(
                parse_errors.iter().map(|error| syntax_diagnostic(&DetailedError::from(error), text, &statements)),
            );
            None
        }
    };
    let Some(mut set) = set else {
        return Err(errors);
    };
    for link in &document.template_links {
        if let Err(diagnostic) = add_link(&mut set, link) {
            errors.push(diagnostic);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(schema) = &schema {
        let result = Validator::new(schema.cedar().clone()).validate(&set, ValidationMode::Strict);
        let diagnostic = |policy_id: &PolicyId, detail: DetailedError| {
            Diagnostic::from_cedar(DiagnosticSource::Policies, Some(policy_id.to_string()), &detail, text)
        };
        errors
            .extend(result.validation_errors().map(|error| diagnostic(error.policy_id(), DetailedError::from(error))));
        warnings.extend(
            result.validation_warnings().map(|warning| diagnostic(warning.policy_id(), DetailedError::from(warning))),
        );
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    tracing::debug!(policies = set.num_of_policies(), templates = set.num_of_templates(), "policies compiled");
    let scopes = Arc::new(ScopeIndex::new(&set));
    let named_actions = Arc::new(named_actions(&set));
    Ok(CompiledPolicies { set: Arc::new(set), scopes, named_actions, schema, warnings })
}

/// The actions named in action scopes (`action == A`, `action in [.., A, ..]`); `action` alone names none.
fn named_actions(set: &PolicySet) -> HashSet<EntityUid> {
    set.policies()
        .flat_map(|policy| match policy.action_constraint() {
            ActionConstraint::Eq(named) => vec![named],
            ActionConstraint::In(named) => named,
            ActionConstraint::Any => Vec::new(),
        })
        .collect()
}

/// A syntax error, attributed to the statement its location falls in.
fn syntax_diagnostic(detail: &DetailedError, text: &str, statements: &[Statement]) -> Diagnostic {
    let offset = detail.source_locations.first().map(|label| label.loc.start);
    let policy_id = offset.and_then(|offset| {
        let index = statements
            .iter()
            .position(|statement| offset < statement.span.end)
            .or_else(|| statements.len().checked_sub(1))?;
        statements.get(index).map(|statement| statement.policy_id(index))
    });
    Diagnostic::from_cedar(DiagnosticSource::Policies, policy_id, detail, text)
}

/// A parsed static policy or template, before it gets its final id.
enum Parsed {
    Static(cedar_policy::Policy),
    Template(cedar_policy::Template),
}

/// Rebuilds the set with each policy and template under its `@id` (when annotated). Two statements with
/// one id are an error at the second, in text order.
fn reidentify(parsed: &PolicySet, text: &str, statements: &[Statement], errors: &mut Vec<Diagnostic>) -> PolicySet {
    let mut items: Vec<(Option<usize>, String, Parsed)> = parsed
        .policies()
        .map(|policy| {
            let id = policy.annotation("id").map_or_else(|| policy.id().to_string(), str::to_owned);
            (source::positional_index(policy.id().as_ref()), id, Parsed::Static(policy.clone()))
        })
        .chain(parsed.templates().map(|template| {
            let id = template.annotation("id").map_or_else(|| template.id().to_string(), str::to_owned);
            (source::positional_index(template.id().as_ref()), id, Parsed::Template(template.clone()))
        }))
        .collect();
    items.sort_by_key(|(index, _, _)| *index);
    let mut set = PolicySet::new();
    for (index, id, item) in items {
        let added = match item {
            Parsed::Static(policy) => set.add(policy.new_id(PolicyId::new(&id))),
            Parsed::Template(template) => set.add_template(template.new_id(PolicyId::new(&id))),
        };
        if let Err(error) = added {
            let offset = index.and_then(|index| statements.get(index)).map(|statement| statement.span.start);
            errors.push(Diagnostic::new(DiagnosticSource::Policies, Some(id), cedar_message(&error)).at(text, offset));
        }
    }
    set
}

fn add_link(set: &mut PolicySet, link: &TemplateLink) -> Result<(), Diagnostic> {
    let failed = |message: String| Diagnostic::new(DiagnosticSource::TemplateLinks, Some(link.new_id.clone()), message);
    let mut values = HashMap::new();
    for (slot, value) in &link.values {
        let slot_id = match slot.as_str() {
            "?principal" => SlotId::principal(),
            "?resource" => SlotId::resource(),
            other => return Err(failed(format!("unknown slot `{other}`; expected `?principal` or `?resource`"))),
        };
        values.insert(slot_id, value.uid().clone());
    }
    set.link(PolicyId::new(&link.template_id), PolicyId::new(&link.new_id), values)
        .map_err(|error| failed(cedar_message(&error)))
}

#[cfg(test)]
mod tests;
