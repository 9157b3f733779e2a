//! The event a producer sends, checked against the contract's envelope rules
//! when it is built, so that a mistake is an error in the producer rather
//! than a message in `hookline.events.invalid`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

/// The largest `data` Hookline accepts, encoded.
pub const MAX_DATA_BYTES: usize = 256 * 1024;

/// Why an event could not be built; each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// `tenant` is not `[A-Za-z0-9_.-]{1,64}`.
    #[error("tenant `{0}` must match [A-Za-z0-9_.-]{{1,64}}")]
    Tenant(String),
    /// `type` is not dot-separated segments of `[a-z0-9_]`, at most 255
    /// characters.
    #[error("type `{0}` must be dot-separated segments of [a-z0-9_], at most 255 characters, e.g. lead.created")]
    Type(String),
    /// `id` is not `[A-Za-z0-9_.:-]{1,128}`.
    #[error("id `{0}` must be 1 to 128 characters of [A-Za-z0-9_.:-]")]
    Id(String),
    /// `data` did not serialize to a JSON object.
    #[error("data must serialize to a JSON object: {0}")]
    Data(String),
    /// `data` is over [`MAX_DATA_BYTES`] encoded.
    #[error("data is {0} bytes encoded; the limit is {MAX_DATA_BYTES}")]
    TooLarge(usize),
}

/// One event, valid by construction. Its `id` is fixed when it is built
/// (generated when not given), so every retry of a publish carries the same
/// id and receivers can deduplicate on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    id: String,
    tenant: String,
    #[serde(rename = "type")]
    event_type: String,
    occurred_at: String,
    data: Map<String, Value>,
    #[serde(skip)]
    traceparent: Option<String>,
}

impl Event {
    /// Starts an event of `event_type` for `tenant`.
    pub fn builder(tenant: impl Into<String>, event_type: impl Into<String>) -> EventBuilder {
        EventBuilder {
            tenant: tenant.into(),
            event_type: event_type.into(),
            id: None,
            occurred_at: None,
            data: Ok(Map::new()),
            traceparent: None,
        }
    }

    /// The id receivers deduplicate on.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tenant whose subscriptions receive it.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The type subscriptions match on; also the AMQP routing key.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The W3C trace context sent with the event (`traceparent` header),
    /// so the producer's trace continues to the receiver.
    pub fn traceparent(&self) -> Option<&str> {
        self.traceparent.as_deref()
    }

    /// The envelope as JSON bytes, exactly as it is published.
    pub fn to_json(&self) -> Vec<u8> {
        // A map of strings and JSON values always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Collects an event's fields; [`EventBuilder::build`] checks them.
#[must_use]
pub struct EventBuilder {
    tenant: String,
    event_type: String,
    id: Option<String>,
    occurred_at: Option<DateTime<Utc>>,
    data: Result<Map<String, Value>, EventError>,
    traceparent: Option<String>,
}

impl EventBuilder {
    /// The event's payload: any value that serializes to a JSON object.
    pub fn data(mut self, data: &impl Serialize) -> Self {
        self.data = match serde_json::to_value(data) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(EventError::Data(format!("got {}", kind(&other)))),
            Err(error) => Err(EventError::Data(error.to_string())),
        };
        self
    }

    /// An id of the producer's choosing, e.g. its own row id, so that a
    /// publish repeated after a crash is recognised as the same event.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// When it happened; now when not given.
    pub fn occurred_at(mut self, time: DateTime<Utc>) -> Self {
        self.occurred_at = Some(time);
        self
    }

    /// The producer's current W3C `traceparent`, e.g. from its own
    /// OpenTelemetry span; Hookline's hops and the webhook continue it.
    pub fn traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = Some(traceparent.into());
        self
    }

    /// The event, or the first rule it breaks.
    pub fn build(self) -> Result<Event, EventError> {
        if !valid_tenant(&self.tenant) {
            return Err(EventError::Tenant(self.tenant));
        }
        if !valid_type(&self.event_type) {
            return Err(EventError::Type(self.event_type));
        }
        let id = match self.id {
            Some(id) if valid_id(&id) => id,
            Some(id) => return Err(EventError::Id(id)),
            None => format!("evt_{}", ulid::Ulid::new()),
        };
        let data = self.data?;
        let size = serde_json::to_vec(&data).map_or(0, |v| v.len());
        if size > MAX_DATA_BYTES {
            return Err(EventError::TooLarge(size));
        }
        let occurred_at = self
            .occurred_at
            .unwrap_or_else(Utc::now)
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        Ok(Event {
            id,
            tenant: self.tenant,
            event_type: self.event_type,
            occurred_at,
            data,
            traceparent: self.traceparent,
        })
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn valid_tenant(tenant: &str) -> bool {
    (1..=64).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_type(event_type: &str) -> bool {
    (1..=255).contains(&event_type.len())
        && event_type.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

fn valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_built_event_is_the_contracts_envelope() {
        let time = DateTime::parse_from_rfc3339("2026-01-14T12:17:23.884Z")
            .expect("time")
            .with_timezone(&Utc);
        let event = Event::builder("acme", "lead.created")
            .id("evt_1")
            .occurred_at(time)
            .data(&json!({"email": "ada@example.com"}))
            .build()
            .expect("valid");
        let sent: Value = serde_json::from_slice(&event.to_json()).expect("json");
        assert_eq!(
            sent,
            json!({"id": "evt_1", "tenant": "acme", "type": "lead.created",
                   "occurred_at": "2026-01-14T12:17:23.884Z",
                   "data": {"email": "ada@example.com"}})
        );
    }

    #[test]
    fn an_id_is_generated_once_and_kept() {
        let event = Event::builder("acme", "lead.created")
            .build()
            .expect("valid");
        assert!(event.id().starts_with("evt_"));
        assert_eq!(event.clone().id(), event.id());
    }

    #[test]
    fn each_rule_is_checked_before_sending() {
        let err = |b: EventBuilder| b.build().expect_err("invalid");
        assert!(matches!(
            err(Event::builder("ac me", "a.b")),
            EventError::Tenant(_)
        ));
        assert!(matches!(
            err(Event::builder("", "a.b")),
            EventError::Tenant(_)
        ));
        assert!(matches!(
            err(Event::builder("acme", "Lead.Created")),
            EventError::Type(_)
        ));
        assert!(matches!(
            err(Event::builder("acme", "lead..created")),
            EventError::Type(_)
        ));
        assert!(matches!(
            err(Event::builder("acme", "a.b").id("has space")),
            EventError::Id(_)
        ));
        assert!(matches!(
            err(Event::builder("acme", "a.b").data(&json!([1, 2]))),
            EventError::Data(_)
        ));
        let big = json!({"blob": "x".repeat(MAX_DATA_BYTES)});
        assert!(matches!(
            err(Event::builder("acme", "a.b").data(&big)),
            EventError::TooLarge(_)
        ));
    }
}
