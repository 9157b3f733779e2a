//! The OpenAPI documents of ingest and api list exactly the routes their
//! routers serve.

use std::collections::BTreeSet;

use hookline_tests::env::ADMIN_TOKEN;
use hookline_tests::TestEnv;
use serde_json::{json, Value};

/// The methods probed on every documented path.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// (METHOD, path template) of every operation in an OpenAPI document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for key in item.as_object().expect("path item").keys() {
            // Path items also hold `parameters`, `summary`…; keep the methods.
            let method = key.to_uppercase();
            if METHODS.contains(&method.as_str()) {
                out.insert((method, path.clone()));
            }
        }
    }
    out
}

/// A template with its parameters filled in: the tenant is real, ids are not.
fn concrete(template: &str) -> String {
    template
        .replace("{tenant}", "acme")
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "zz_missing"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn answer(env: &TestEnv, base: &str, method: &str, path: &str) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = env
        .http
        .request(method.clone(), format!("{base}{path}"))
        .bearer_auth(ADMIN_TOKEN);
    if [
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::PATCH,
    ]
    .contains(&method)
    {
        request = request.json(&json!({}));
    }
    let response = request.send().await.expect("service reachable");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// Fetches `base`'s document and checks it against the router: every
/// documented operation is served (neither the router's 404 nor a 405), and
/// every other method on a documented path is a 405. Returns the operations.
async fn assert_document_matches_router(env: &TestEnv, base: &str) -> BTreeSet<(String, String)> {
    let (status, text) = answer(env, base, "GET", "/openapi.json").await;
    assert_eq!(status, 200, "{base}/openapi.json");
    let doc: Value = serde_json::from_str(&text).expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let documented = operations(&doc);
    assert!(!documented.is_empty());

    let unknown = answer(env, base, "GET", "/no/such/route").await;
    assert_eq!(
        unknown.0, 404,
        "what the router answers for an unknown path"
    );
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for template in paths {
        let path = concrete(template);
        for method in METHODS {
            let (status, body) = answer(env, base, method, &path).await;
            if documented.contains(&(method.to_string(), template.clone())) {
                assert!(
                    status != 405 && (status, &body) != (unknown.0, &unknown.1),
                    "{base}: {method} {template} is documented but not served ({status} {body})"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{base}: {method} {template} is served but not documented ({body})"
                );
            }
        }
    }
    documented
}

#[tokio::test]
async fn the_ingest_and_api_openapi_documents_list_exactly_the_routes_they_serve() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let ingest = assert_document_matches_router(&env, &env.ingest).await;
    let routes: BTreeSet<(String, String)> = hookline_ingest::openapi::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
        .collect();
    assert_eq!(
        ingest, routes,
        "ingest's router is built from ROUTES, which the document must match"
    );
    for route in [("POST", "/v1/events"), ("POST", "/v1/events/batch")] {
        assert!(ingest.contains(&(route.0.to_string(), route.1.to_string())));
    }

    let api = assert_document_matches_router(&env, &env.api).await;
    let api_routes: BTreeSet<(String, String)> = hookline_api::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_string(), (*p).to_string()))
        .collect();
    assert_eq!(
        api, api_routes,
        "the api's router is built from ROUTES, which the document must match"
    );
    for (method, path) in [
        ("POST", "/v1/tenants/{tenant}/api-keys"),
        ("DELETE", "/v1/tenants/{tenant}/api-keys/{id}"),
        ("POST", "/v1/tenants/{tenant}/subscriptions"),
        ("GET", "/v1/tenants/{tenant}/subscriptions"),
        ("GET", "/v1/tenants/{tenant}/subscriptions/{id}"),
        ("PATCH", "/v1/tenants/{tenant}/subscriptions/{id}"),
        ("DELETE", "/v1/tenants/{tenant}/subscriptions/{id}"),
        ("POST", "/v1/tenants/{tenant}/subscriptions/{id}/test"),
        ("POST", "/v1/tenants/{tenant}/subscriptions/{id}/preview"),
        (
            "POST",
            "/v1/tenants/{tenant}/subscriptions/{id}/rotate-secret",
        ),
        ("GET", "/v1/tenants/{tenant}/subscriptions/{id}/attempts"),
        ("GET", "/v1/tenants/{tenant}/dead-letters"),
        ("POST", "/v1/tenants/{tenant}/dead-letters/{id}/replay"),
    ] {
        assert!(
            api.contains(&(method.to_string(), path.to_string())),
            "the contract's {method} {path} is in the api document"
        );
    }
    for ops in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        for doc in [&ingest, &api] {
            assert!(doc.contains(&("GET".to_string(), ops.to_string())), "{ops}");
        }
    }
}
