//! What can go wrong, by stage: compiling a document ([`Diagnostic`]s, several at once so an author
//! sees them all), writing entities ([`EntityError`]), reading a request ([`RequestError`]) and
//! installing a snapshot ([`EngineError`]). An evaluation error inside a decision is none of these: it is
//! part of the [`Decision`](crate::Decision), as in Cedar.
//!
//! Messages are lowercase and free of Rust type names, as Cedar's are; the HTTP layer may show them to
//! the caller as they are.

use std::fmt;

use cedar_policy::ffi::DetailedError;
use serde::Serialize;

use crate::source::line_column;

/// Which text of a [`PolicyDocument`](crate::PolicyDocument) a diagnostic's line and column refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosticSource {
    Policies,
    Schema,
    TemplateLinks,
}

/// One problem found while compiling a policy document, in Cedar's words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The text the position refers to.
    pub source: DiagnosticSource,
    /// The policy or template at fault (its `@id`, else Cedar's positional `policyN`), when known.
    pub policy_id: Option<String>,
    /// Cedar's message, lowercase, without a position.
    pub message: String,
    /// 1-based line of the error in `source`, when Cedar gave a location.
    pub line: Option<u32>,
    /// 1-based column, counted in characters.
    pub column: Option<u32>,
}

impl Diagnostic {
    /// A diagnostic with no position.
    pub(crate) fn new(source: DiagnosticSource, policy_id: Option<String>, message: impl Into<String>) -> Self {
        Self { source, policy_id, message: message.into(), line: None, column: None }
    }

    /// Places the diagnostic at a byte offset of `text`.
    pub(crate) fn at(mut self, text: &str, offset: Option<usize>) -> Self {
        if let Some(offset) = offset {
            let (line, column) = line_column(text, offset);
            self.line = Some(line);
            self.column = Some(column);
        }
        self
    }

    /// Converts Cedar's miette diagnostic (through Cedar's own serialisable form, so this crate needs no
    /// miette of its own), placing it at its first labelled span in `text`.
    pub(crate) fn from_cedar(
        source: DiagnosticSource,
        policy_id: Option<String>,
        detail: &DetailedError,
        text: &str,
    ) -> Self {
        let offset = detail.source_locations.first().map(|label| label.loc.start);
        Self::new(source, policy_id, detail.message.clone()).at(text, offset)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(id) = &self.policy_id {
            write!(f, "policy `{id}`: ")?;
        }
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "line {line}, column {column}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Cedar's message with its causes, as Cedar's own tools print it: several Cedar errors keep the
/// specifics in their source (`entity does not conform to the schema: in attribute `level` …`).
pub(crate) fn cedar_message(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Why a set of entities was refused. Nothing is changed when this is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntityError {
    #[error("expected a JSON array of entities")]
    NotAnArray,
    /// The entity at `index` of the array has no readable `uid`.
    #[error("entity {index}: {message}")]
    Malformed { index: usize, message: String },
    #[error("entity {uid} appears more than once")]
    Duplicate { uid: String },
    /// Cedar refused the entities: bad JSON shape, or not conforming to the schema.
    #[error("{0}")]
    Invalid(String),
}

/// Why a decision request could not be evaluated. `field` names the part of the request at fault
/// (`principal`, `action`, `resource`, `context`, `entities`, or `request` for the whole), so the caller
/// can fix it without reading Cedar's internals.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RequestError {
    pub field: &'static str,
    pub message: String,
}

impl RequestError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self { field, message: message.into() }
    }
}

/// Why the engine refused to install a snapshot. Nothing is changed when this is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// Versions only move forward, so a late or repeated reload cannot roll a tenant back, and a cache
    /// keyed by versions can never confuse two contents. A reloader may ignore this error.
    #[error("{kind} version {offered} is not newer than the installed version {installed}")]
    StaleVersion { kind: VersionKind, installed: u64, offered: u64 },
    /// The tenant's entities do not conform to the schema of the policies being installed (or the
    /// entities being installed do not conform to the installed schema).
    #[error("the entities do not conform to the schema: {0}")]
    Entities(#[from] EntityError),
    /// A loaded snapshot was not installed because the tenant was removed (an invalidation was heard)
    /// after the load began: what it read may predate the change. The loader may still answer the one
    /// decision it loaded for; the next one loads again.
    #[error("the tenant was invalidated while its snapshot was loading")]
    Superseded,
}

/// Which of a snapshot's two versions an [`EngineError::StaleVersion`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionKind {
    Policy,
    Entity,
}

impl fmt::Display for VersionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VersionKind::Policy => "policy",
            VersionKind::Entity => "entity",
        })
    }
}
