//! The `filter` option: a CEL expression over the envelope, compiled once
//! per subscription revision and evaluated by fanout after the type match.

use std::sync::{Arc, LazyLock};

use cel::{Context, Env, Program, Value as CelValue};
use serde_json::Value;

/// One standard environment for every filter: building it is the costly
/// part of a context, and it never changes.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(Env::stdlib()));

/// The names a filter may use, the same as the templates'.
pub const FIELDS: [&str; 5] = ["type", "id", "tenant", "timestamp", "data"];

/// A compiled `filter`.
pub struct Filter {
    program: Program,
    source: String,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Filter").field(&self.source).finish()
    }
}

/// Why a filter did not compile, for the api's `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterSyntaxError(pub String);

/// Why one evaluation gave no boolean: a missing field, a wrong type. The
/// event counts as not matching, and fanout counts the error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

/// The envelope in CEL's own values, converted once per event and shared
/// by every subscription's filter.
pub struct FilterInput {
    fields: Vec<(&'static str, CelValue)>,
}

impl FilterInput {
    /// Converts the standard body `{"type", "timestamp", "tenant", "id",
    /// "data"}`; a field that is missing reads as `null`.
    pub fn new(envelope: &Value) -> Self {
        let fields = FIELDS
            .iter()
            .map(|name| {
                let value = envelope.get(*name).unwrap_or(&Value::Null);
                (*name, cel::to_value(value).unwrap_or(CelValue::Null))
            })
            .collect();
        FilterInput { fields }
    }
}

impl Filter {
    /// Compiles `source`; it may use only [`FIELDS`] as variables, so a typo
    /// such as `date.amount` is a `422` at create rather than an error on
    /// every event.
    pub fn compile(source: &str) -> Result<Self, FilterSyntaxError> {
        let program = ENV
            .compile(source)
            .map_err(|e| FilterSyntaxError(e.to_string().trim().to_string()))?;
        let references = program.references();
        let unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|name| !FIELDS.contains(name) && !bound_by_macro(source, name))
            .collect();
        if let Some(name) = unknown.first() {
            return Err(FilterSyntaxError(format!(
                "unknown name `{name}`: a filter may use {}",
                FIELDS.join(", ")
            )));
        }
        Ok(Filter {
            program,
            source: source.to_string(),
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the event passes: `Ok(true)` only for a boolean `true`.
    pub fn admits(&self, input: &FilterInput) -> Result<bool, FilterError> {
        let mut context = Context::with_env(ENV.clone());
        for (name, value) in &input.fields {
            context.add_variable_from_value(*name, value.clone());
        }
        match self.program.execute(&context) {
            Ok(CelValue::Bool(admitted)) => Ok(admitted),
            Ok(other) => Err(FilterError(format!(
                "the filter gave {:?}, not a boolean",
                other.type_of()
            ))),
            Err(e) => Err(FilterError(e.to_string())),
        }
    }
}

/// Whether `name` is the variable of a macro such as `exists(t, …)` or
/// `map(x, …)`: CEL binds it as the macro's first argument, and the parser
/// lists it among the expression's variables all the same.
fn bound_by_macro(source: &str, name: &str) -> bool {
    source.match_indices('(').any(|(at, _)| {
        source[at + 1..]
            .trim_start()
            .strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with(','))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn input() -> FilterInput {
        FilterInput::new(&json!({
            "type": "deal.updated", "id": "evt_1", "tenant": "acme",
            "timestamp": "2026-01-14T12:00:00.000Z",
            "data": {"amount": 150, "stage": "won", "tags": ["vip"]}
        }))
    }

    #[test]
    fn a_three_clause_filter_admits_what_it_should() {
        let filter =
            Filter::compile("data.amount > 100 && data.stage == 'won' && type.startsWith('deal.')")
                .unwrap();
        assert_eq!(filter.admits(&input()), Ok(true));
        let filter = Filter::compile("data.amount > 1000 && data.stage == 'won'").unwrap();
        assert_eq!(filter.admits(&input()), Ok(false));
    }

    #[test]
    fn a_missing_field_or_a_wrong_type_is_an_error_not_a_match() {
        let missing = Filter::compile("data.contact.email == 'a@b.c'").unwrap();
        assert!(missing.admits(&input()).is_err());
        let not_bool = Filter::compile("data.amount").unwrap();
        assert!(not_bool.admits(&input()).is_err());
        let guarded = Filter::compile("has(data.contact) && data.contact.email == 'x'").unwrap();
        assert_eq!(guarded.admits(&input()), Ok(false));
    }

    #[test]
    fn a_filter_that_does_not_parse_or_names_an_unknown_field_is_refused() {
        assert!(Filter::compile("data.amount >").is_err());
        let error = Filter::compile("date.amount > 1").unwrap_err();
        assert!(error.0.contains("date"), "{error}");
        assert!(Filter::compile("'vip' in data.tags").is_ok());
        let by_macro = Filter::compile("data.tags.exists(t, t == 'vip')").unwrap();
        assert_eq!(by_macro.admits(&input()), Ok(true));
    }
}
