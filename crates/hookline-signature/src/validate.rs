//! Checks a signing scheme submitted through the API before it is stored.

use crate::scheme::{HmacScheme, SignatureScheme, SignedContent};

/// Why a submitted scheme was refused; `field` is the JSON path the API reports (`422`).
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SchemeError {
    /// JSON path of the offending field, e.g. `signature.header`.
    pub field: String,
    /// What is wrong with it, in words an API user can act on.
    pub message: String,
}

impl SchemeError {
    fn new(field: &str, message: impl Into<String>) -> Self {
        SchemeError {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Longest header name accepted for a signature or timestamp header.
const MAX_HEADER_NAME_LEN: usize = 64;
/// Longest prefix accepted before the encoded signature.
const MAX_PREFIX_LEN: usize = 32;
/// Header names the deliverer sets itself, compared case-insensitively.
const RESERVED_HEADERS: [&str; 4] = ["host", "content-length", "content-type", "user-agent"];

impl SignatureScheme {
    /// Checks a scheme an API user submitted, so that every stored scheme can be sent as
    /// valid HTTP. The error names the offending field as a JSON path such as
    /// `signature.header` or `signature.timestamp_header`.
    pub fn validate(&self) -> Result<(), SchemeError> {
        match self {
            SignatureScheme::Standard => Ok(()),
            SignatureScheme::Hmac(hmac) => validate_hmac(hmac),
        }
    }
}

fn validate_hmac(hmac: &HmacScheme) -> Result<(), SchemeError> {
    check_header_name(&hmac.header).map_err(|m| SchemeError::new("signature.header", m))?;
    check_prefix(&hmac.prefix).map_err(|m| SchemeError::new("signature.prefix", m))?;
    match &hmac.timestamp_header {
        Some(name) => {
            let field = "signature.timestamp_header";
            check_header_name(name).map_err(|m| SchemeError::new(field, m))?;
            if name.eq_ignore_ascii_case(&hmac.header) {
                return Err(SchemeError::new(
                    field,
                    "must differ from the signature header",
                ));
            }
        }
        None if hmac.signed == SignedContent::TimestampDotBody => {
            return Err(SchemeError::new(
                "signature.timestamp_header",
                "is required when signed is \"timestamp.body\"",
            ));
        }
        None => {}
    }
    Ok(())
}

/// RFC 7230 `tchar`: the characters allowed in a header name.
fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn check_header_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_HEADER_NAME_LEN {
        return Err(format!(
            "must be 1 to {MAX_HEADER_NAME_LEN} characters long"
        ));
    }
    if !name.chars().all(is_tchar) {
        return Err(
            "must be a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)".into(),
        );
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("webhook-") || RESERVED_HEADERS.contains(&lower.as_str()) {
        return Err(format!("\"{name}\" is reserved: Hookline sets it itself"));
    }
    Ok(())
}

fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(format!("must be at most {MAX_PREFIX_LEN} characters long"));
    }
    if !prefix.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err("must be printable ASCII without CR or LF".into());
    }
    // HTTP drops leading whitespace from header values, so the receiver would never see it.
    if prefix.starts_with(' ') {
        return Err("must not start with a space".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::{Encoding, TimestampUnit};

    fn hmac(header: &str) -> HmacScheme {
        HmacScheme {
            header: header.into(),
            encoding: Encoding::Hex,
            prefix: String::new(),
            signed: SignedContent::Body,
            timestamp_header: None,
            timestamp_unit: TimestampUnit::Seconds,
        }
    }

    fn field_of(scheme: HmacScheme) -> String {
        SignatureScheme::Hmac(scheme).validate().unwrap_err().field
    }

    #[test]
    fn the_standard_scheme_is_always_valid() {
        SignatureScheme::Standard.validate().unwrap();
    }

    #[test]
    fn the_three_vendor_styles_are_valid() {
        SignatureScheme::Hmac(hmac("X-Signature"))
            .validate()
            .unwrap();
        let mut github = hmac("X-Webhook-Signature");
        github.prefix = "sha256=".into();
        SignatureScheme::Hmac(github).validate().unwrap();
        let mut acme = hmac("X-Acme-Signature");
        acme.signed = SignedContent::TimestampDotBody;
        acme.timestamp_header = Some("X-Acme-Timestamp".into());
        acme.timestamp_unit = TimestampUnit::Millis;
        SignatureScheme::Hmac(acme).validate().unwrap();
    }

    #[test]
    fn a_header_that_is_not_an_http_token_is_rejected_as_signature_header() {
        for bad in ["", "X Signature", "X-Sig:", "X-Sig\r\n", "X-Sïg", "(sig)"] {
            assert_eq!(field_of(hmac(bad)), "signature.header", "{bad:?}");
        }
        assert_eq!(field_of(hmac(&"X".repeat(65))), "signature.header");
        SignatureScheme::Hmac(hmac(&"X".repeat(64)))
            .validate()
            .unwrap();
        SignatureScheme::Hmac(hmac("x!#$%&'*+-.^_`|~9"))
            .validate()
            .unwrap();
    }

    #[test]
    fn reserved_header_names_are_rejected_in_any_case() {
        for bad in [
            "webhook-signature",
            "Webhook-Id",
            "WEBHOOK-anything",
            "Host",
            "content-length",
            "Content-Type",
            "USER-AGENT",
        ] {
            let err = SignatureScheme::Hmac(hmac(bad)).validate().unwrap_err();
            assert_eq!(err.field, "signature.header", "{bad}");
            assert!(err.to_string().starts_with("signature.header: "), "{err}");
        }
        // Only the exact names are reserved, apart from the webhook- family.
        SignatureScheme::Hmac(hmac("X-Host")).validate().unwrap();
        SignatureScheme::Hmac(hmac("Webhook")).validate().unwrap();
    }

    #[test]
    fn a_bad_or_reserved_timestamp_header_is_reported_as_signature_timestamp_header() {
        for bad in ["X Timestamp", "webhook-timestamp", "Content-Type", ""] {
            let mut scheme = hmac("X-Signature");
            scheme.timestamp_header = Some(bad.into());
            assert_eq!(field_of(scheme), "signature.timestamp_header", "{bad:?}");
        }
    }

    #[test]
    fn the_timestamp_header_must_differ_from_the_signature_header() {
        let mut scheme = hmac("X-Signature");
        scheme.timestamp_header = Some("x-signature".into());
        assert_eq!(field_of(scheme), "signature.timestamp_header");
    }

    #[test]
    fn signing_the_timestamp_requires_a_timestamp_header() {
        let mut scheme = hmac("X-Signature");
        scheme.signed = SignedContent::TimestampDotBody;
        let err = SignatureScheme::Hmac(scheme).validate().unwrap_err();
        assert_eq!(err.field, "signature.timestamp_header");
        assert!(err.message.contains("timestamp.body"), "{err}");
    }

    #[test]
    fn a_timestamp_header_without_a_signed_timestamp_is_allowed() {
        let mut scheme = hmac("X-Signature");
        scheme.timestamp_header = Some("X-Timestamp".into());
        SignatureScheme::Hmac(scheme).validate().unwrap();
    }

    #[test]
    fn a_prefix_longer_than_32_characters_is_rejected() {
        let mut scheme = hmac("X-Signature");
        scheme.prefix = "p".repeat(33);
        assert_eq!(field_of(scheme.clone()), "signature.prefix");
        scheme.prefix = "p".repeat(32);
        SignatureScheme::Hmac(scheme).validate().unwrap();
    }

    #[test]
    fn a_prefix_with_control_or_non_ascii_characters_is_rejected() {
        for bad in ["sha256=\r\n", "a\nb", "tab\t", "é=", " v1="] {
            let mut scheme = hmac("X-Signature");
            scheme.prefix = bad.into();
            assert_eq!(field_of(scheme), "signature.prefix", "{bad:?}");
        }
        let mut scheme = hmac("X-Signature");
        scheme.prefix = "t=1, v1=".into();
        SignatureScheme::Hmac(scheme).validate().unwrap();
    }
}
