//! The event type catalogue as the services that check events hold it.
//!
//! The api stores the catalogue in PostgreSQL and announces each change on
//! `hookline.control`; fanout reloads it from PostgreSQL and ingest through
//! the api, so ingest stays free of a database. Both hold the same
//! [`Catalogue`]: each schema compiled once per load, never per event.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde_json::{Map, Value};

/// Why an event's `data` was refused: the failing place as a JSON pointer
/// into the envelope (`/data/contact/email`), so a producer finds the field
/// without reading the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data does not satisfy the schema of event type {event_type} at {path}: {reason}")]
pub struct SchemaViolation {
    /// The event's type, whose schema refused it.
    pub event_type: String,
    /// JSON pointer into the envelope, always under `/data`.
    pub path: String,
    /// What the schema wanted there.
    pub reason: String,
}

impl SchemaViolation {
    /// The contract's error code for it, shared by ingest's `400` and the
    /// `x-hookline-error` of the invalid queue.
    pub const CODE: &'static str = "schema_mismatch";
}

/// One stored schema that would not compile. The api compiles every schema
/// before storing it, so this only happens across versions of `jsonschema`;
/// that type is then left unchecked (and logged) rather than refusing
/// every event of it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the schema of event type {event_type} does not compile: {reason}")]
pub struct CompileError {
    /// The type whose schema failed.
    pub event_type: String,
    /// The compiler's words.
    pub reason: String,
}

/// Compiled schemas by event type. Types without a schema are absent: their
/// events are never checked.
#[derive(Default)]
pub struct Catalogue {
    validators: HashMap<String, jsonschema::Validator>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut types: Vec<_> = self.validators.keys().collect();
        types.sort();
        f.debug_struct("Catalogue").field("types", &types).finish()
    }
}

impl Catalogue {
    /// Compiles every `(event type, schema)`; a schema that fails is left
    /// out and returned, so the caller can log it.
    pub fn compile(
        entries: impl IntoIterator<Item = (String, Value)>,
    ) -> (Self, Vec<CompileError>) {
        let mut validators = HashMap::new();
        let mut errors = Vec::new();
        for (event_type, schema) in entries {
            match jsonschema::validator_for(&schema) {
                Ok(validator) => {
                    validators.insert(event_type, validator);
                }
                Err(e) => errors.push(CompileError {
                    event_type,
                    reason: e.to_string(),
                }),
            }
        }
        (Self { validators }, errors)
    }

    /// How many types have a schema.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Whether no type has a schema (then nothing is ever checked).
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Checks `data` against the schema of `event_type`, if it has one.
    /// Takes the map by `&mut` only to view it as a JSON value without a
    /// copy; it is left exactly as it was.
    pub fn check(
        &self,
        event_type: &str,
        data: &mut Map<String, Value>,
    ) -> Result<(), SchemaViolation> {
        let Some(validator) = self.validators.get(event_type) else {
            return Ok(());
        };
        let value = Value::Object(std::mem::take(data));
        let outcome = validator.validate(&value).map_err(|error| SchemaViolation {
            event_type: event_type.to_string(),
            path: format!("/data{}", error.instance_path),
            reason: error.to_string(),
        });
        if let Value::Object(map) = value {
            *data = map;
        }
        outcome
    }
}

/// The catalogue a service checks against, replaced whole on every reload
/// so a check never sees half of one load and half of another.
#[derive(Clone, Default)]
pub struct SharedCatalogue(Arc<RwLock<Arc<Catalogue>>>);

impl SharedCatalogue {
    /// The catalogue as of now; cheap (one `Arc` clone), held for one event.
    pub fn current(&self) -> Arc<Catalogue> {
        self.0.read().clone()
    }

    /// Replaces the catalogue with a fresh load, logging the schemas that
    /// did not compile.
    pub fn replace(&self, entries: impl IntoIterator<Item = (String, Value)>) -> usize {
        let (catalogue, errors) = Catalogue::compile(entries);
        for error in errors {
            tracing::warn!(%error, "event type left unchecked");
        }
        let len = catalogue.len();
        *self.0.write() = Arc::new(catalogue);
        len
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn lead_schema() -> Value {
        json!({
            "type": "object",
            "required": ["contact"],
            "properties": {
                "contact": {
                    "type": "object",
                    "required": ["email"],
                    "properties": { "email": { "type": "string" } }
                }
            }
        })
    }

    fn data(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn a_violation_names_the_path_under_data_and_leaves_the_data_intact() {
        let (catalogue, errors) = Catalogue::compile([("lead.created".into(), lead_schema())]);
        assert!(errors.is_empty());
        let mut bad = data(json!({"contact": {"email": 42}}));
        let before = bad.clone();
        let violation = catalogue.check("lead.created", &mut bad).unwrap_err();
        assert_eq!(violation.path, "/data/contact/email");
        assert_eq!(bad, before);
        assert!(violation.to_string().contains("lead.created"));
    }

    #[test]
    fn a_missing_required_field_is_named_at_its_parent() {
        let (catalogue, _) = Catalogue::compile([("lead.created".into(), lead_schema())]);
        let mut bad = data(json!({"contact": {}}));
        let violation = catalogue.check("lead.created", &mut bad).unwrap_err();
        assert_eq!(violation.path, "/data/contact");
        assert!(violation.reason.contains("email"), "{violation}");
    }

    #[test]
    fn valid_data_and_types_without_a_schema_pass() {
        let (catalogue, _) = Catalogue::compile([("lead.created".into(), lead_schema())]);
        let mut good = data(json!({"contact": {"email": "ana@example.com"}}));
        assert_eq!(catalogue.check("lead.created", &mut good), Ok(()));
        let mut anything = data(json!({"x": 1}));
        assert_eq!(catalogue.check("lead.deleted", &mut anything), Ok(()));
    }

    #[test]
    fn a_schema_that_does_not_compile_is_left_out_and_reported() {
        let (catalogue, errors) = Catalogue::compile([
            ("bad.schema".into(), json!({"type": 12})),
            ("lead.created".into(), lead_schema()),
        ]);
        assert_eq!(catalogue.len(), 1);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].event_type, "bad.schema");
    }

    #[test]
    fn a_replace_is_seen_by_the_next_reader_and_not_by_one_holding_the_old() {
        let shared = SharedCatalogue::default();
        let old = shared.current();
        assert_eq!(shared.replace([("lead.created".into(), lead_schema())]), 1);
        assert!(old.is_empty());
        assert_eq!(shared.current().len(), 1);
    }
}
