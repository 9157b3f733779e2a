//! `GET /openapi.json`: the api's OpenAPI 3.1 document, written by hand from
//! the contract (every route, its methods and answers), and [`ROUTES`], the
//! one list of routes from which the router is built and against which the
//! document is checked.

use std::sync::OnceLock;

use axum::Json;
use serde_json::{json, Value};

/// A tenant's API keys.
pub const API_KEYS: &str = "/v1/tenants/{tenant}/api-keys";
/// One API key.
pub const API_KEY: &str = "/v1/tenants/{tenant}/api-keys/{id}";
/// A tenant's subscriptions.
pub const SUBSCRIPTIONS: &str = "/v1/tenants/{tenant}/subscriptions";
/// One subscription.
pub const SUBSCRIPTION: &str = "/v1/tenants/{tenant}/subscriptions/{id}";
/// A test send to one subscription.
pub const TEST_SEND: &str = "/v1/tenants/{tenant}/subscriptions/{id}/test";
/// Secret rotation of one subscription.
pub const ROTATE_SECRET: &str = "/v1/tenants/{tenant}/subscriptions/{id}/rotate-secret";
/// Delivery history of one subscription.
pub const ATTEMPTS: &str = "/v1/tenants/{tenant}/subscriptions/{id}/attempts";
/// A tenant's dead letters.
pub const DEAD_LETTERS: &str = "/v1/tenants/{tenant}/dead-letters";
/// Replay of one dead letter.
pub const REPLAY: &str = "/v1/tenants/{tenant}/dead-letters/{id}/replay";
/// This document.
pub const OPENAPI: &str = "/openapi.json";
/// Liveness, served by `hookline_runtime::ops`.
pub const HEALTHZ: &str = "/healthz";
/// Readiness, served by `hookline_runtime::ops`.
pub const READYZ: &str = "/readyz";
/// Prometheus metrics, served by `hookline_runtime::ops`.
pub const METRICS: &str = "/metrics";

/// Every route the api serves, as (HTTP method, path template). The router
/// is built from this list (an entry without a handler stops the api at
/// start), and the document must describe exactly these operations, so a
/// route cannot be served without being documented.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", API_KEYS),
    ("DELETE", API_KEY),
    ("POST", SUBSCRIPTIONS),
    ("GET", SUBSCRIPTIONS),
    ("GET", SUBSCRIPTION),
    ("PATCH", SUBSCRIPTION),
    ("DELETE", SUBSCRIPTION),
    ("POST", TEST_SEND),
    ("POST", ROTATE_SECRET),
    ("GET", ATTEMPTS),
    ("GET", DEAD_LETTERS),
    ("POST", REPLAY),
    ("GET", OPENAPI),
    ("GET", HEALTHZ),
    ("GET", READYZ),
    ("GET", METRICS),
];

/// Serves the document, built once.
pub(super) async fn document() -> Json<Value> {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    Json(DOCUMENT.get_or_init(build).clone())
}

/// A response list: each status with its description, JSON errors by
/// reference.
fn responses(entries: &[(&str, &str)]) -> Value {
    let mut out = serde_json::Map::new();
    for (status, description) in entries {
        let mut response = json!({ "description": description });
        if status.starts_with('4') || status.starts_with('5') {
            response["content"] =
                json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}});
        }
        out.insert((*status).to_string(), response);
    }
    Value::Object(out)
}

fn operation(summary: &str, ok: (&str, &str), errors: &[(&str, &str)]) -> Value {
    let mut entries = vec![
        ok,
        ("401", "Missing or wrong bearer token"),
        ("404", "Unknown tenant or id"),
    ];
    entries.extend_from_slice(errors);
    entries.push(("503", "Database or broker unavailable"));
    json!({ "summary": summary, "security": [{"bearer": []}], "responses": responses(&entries) })
}

fn build() -> Value {
    let invalid = ("422", "Invalid field value");
    let malformed = ("400", "Malformed JSON");
    let too_large = ("413", "Body over api.max_body_bytes");
    let page_params = json!([
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
        {"name": "cursor", "in": "query", "schema": {"type": "string"}}
    ]);
    let with_query = |mut op: Value, extra: Value| {
        let mut params = page_params.clone();
        if let (Some(list), Value::Object(_)) = (params.as_array_mut(), &extra) {
            list.push(extra);
        }
        op["parameters"] = params;
        op
    };
    let attempts = with_query(
        operation(
            "List a subscription's delivery attempts, newest first",
            ("200", "A page of attempts"),
            &[invalid],
        ),
        json!({"name": "status", "in": "query", "schema": {"type": "string", "enum": ["succeeded", "failed", "dead"]}}),
    );
    let list = with_query(
        operation(
            "List a tenant's subscriptions",
            (
                "200",
                "A page of subscriptions (secrets only with include_secret=true)",
            ),
            &[invalid],
        ),
        json!({"name": "include_secret", "in": "query", "schema": {"type": "boolean", "default": false}}),
    );
    let dead = with_query(
        operation(
            "List a tenant's dead letters, newest first",
            ("200", "A page of dead letters"),
            &[invalid],
        ),
        json!({"name": "subscription_id", "in": "query", "schema": {"type": "string"}}),
    );
    // api.manual_sends_per_minute, per tenant, shared by test sends and
    // replays.
    let rate_limited = (
        "429",
        "rate_limited: the tenant's test sends and replays exceeded api.manual_sends_per_minute; Retry-After says when to try again",
    );
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Hookline api",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Control plane of Hookline: subscriptions, test sends, delivery history, dead letters and replay."
        },
        "paths": {
            "/v1/tenants/{tenant}/api-keys": {
                "post": operation("Issue a tenant API key (admin token only); the key is shown once", ("201", "The key"), &[("403", "Not the admin token")])
            },
            "/v1/tenants/{tenant}/api-keys/{id}": {
                "delete": operation("Revoke an API key", ("204", "Revoked"), &[])
            },
            "/v1/tenants/{tenant}/subscriptions": {
                "post": operation("Create a subscription; the answer includes its secret", ("201", "The subscription"),
                    &[malformed, ("409", "limit_reached"), too_large, invalid]),
                "get": list
            },
            "/v1/tenants/{tenant}/subscriptions/{id}": {
                "get": operation("Get one subscription, secret included", ("200", "The subscription"), &[]),
                "patch": operation("Change any writable field", ("200", "The subscription"), &[malformed, too_large, invalid]),
                "delete": operation("Delete a subscription; no delivery starts for it afterwards", ("204", "Deleted"), &[])
            },
            "/v1/tenants/{tenant}/subscriptions/{id}/test": {
                "post": operation("Send one real, signed sample delivery now and answer the attempt", ("200", "The attempt"), &[malformed, invalid, rate_limited])
            },
            "/v1/tenants/{tenant}/subscriptions/{id}/rotate-secret": {
                "post": operation("Rotate the secret; the old one keeps signing during the overlap", ("200", "The subscription with its new secret"), &[malformed, invalid])
            },
            "/v1/tenants/{tenant}/subscriptions/{id}/attempts": { "get": attempts },
            "/v1/tenants/{tenant}/dead-letters": { "get": dead },
            "/v1/tenants/{tenant}/dead-letters/{id}/replay": {
                "post": operation("Send a dead letter again as a new first attempt", ("202", "Replayed"),
                    &[("409", "subscription_deleted or subscription_disabled"), rate_limited])
            },
            "/openapi.json": { "get": { "summary": "This document", "responses": responses(&[("200", "OpenAPI 3.1 JSON")]) } },
            "/healthz": { "get": { "summary": "Process alive", "responses": responses(&[("200", "ok")]) } },
            "/readyz": { "get": { "summary": "Connected to PostgreSQL and RabbitMQ", "responses": responses(&[("200", "Ready"), ("503", "Not ready")]) } },
            "/metrics": { "get": { "summary": "Prometheus text format", "responses": responses(&[("200", "Metrics")]) } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "object", "required": ["code", "message"],
                        "properties": { "code": {"type": "string"}, "message": {"type": "string"} } } }
                }
            }
        }
    });
    declare_path_parameters(&mut doc);
    doc
}

/// OpenAPI wants each `{name}` of a path declared as a parameter; derive
/// them from the path text so they cannot drift.
fn declare_path_parameters(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let names: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        if !names.is_empty() {
            item["parameters"] = names
                .iter()
                .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_of_the_contract_is_documented() {
        let doc = build();
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/v1/tenants/{tenant}/subscriptions", "post"),
            ("/v1/tenants/{tenant}/subscriptions", "get"),
            ("/v1/tenants/{tenant}/subscriptions/{id}", "patch"),
            ("/v1/tenants/{tenant}/subscriptions/{id}/attempts", "get"),
            ("/v1/tenants/{tenant}/dead-letters/{id}/replay", "post"),
            ("/v1/tenants/{tenant}/api-keys", "post"),
        ] {
            assert!(
                paths[path][method]["summary"].is_string(),
                "{method} {path}"
            );
        }
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn the_document_describes_exactly_the_routes_the_api_serves() {
        let mut documented = std::collections::BTreeSet::new();
        for (path, item) in build()["paths"].as_object().unwrap() {
            for (key, _) in item.as_object().unwrap() {
                if key != "parameters" {
                    documented.insert((key.to_uppercase(), path.clone()));
                }
            }
        }
        let served: std::collections::BTreeSet<_> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
            .collect();
        assert_eq!(served.len(), ROUTES.len(), "a route is listed twice");
        assert_eq!(documented, served);
    }

    #[test]
    fn every_path_parameter_is_declared_and_every_response_described() {
        let doc = build();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for name in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                let declared = item["parameters"].as_array().is_some_and(|list| {
                    list.iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
                });
                assert!(declared, "{path}: {{{name}}} is not declared");
            }
            for (method, operation) in item.as_object().unwrap() {
                if method == "parameters" {
                    continue;
                }
                let responses = operation["responses"].as_object().unwrap();
                assert!(!responses.is_empty(), "{method} {path}");
                for (status, response) in responses {
                    assert!(
                        response["description"].is_string(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
}
