//! The contract's error body, `{"error": {"code", "message"}}`, shared by
//! ingest and the api so that a client parses every Hookline error alike.

use serde::Serialize;

/// Every error answer: one `error` field, so that a success body is never
/// mistaken for an error.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(as = Error))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// A code for programs and a message for people.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable and machine-readable, such as `invalid_url`: branch on this.
    pub code: String,
    /// Names the field or the limit at fault: show this.
    pub message: String,
}

impl ErrorBody {
    /// The body for `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_the_contract_says() {
        let body = serde_json::to_value(ErrorBody::new("invalid_url", "url: not https")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "invalid_url", "message": "url: not https"}})
        );
    }
}
