//! Ingest's OpenAPI 3.1 document, served at `/openapi.json`.

use axum::Json;
use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

/// The document.
pub async fn document() -> Json<Value> {
    Json(json!({
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
    }))
}
