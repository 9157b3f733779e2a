//! Ingest's OpenAPI 3.1 document, served at `/openapi.json`, and [`ROUTES`],
//! the one list of routes from which the router is built and against which
//! the document is checked.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{json, Value};

/// `POST`: publish one event.
pub const EVENTS: &str = "/v1/events";
/// `POST`: publish a batch of events.
pub const EVENTS_BATCH: &str = "/v1/events/batch";
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
    ("GET", OPENAPI),
    ("GET", HEALTHZ),
    ("GET", READYZ),
    ("GET", METRICS),
];

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// Serves the document, built once.
pub async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(build).clone())
}

/// The document.
pub fn build() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Hookline ingest", "version": env!("CARGO_PKG_VERSION") },
        "paths": {
            "/v1/events": { "post": {
                "summary": "Publish one event; 202 only after the broker confirmed it",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Event" } } } },
                "responses": {
                    "202": { "description": "Accepted", "content": { "application/json": { "schema": { "type": "object", "properties": { "id": { "type": "string" } } } } } },
                    "400": error_response("Invalid envelope"),
                    "413": error_response("Body over ingest.max_event_bytes"),
                    "503": error_response("Broker unreachable; nothing was published")
                }
            }},
            "/v1/events/batch": { "post": {
                "summary": "Publish up to 1,000 events; one result per event, in order",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["events"],
                    "properties": { "events": { "type": "array", "maxItems": 1000, "items": { "$ref": "#/components/schemas/Event" } } } } } } },
                "responses": { "200": { "description": "Results" }, "400": error_response("Not a batch"), "413": error_response("Too many events") }
            }},
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "Alive" } } } },
            "/readyz": { "get": { "summary": "Readiness (broker connected)", "responses": { "200": { "description": "Ready" }, "503": { "description": "Not ready" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "Text exposition" } } } },
            "/openapi.json": { "get": { "summary": "This document", "responses": { "200": { "description": "OpenAPI 3.1" } } } }
        },
        "components": { "schemas": {
            "Event": {
                "type": "object", "required": ["tenant", "type", "data"],
                "properties": {
                    "id": { "type": "string" }, "tenant": { "type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$" },
                    "type": { "type": "string", "pattern": "^[a-z0-9_]+(\\.[a-z0-9_]+)*$" },
                    "occurred_at": { "type": "string", "format": "date-time" }, "data": { "type": "object" }
                }
            },
            "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } }
        }}
    })
}

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
