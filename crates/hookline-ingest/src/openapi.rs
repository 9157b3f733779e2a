//! Ingest's OpenAPI 3.1 document, served at `/openapi.json` and generated
//! by `utoipa` from the handlers' attributes and the structs they answer
//! with, and [`ROUTES`], the one list of routes from which the router is
//! built and against which the document is checked.

use std::sync::OnceLock;

use axum::Json;
use hookline_model::error_body::ErrorBody;
use serde_json::Value;
use utoipa::OpenApi;

use crate::handlers;

/// `POST`: publish one event.
pub const EVENTS: &str = "/v1/events";
/// `POST`: publish a batch of events.
pub const EVENTS_BATCH: &str = "/v1/events/batch";
/// `POST`: a third party's webhook to an inbound source.
pub const INBOUND: &str = "/v1/in/{token}";
/// `GET`: this document.
pub const OPENAPI: &str = "/openapi.json";
/// `GET`: liveness, served by `hookline_runtime::ops`.
pub const HEALTHZ: &str = "/healthz";
/// `GET`: readiness, served by `hookline_runtime::ops`.
pub const READYZ: &str = "/readyz";
/// `GET`: Prometheus metrics, served by `hookline_runtime::ops`.
pub const METRICS: &str = "/metrics";

/// Every route ingest serves, as (HTTP method, path template). The router is
/// built from this list (an entry without a handler stops ingest at start),
/// and the document must describe exactly these operations, so a route
/// cannot be served without being documented.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", EVENTS),
    ("POST", EVENTS_BATCH),
    ("POST", INBOUND),
    ("GET", OPENAPI),
    ("GET", HEALTHZ),
    ("GET", READYZ),
    ("GET", METRICS),
];

/// Serves the document, built once.
pub async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(build).clone())
}

/// The document as JSON.
pub fn build() -> Value {
    serde_json::to_value(IngestDoc::openapi()).unwrap_or_default()
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Hookline ingest",
        description = "Where product backends publish events over HTTP; each is confirmed by RabbitMQ before the answer."
    ),
    paths(
        handlers::publish_one,
        handlers::publish_batch,
        crate::inbound::receive,
        openapi_json,
        healthz,
        readyz,
        metrics
    ),
    components(schemas(ErrorBody))
)]
struct IngestDoc;

/// The event envelope, for the document: events are read by
/// `hookline_model::Event::parse`, whose rules these patterns repeat.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = Event)]
pub struct EventFields {
    /// Unique per tenant; generated when absent. Receivers deduplicate on it.
    id: Option<String>,
    /// The owner of the subscriptions it may match.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    tenant: String,
    /// Dot-separated, such as `lead.created`.
    #[schema(rename = "type", pattern = "^[a-z0-9_]+(\\.[a-z0-9_]+)*$")]
    event_type: String,
    /// When it happened; ingestion time when absent.
    #[schema(format = DateTime)]
    occurred_at: Option<String>,
    /// The payload, up to 256 KiB.
    #[schema(value_type = Object)]
    data: (),
}

/// A batch, for the document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = Batch)]
pub struct BatchFields {
    /// At most `ingest.max_batch_events`.
    events: Vec<EventFields>,
}

/// `GET /openapi.json`, described here; served by [`document`].
#[utoipa::path(get, path = OPENAPI, operation_id = "openapi", responses((status = 200, description = "This document: OpenAPI 3.1 JSON")))]
#[allow(dead_code)]
fn openapi_json() {}

/// Liveness; the route is served by `hookline_runtime::ops`.
#[utoipa::path(get, path = HEALTHZ, operation_id = "healthz", responses((status = 200, description = "The process is alive")))]
#[allow(dead_code)]
fn healthz() {}

/// Readiness; the route is served by `hookline_runtime::ops`.
#[utoipa::path(get, path = READYZ, operation_id = "readyz", responses(
    (status = 200, description = "Connected to RabbitMQ"),
    (status = 503, description = "Not ready"),
))]
#[allow(dead_code)]
fn readyz() {}

/// Prometheus metrics; the route is served by `hookline_runtime::ops`.
#[utoipa::path(get, path = METRICS, operation_id = "metrics", responses((status = 200, description = "Prometheus text format")))]
#[allow(dead_code)]
fn metrics() {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// (METHOD, path) of every operation in the document.
    fn documented(doc: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                if method != "parameters" {
                    out.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_document_describes_exactly_the_routes_ingest_serves() {
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
            .collect();
        assert_eq!(served.len(), ROUTES.len(), "a route is listed twice");
        assert_eq!(documented(&build()), served);
    }

    #[test]
    fn the_document_is_openapi_3_1_with_a_description_on_every_response() {
        let doc = build();
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                if method == "parameters" {
                    continue;
                }
                let responses = operation["responses"].as_object().expect("responses");
                assert!(!responses.is_empty(), "{method} {path} has no responses");
                for (status, response) in responses {
                    assert!(
                        response["description"].is_string(),
                        "{method} {path} {status} has no description"
                    );
                }
            }
        }
    }
}
