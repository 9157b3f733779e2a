//! Static header rules: HTTP token names, no names Hookline sets itself, no
//! CR/LF in values, bounded count and size.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{has_control, Rules};
use crate::error::ApiError;

/// Longest accepted header value, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 1024;
/// Longest accepted header name, in bytes.
const MAX_NAME_BYTES: usize = 256;
/// Names the deliverer sets on every request, compared case-insensitively;
/// `webhook-*` is reserved as a family.
const RESERVED: [&str; 4] = ["host", "content-length", "content-type", "user-agent"];
/// Hop-by-hop headers (RFC 9110 §7.6.1) and their kin: they describe one
/// connection, not the message, and a static one could smuggle a second
/// request or break the deliverer's connection reuse. `proxy-*` is refused
/// as a family.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::invalid("invalid_headers", message)
}

/// RFC 9110 `tchar`: what a header name may consist of.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks the `headers` object and returns it as a map. `signature_headers`
/// are the names the subscription's signing scheme writes, which a static
/// header must not shadow.
pub(crate) fn headers(
    value: &Value,
    rules: &Rules,
    signature_headers: &[&str],
) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(object) = value else {
        return Err(invalid(
            "headers must be an object of header names to string values",
        ));
    };
    if object.len() > rules.max_headers {
        return Err(invalid(format!(
            "headers may hold at most {} entries",
            rules.max_headers
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = BTreeMap::new();
    for (name, value) in object {
        if !is_token(name) || name.len() > MAX_NAME_BYTES {
            return Err(invalid(format!(
                "headers: `{}` is not a valid header name",
                name.escape_debug()
            )));
        }
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("webhook-") || RESERVED.contains(&lower.as_str()) {
            return Err(invalid(format!(
                "headers: `{name}` is set by Hookline and cannot be overridden"
            )));
        }
        if lower.starts_with("proxy-") || HOP_BY_HOP.contains(&lower.as_str()) {
            return Err(invalid(format!(
                "headers: `{name}` is a hop-by-hop header and cannot be sent as a static header"
            )));
        }
        if signature_headers
            .iter()
            .any(|s| s.eq_ignore_ascii_case(name))
        {
            return Err(invalid(format!(
                "headers: `{name}` is the signature's own header"
            )));
        }
        if !seen.insert(lower) {
            return Err(invalid(format!(
                "headers: `{name}` is given twice (names are case-insensitive)"
            )));
        }
        let Value::String(text) = value else {
            return Err(invalid(format!("headers.{name} must be a string")));
        };
        if has_control(text) {
            return Err(invalid(format!(
                "headers.{name} must not contain CR, LF or other control characters"
            )));
        }
        if text.len() > MAX_VALUE_BYTES {
            return Err(invalid(format!(
                "headers.{name} must be at most {MAX_VALUE_BYTES} bytes"
            )));
        }
        out.insert(name.clone(), text.clone());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use hookline_model::ssrf::Guard;
    use serde_json::json;

    use super::*;

    fn rules() -> Rules {
        Rules {
            allow_insecure_urls: false,
            guard: Guard::default(),
            max_headers: 3,
        }
    }

    fn rejected(value: Value) -> bool {
        matches!(
            headers(&value, &rules(), &["X-Signature"]),
            Err(ApiError::Invalid {
                code: "invalid_headers",
                ..
            })
        )
    }

    #[test]
    fn ordinary_static_headers_are_accepted() {
        let map = headers(
            &json!({"Authorization": "Bearer abc", "X-Team": "crm"}),
            &rules(),
            &[],
        )
        .unwrap();
        assert_eq!(map["Authorization"], "Bearer abc");
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn a_header_value_with_cr_or_lf_is_rejected() {
        assert!(rejected(json!({"X-A": "a\r\nX-Injected: 1"})));
        assert!(rejected(json!({"X-A": "a\nb"})));
    }

    #[test]
    fn headers_hookline_sets_itself_are_rejected_in_any_case() {
        for name in [
            "webhook-id",
            "Webhook-Signature",
            "Host",
            "content-length",
            "Content-Type",
            "USER-AGENT",
        ] {
            assert!(rejected(json!({ name: "x" })), "{name}");
        }
    }

    #[test]
    fn hop_by_hop_headers_are_rejected_in_any_case() {
        for name in [
            "Connection",
            "keep-alive",
            "Transfer-Encoding",
            "TE",
            "Trailer",
            "upgrade",
            "Expect",
            "Proxy-Authorization",
            "proxy-connection",
        ] {
            assert!(rejected(json!({ name: "x" })), "{name}");
        }
    }

    #[test]
    fn a_static_header_may_not_shadow_the_signature_header() {
        assert!(rejected(json!({"x-signature": "forged"})));
    }

    #[test]
    fn a_name_that_is_not_an_http_token_is_rejected() {
        for name in ["", "X Team", "X:Team", "Ünïcode"] {
            assert!(rejected(json!({ name: "x" })), "{name:?}");
        }
    }

    #[test]
    fn too_many_headers_are_rejected() {
        assert!(rejected(json!({"A": "1", "B": "2", "C": "3", "D": "4"})));
    }

    #[test]
    fn a_value_over_1024_bytes_is_rejected() {
        assert!(rejected(json!({"X-A": "a".repeat(MAX_VALUE_BYTES + 1)})));
        assert!(!rejected(json!({"X-A": "a".repeat(MAX_VALUE_BYTES)})));
    }

    #[test]
    fn non_string_values_and_non_objects_are_rejected() {
        assert!(rejected(json!({"X-A": 1})));
        assert!(rejected(json!(["X-A"])));
    }

    #[test]
    fn names_differing_only_in_case_are_rejected_as_duplicates() {
        assert!(rejected(json!({"X-A": "1", "x-a": "2"})));
    }
}
