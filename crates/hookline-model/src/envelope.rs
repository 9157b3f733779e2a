//! The event envelope producers send, its validation, and the delivery body
//! rendered from it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

/// A validated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique per tenant.
    pub id: String,
    /// Owner of the subscriptions it may match.
    pub tenant: String,
    /// Dot-separated type, the routing key.
    pub event_type: String,
    /// When it happened (the producer's clock, or ingestion time).
    pub occurred_at: DateTime<Utc>,
    /// The payload object.
    pub data: Map<String, Value>,
}

/// Why an envelope was refused: a stable `code` for programs and a `message`
/// for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EventError {
    /// Stable machine-readable code, e.g. `invalid_tenant`.
    pub code: &'static str,
    /// What is wrong, naming the field.
    pub message: String,
}

/// Largest encoded `data` object.
pub const MAX_DATA_BYTES: usize = 256 * 1024;

fn error(code: &'static str, message: impl Into<String>) -> EventError {
    EventError {
        code,
        message: message.into(),
    }
}

/// Whether `tenant` matches `[A-Za-z0-9_.-]{1,64}`.
pub fn is_valid_tenant(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `event_type` is dot-separated segments of `[a-z0-9_]`.
pub fn is_valid_event_type(event_type: &str) -> bool {
    event_type.len() <= 255
        && event_type.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// The id rule of envelopes: `[A-Za-z0-9_.:-]`, 1 to 128 characters.
pub fn is_valid_event_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'))
}

impl Event {
    /// Parses and validates raw JSON. `default_id` supplies the id when the
    /// producer gave none; `now` stands in for a missing `occurred_at`.
    pub fn parse(
        raw: &[u8],
        now: DateTime<Utc>,
        default_id: impl FnOnce() -> String,
    ) -> Result<Event, EventError> {
        let value: Value = serde_json::from_slice(raw)
            .map_err(|e| error("invalid_json", format!("the body is not valid JSON: {e}")))?;
        Self::from_value(value, now, default_id)
    }

    /// Validates an already-parsed envelope (one element of a batch).
    pub fn from_value(
        value: Value,
        now: DateTime<Utc>,
        default_id: impl FnOnce() -> String,
    ) -> Result<Event, EventError> {
        let Value::Object(mut object) = value else {
            return Err(error("invalid_envelope", "the event must be a JSON object"));
        };
        let tenant = match object.remove("tenant") {
            Some(Value::String(t)) if is_valid_tenant(&t) => t,
            Some(Value::String(_)) => {
                return Err(error(
                    "invalid_tenant",
                    "tenant must match [A-Za-z0-9_.-]{1,64}",
                ))
            }
            Some(_) => return Err(error("invalid_tenant", "tenant must be a string")),
            None => return Err(error("missing_field", "tenant is required")),
        };
        let event_type = match object.remove("type") {
            Some(Value::String(t)) if is_valid_event_type(&t) => t,
            Some(Value::String(_)) => {
                return Err(error(
                    "invalid_type",
                    "type must be dot-separated segments of [a-z0-9_], e.g. lead.created",
                ))
            }
            Some(_) => return Err(error("invalid_type", "type must be a string")),
            None => return Err(error("missing_field", "type is required")),
        };
        let id = match object.remove("id") {
            None | Some(Value::Null) => default_id(),
            Some(Value::String(id)) if is_valid_event_id(&id) => id,
            Some(_) => {
                return Err(error(
                    "invalid_id",
                    "id must be a string of [A-Za-z0-9_.:-], 1 to 128 characters",
                ))
            }
        };
        let occurred_at = match object.remove("occurred_at") {
            None | Some(Value::Null) => now,
            Some(Value::String(text)) => DateTime::parse_from_rfc3339(&text)
                .map_err(|_| {
                    error(
                        "invalid_occurred_at",
                        "occurred_at must be an RFC 3339 timestamp such as 2026-01-14T12:17:23.884Z",
                    )
                })?
                .with_timezone(&Utc),
            Some(_) => {
                return Err(error(
                    "invalid_occurred_at",
                    "occurred_at must be an RFC 3339 string",
                ))
            }
        };
        let data = match object.remove("data") {
            Some(Value::Object(data)) => data,
            Some(_) => return Err(error("invalid_data", "data must be a JSON object")),
            None => return Err(error("missing_field", "data is required")),
        };
        let event = Event {
            id,
            tenant,
            event_type,
            occurred_at,
            data,
        };
        let data_len = serde_json::to_vec(&event.data)
            .map(|v| v.len())
            .unwrap_or(0);
        if data_len > MAX_DATA_BYTES {
            return Err(error(
                "data_too_large",
                format!("data is {data_len} bytes encoded; the limit is {MAX_DATA_BYTES}"),
            ));
        }
        Ok(event)
    }

    /// `occurred_at` as RFC 3339 with milliseconds, as deliveries show it.
    pub fn timestamp(&self) -> String {
        self.occurred_at
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// The normalized envelope ingest publishes (id and occurred_at filled).
    pub fn to_envelope_json(&self) -> Vec<u8> {
        let value = serde_json::json!({
            "id": self.id,
            "tenant": self.tenant,
            "type": self.event_type,
            "occurred_at": self.timestamp(),
            "data": self.data,
        });
        serde_json::to_vec(&value).unwrap_or_default()
    }

    /// The body POSTed to receivers; rendered once per event and shared by
    /// every delivery of it.
    pub fn delivery_body(&self, test: bool) -> Vec<u8> {
        serde_json::to_vec(&self.delivery_value(test)).unwrap_or_default()
    }

    /// The standard body as a value: the context of body templates and
    /// filters, which see exactly the fields a receiver would.
    pub fn delivery_value(&self, test: bool) -> Value {
        let mut value = serde_json::json!({
            "type": self.event_type,
            "timestamp": self.timestamp(),
            "tenant": self.tenant,
            "id": self.id,
            "data": self.data,
        });
        if test {
            value["test"] = Value::Bool(true);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-01-14T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn parse(json: &str) -> Result<Event, EventError> {
        Event::parse(json.as_bytes(), now(), || "evt_generated".into())
    }

    #[test]
    fn a_complete_envelope_is_accepted_as_given() {
        let e = parse(r#"{"id":"evt_1","tenant":"acme","type":"lead.created","occurred_at":"2026-01-14T12:17:23.884Z","data":{"a":1}}"#).unwrap();
        assert_eq!(e.id, "evt_1");
        assert_eq!(e.event_type, "lead.created");
        assert_eq!(e.timestamp(), "2026-01-14T12:17:23.884Z");
    }

    #[test]
    fn a_missing_id_and_time_are_filled_in() {
        let e = parse(r#"{"tenant":"acme","type":"lead.created","data":{}}"#).unwrap();
        assert_eq!(e.id, "evt_generated");
        assert_eq!(e.occurred_at, now());
    }

    #[test]
    fn each_invalid_field_has_its_own_code() {
        let cases = [
            ("not json", "invalid_json"),
            ("[]", "invalid_envelope"),
            (r#"{"type":"a","data":{}}"#, "missing_field"),
            (r#"{"tenant":"a b","type":"a","data":{}}"#, "invalid_tenant"),
            (
                r#"{"tenant":"acme","type":"Lead.Created","data":{}}"#,
                "invalid_type",
            ),
            (
                r#"{"tenant":"acme","type":"lead..created","data":{}}"#,
                "invalid_type",
            ),
            (r#"{"tenant":"acme","type":"a","data":[]}"#, "invalid_data"),
            (r#"{"tenant":"acme","type":"a"}"#, "missing_field"),
            (
                r#"{"tenant":"acme","type":"a","data":{},"occurred_at":"yesterday"}"#,
                "invalid_occurred_at",
            ),
            (
                r#"{"tenant":"acme","type":"a","data":{},"id":"has space"}"#,
                "invalid_id",
            ),
        ];
        for (json, code) in cases {
            assert_eq!(parse(json).unwrap_err().code, code, "{json}");
        }
    }

    #[test]
    fn a_tenant_longer_than_64_characters_is_rejected() {
        let json = format!(
            r#"{{"tenant":"{}","type":"a","data":{{}}}}"#,
            "t".repeat(65)
        );
        assert_eq!(parse(&json).unwrap_err().code, "invalid_tenant");
    }

    #[test]
    fn data_over_256_kib_is_rejected() {
        let big = "x".repeat(MAX_DATA_BYTES);
        let json = format!(r#"{{"tenant":"acme","type":"a","data":{{"b":"{big}"}}}}"#);
        assert_eq!(parse(&json).unwrap_err().code, "data_too_large");
    }

    #[test]
    fn the_delivery_body_has_the_contract_fields_and_marks_tests() {
        let e = parse(r#"{"id":"evt_1","tenant":"acme","type":"lead.created","data":{"n":1}}"#)
            .unwrap();
        let body: Value = serde_json::from_slice(&e.delivery_body(false)).unwrap();
        assert_eq!(body["type"], "lead.created");
        assert_eq!(body["id"], "evt_1");
        assert_eq!(body["tenant"], "acme");
        assert_eq!(body["timestamp"], "2026-01-14T12:00:00.000Z");
        assert_eq!(body["data"]["n"], 1);
        assert!(body.get("test").is_none());
        let test: Value = serde_json::from_slice(&e.delivery_body(true)).unwrap();
        assert_eq!(test["test"], true);
    }
}
