//! The stored form of a subscription's delivery options: the JSON object
//! the api validates and writes to `subscriptions.options`, and fanout reads
//! back to compile a [`crate::DeliveryPlan`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::template::Format;

/// The HTTP method of a delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    /// The default, and what receivers expect of a webhook.
    #[default]
    Post,
    /// For endpoints that upsert a resource.
    Put,
    /// For endpoints that update a resource in place.
    Patch,
    /// For endpoints that remove a resource.
    Delete,
    /// No body: the form-encoded fields go in the query.
    Get,
}

impl Method {
    /// Its name on the wire, as in the task and the preview.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Get => "GET",
        }
    }

    /// The method named in a task; anything else (an empty field from an
    /// older fanout) is `POST`, the only method those versions sent.
    pub fn from_wire(name: &str) -> Method {
        match name {
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "GET" => Method::Get,
            _ => Method::Post,
        }
    }
}

/// The `format` of a `body` option.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    /// `application/json`.
    #[default]
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
}

impl From<BodyFormat> for Format {
    fn from(format: BodyFormat) -> Self {
        match format {
            BodyFormat::Json => Format::Json,
            BodyFormat::Form => Format::Form,
        }
    }
}

/// The `body` option: a format and, optionally, a template.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyOption {
    /// How the body is encoded.
    #[serde(default)]
    pub format: BodyFormat,
    /// Merge-field template; absent, the standard body (flattened for form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Value>,
}

/// Every delivery option as stored. Options this version does not know
/// (written by a newer api during a rolling upgrade) are kept in `other`, so
/// a read-modify-write here never drops them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryOptions {
    /// `method`; absent means `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// `body`; absent means the standard JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<BodyOption>,
    /// `filter`, a CEL expression; absent means every matched event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `verification`; absent means `none`: the subscription is trusted
    /// from its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// `ordering`; absent means `none`: deliveries in parallel, in any order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordering: Option<Ordering>,
    /// `rate_limit`; absent means as fast as the endpoint answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// `batch`; absent means one request per event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchOption>,
    /// Options of later versions, kept as they are.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// How a subscription proves that its endpoint wants the deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verification {
    /// Trusted as created.
    #[default]
    None,
    /// Nothing is delivered until the endpoint echoes a challenge's token
    /// (or the tenant types it in).
    Challenge,
}

/// Whether a subscription's deliveries keep fanout's order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// In parallel, as fast as the endpoint takes them.
    #[default]
    None,
    /// One at a time in match order; a failing one holds the rest.
    Fifo,
}

impl Ordering {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::Fifo => "fifo",
        }
    }
}

/// The `rate_limit` option: a ceiling the receiver's servers can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests in any one-second window, across every deliverer.
    pub per_second: u32,
}

impl RateLimit {
    /// The highest limit accepted: past it a limit protects no receiver,
    /// and one endpoint queue could not carry it anyway.
    pub const MAX_PER_SECOND: u32 = 10_000;
}

/// The `batch` option: many events in one request, for receivers that
/// would rather take fewer, larger requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchOption {
    /// Events per request, at most.
    pub max_events: u32,
    /// How long the first event of a batch waits for company, as the
    /// tenant wrote it (`"2s"`); checked by the api.
    pub max_wait: String,
}

impl BatchOption {
    /// The most events one batch may hold.
    pub const MAX_EVENTS: u32 = 1_000;
    /// The longest `max_wait`: past it a receiver waits for events that
    /// are long due.
    pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);
}

impl DeliveryOptions {
    /// Whether this subscription's tasks wait in a queue of their own
    /// (`ordering: "fifo"`, a `rate_limit` or a `batch`).
    pub fn has_endpoint_policy(&self) -> bool {
        self.ordering == Some(Ordering::Fifo) || self.rate_limit.is_some() || self.batch.is_some()
    }

    /// Whether this subscription waits for a challenge to be answered.
    pub fn wants_challenge(&self) -> bool {
        self.verification == Some(Verification::Challenge)
    }
}

impl DeliveryOptions {
    /// Reads the `options` column; a value that does not parse is an
    /// error, never silently the standard delivery.
    pub fn from_stored(value: &Value) -> Result<Self, serde_json::Error> {
        if value.is_null() {
            return Ok(Self::default());
        }
        serde_json::from_value(value.clone())
    }

    /// The `options` column.
    pub fn to_stored(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }
}
