//! [`EntityStore`]: a tenant's entities as an immutable snapshot.
//!
//! The store keeps each entity's Cedar JSON in a map keyed by uid, so a write is a map edit, and builds
//! Cedar's `Entities` (which holds the transitive closure of the hierarchy) once per new store. Building
//! from the raw JSON rather than patching the previous `Entities` keeps the hierarchy exact after a
//! delete, and lets a new schema re-read every entity (the schema decides whether `{"type", "id"}` in an
//! attribute is an entity reference or a record).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use cedar_policy::{Entities, EntityUid};
use serde_json::Value;

use crate::document::{Schema, same_schema};
use crate::entity_ref::{EntityRef, json_kind};
use crate::error::{EntityError, cedar_message};

/// A set of entities, valid against `schema` when it has one. Every change returns a new store and leaves
/// this one as it was, so a decision in flight keeps a consistent view. Cheap to clone.
#[derive(Clone)]
pub struct EntityStore {
    /// Each entity's JSON as written, keyed by uid.
    records: Arc<BTreeMap<EntityUid, Arc<Value>>>,
    /// Built from `records` (plus the schema's action entities).
    entities: Arc<Entities>,
    schema: Option<Schema>,
}

impl EntityStore {
    /// No entities and no schema.
    pub fn empty() -> Self {
        Self { records: Arc::default(), entities: Arc::new(Entities::empty()), schema: None }
    }

    /// Entities from Cedar's JSON format (`[{"uid": {"type", "id"}, "attrs": {…}, "parents": […]}]`),
    /// checked against `schema` when given.
    pub fn from_json(json: Value, schema: Option<&Schema>) -> Result<Self, EntityError> {
        Self { schema: schema.cloned(), ..Self::empty() }.upsert(json)
    }

    /// A new store with the given entities added, or replacing those with the same uid. The batch is
    /// all or nothing; a uid appearing twice in it is an error.
    pub fn upsert(&self, json: Value) -> Result<Self, EntityError> {
        let Value::Array(items) = json else {
            return Err(EntityError::NotAnArray);
        };
        let mut records = BTreeMap::clone(&self.records);
        let mut seen = HashSet::new();
        for (index, item) in items.into_iter().enumerate() {
            let uid = uid_of(&item, index)?;
            if !seen.insert(uid.clone()) {
                return Err(EntityError::Duplicate { uid: uid.to_string() });
            }
            records.insert(uid, Arc::new(item));
        }
        build(records, self.schema.clone())
    }

    /// A new store without the given entities; uids not present are ignored. Entities that named a
    /// removed one as a parent keep the reference, which Cedar treats as an entity with no attributes.
    pub fn delete(&self, uids: &[EntityRef]) -> Result<Self, EntityError> {
        let mut records = BTreeMap::clone(&self.records);
        let before = records.len();
        for uid in uids {
            records.remove(uid.uid());
        }
        if records.len() == before {
            return Ok(self.clone());
        }
        build(records, self.schema.clone())
    }

    /// The same entities checked against another schema (or none). Used when a tenant's schema changes.
    pub fn with_schema(&self, schema: Option<&Schema>) -> Result<Self, EntityError> {
        if same_schema(self.schema.as_ref(), schema) {
            return Ok(self.clone());
        }
        build(BTreeMap::clone(&self.records), schema.cloned())
    }

    /// The schema the entities were checked against.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// How many entities were written (the schema's action entities are not counted).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn contains(&self, uid: &EntityRef) -> bool {
        self.records.contains_key(uid.uid())
    }

    /// The uids of the entities written, in order.
    pub fn uids(&self) -> impl Iterator<Item = EntityRef> + '_ {
        self.records.keys().cloned().map(EntityRef::from_uid)
    }

    /// The entities as written, as one Cedar JSON array ordered by uid: what a storage layer persists.
    pub fn to_json(&self) -> Value {
        Value::Array(self.records.values().map(|record| Value::clone(record)).collect())
    }

    pub(crate) fn cedar(&self) -> &Entities {
        &self.entities
    }
}

impl Default for EntityStore {
    fn default() -> Self {
        Self::empty()
    }
}

impl fmt::Debug for EntityStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityStore").field("entities", &self.records.len()).field("schema", &self.schema).finish()
    }
}

fn uid_of(item: &Value, index: usize) -> Result<EntityUid, EntityError> {
    let malformed = |message: String| EntityError::Malformed { index, message };
    let Value::Object(fields) = item else {
        return Err(malformed(format!("expected an object, got {}", json_kind(item))));
    };
    let uid = fields.get("uid").ok_or_else(|| malformed("missing `uid`".to_owned()))?;
    EntityUid::from_json(uid.clone()).map_err(|error| malformed(cedar_message(&error)))
}

fn build(records: BTreeMap<EntityUid, Arc<Value>>, schema: Option<Schema>) -> Result<EntityStore, EntityError> {
    let json = Value::Array(records.values().map(|record| Value::clone(record)).collect());
    let entities = Entities::from_json_value(json, schema.as_ref().map(Schema::cedar))
        .map_err(|error| EntityError::Invalid(cedar_message(&error)))?;
    Ok(EntityStore { records: Arc::new(records), entities: Arc::new(entities), schema })
}

#[cfg(test)]
mod tests;
