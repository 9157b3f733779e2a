//! The other subscription fields: name, event types, signing scheme, secret,
//! and a test send's event type.

use hookline_model::envelope::is_valid_event_type;
use hookline_model::matching::Pattern;
use hookline_signature::{Secret, SignatureScheme};
use serde_json::Value;

use super::has_control;
use crate::error::ApiError;

/// Longest accepted name, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 200;
/// Most patterns on one subscription; bounds the fanout index per tenant.
const MAX_EVENT_TYPES: usize = 100;

/// Checks `name`: a string of at most 200 characters without control
/// characters.
pub(crate) fn name(value: &Value) -> Result<String, ApiError> {
    let invalid = |m: &str| ApiError::invalid("invalid_name", m);
    let Value::String(text) = value else {
        return Err(invalid("name must be a string"));
    };
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(invalid("name must be at most 200 characters"));
    }
    if has_control(text) {
        return Err(invalid("name must not contain control characters"));
    }
    Ok(text.clone())
}

/// Checks `event_types`: a non-empty array of exact types, `prefix.*` or
/// `*`. Duplicates are dropped, order kept.
pub(crate) fn event_types(value: &Value) -> Result<Vec<String>, ApiError> {
    let invalid = |m: String| ApiError::invalid("invalid_event_types", m);
    let Value::Array(items) = value else {
        return Err(invalid(
            "event_types must be an array of event type patterns".into(),
        ));
    };
    if items.is_empty() {
        return Err(invalid("event_types must not be empty".into()));
    }
    if items.len() > MAX_EVENT_TYPES {
        return Err(invalid(format!(
            "event_types may hold at most {MAX_EVENT_TYPES} patterns"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::String(text) = item else {
            return Err(invalid(format!("event_types[{i}] must be a string")));
        };
        if Pattern::parse(text).is_none() {
            return Err(invalid(format!(
                "event_types[{i}] `{}` must be an event type such as lead.created, a prefix such as lead.*, or *",
                text.escape_debug()
            )));
        }
        if !out.contains(text) {
            out.push(text.clone());
        }
    }
    Ok(out)
}

/// Checks `signature`: the contract's scheme object, then its own rules.
pub(crate) fn signature(value: &Value) -> Result<SignatureScheme, ApiError> {
    let scheme: SignatureScheme = serde_json::from_value(value.clone()).map_err(|e| {
        ApiError::invalid(
            "invalid_signature",
            format!("signature must be {{\"scheme\": \"standard\"}} or an hmac scheme object: {e}"),
        )
    })?;
    scheme
        .validate()
        .map_err(|e| ApiError::invalid("invalid_signature", e.to_string()))?;
    Ok(scheme)
}

/// Checks a given secret against the scheme it will sign with.
pub(crate) fn secret(scheme: &SignatureScheme, value: &Value) -> Result<String, ApiError> {
    let invalid = |m: String| ApiError::invalid("invalid_secret", m);
    let Value::String(text) = value else {
        return Err(invalid("secret must be a string".into()));
    };
    Secret::parse(scheme, text).map_err(|e| invalid(format!("secret: {e}")))?;
    Ok(text.clone())
}

/// Checks a test send's `event_type`: a concrete type, no wildcard.
pub(crate) fn event_type(value: Option<&Value>) -> Result<String, ApiError> {
    let invalid = |m: &str| ApiError::invalid("invalid_event_type", m);
    match value {
        Some(Value::String(text)) if is_valid_event_type(text) => Ok(text.clone()),
        Some(Value::String(_)) => Err(invalid(
            "event_type must be dot-separated segments of [a-z0-9_], e.g. lead.created",
        )),
        Some(_) => Err(invalid("event_type must be a string")),
        None => Err(invalid("event_type is required")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn code<T>(result: Result<T, ApiError>) -> &'static str {
        match result {
            Err(ApiError::Invalid { code, .. }) => code,
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => "ok",
        }
    }

    #[test]
    fn empty_event_types_are_rejected() {
        assert_eq!(code(event_types(&json!([]))), "invalid_event_types");
        assert_eq!(
            code(event_types(&json!("lead.created"))),
            "invalid_event_types"
        );
    }

    #[test]
    fn malformed_patterns_are_rejected() {
        for bad in ["Lead.Created", "lead.", "lead.*.x", "", "**"] {
            assert_eq!(
                code(event_types(&json!([bad]))),
                "invalid_event_types",
                "{bad}"
            );
        }
    }

    #[test]
    fn exact_prefix_and_wildcard_patterns_are_accepted_once_each() {
        let types = event_types(&json!([
            "lead.created",
            "appointment.*",
            "*",
            "lead.created"
        ]))
        .unwrap();
        assert_eq!(types, ["lead.created", "appointment.*", "*"]);
    }

    #[test]
    fn a_name_longer_than_200_characters_is_rejected() {
        assert_eq!(code(name(&json!("n".repeat(201)))), "invalid_name");
        assert_eq!(code(name(&json!("n".repeat(200)))), "ok");
        assert_eq!(code(name(&json!(5))), "invalid_name");
    }

    #[test]
    fn an_unknown_signature_scheme_is_rejected() {
        assert_eq!(
            code(signature(&json!({"scheme": "ed25519"}))),
            "invalid_signature"
        );
        assert_eq!(
            code(signature(&json!({"scheme": "hmac", "header": "Host"}))),
            "invalid_signature"
        );
        assert_eq!(code(signature(&json!({"scheme": "standard"}))), "ok");
    }

    #[test]
    fn a_secret_that_does_not_fit_its_scheme_is_rejected() {
        let standard = SignatureScheme::Standard;
        assert_eq!(
            code(secret(&standard, &json!("too-short"))),
            "invalid_secret"
        );
        assert_eq!(
            code(secret(&standard, &json!("0123456789abcdef0123"))),
            "invalid_secret"
        );
        let generated = hookline_signature::generate_secret();
        assert_eq!(code(secret(&standard, &json!(generated))), "ok");
        let hmac = signature(&json!({"scheme": "hmac", "header": "X-Signature"})).unwrap();
        assert_eq!(code(secret(&hmac, &json!("0123456789abcdef"))), "ok");
        assert_eq!(
            code(secret(&hmac, &json!("0123456789abcde"))),
            "invalid_secret"
        );
    }

    #[test]
    fn a_test_event_type_must_be_concrete() {
        assert_eq!(code(event_type(Some(&json!("lead.created")))), "ok");
        assert_eq!(
            code(event_type(Some(&json!("lead.*")))),
            "invalid_event_type"
        );
        assert_eq!(code(event_type(None)), "invalid_event_type");
    }
}
