//! Real answers of every documented operation validate against the schema
//! their OpenAPI document gives for that status, so the generated documents
//! describe what the services send, not what someone meant to send.

use std::collections::BTreeSet;
use std::time::Duration;

use hookline_tests::env::ADMIN_TOKEN;
use hookline_tests::{Receiver, Reply, TestEnv};
use serde_json::{json, Value};

/// Fetches a service's document.
async fn document(env: &TestEnv, base: &str) -> Value {
    let response = env
        .http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("document");
    response.json().await.expect("JSON document")
}

/// The JSON schema a document gives for `status` of `method path`, made a
/// standalone schema by carrying the document's components along so that
/// `#/components/schemas/…` references resolve. `None`: no JSON body.
fn response_schema(doc: &Value, method: &str, path: &str, status: u16) -> Option<Value> {
    let operation = &doc["paths"][path][method.to_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let response = &operation["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path} answered {status}, which its document does not list"
    );
    let schema = response["content"]["application/json"]["schema"].clone();
    if schema.is_null() {
        return None;
    }
    let mut standalone = json!({ "allOf": [schema] });
    standalone["components"] = doc["components"].clone();
    Some(standalone)
}

/// Every (method, path template) a sample was checked for.
type Covered = BTreeSet<(String, String)>;

/// Checks one real answer against the document and records the operation.
fn check(
    doc: &Value,
    covered: &mut Covered,
    (method, template): (&str, &str),
    (status, body): (u16, &Value),
) {
    covered.insert((method.to_string(), template.to_string()));
    match response_schema(doc, method, template, status) {
        Some(schema) => {
            let validator = jsonschema::draft202012::new(&schema)
                .unwrap_or_else(|e| panic!("{method} {template} {status}: bad schema: {e}"));
            let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
            assert!(
                errors.is_empty(),
                "{method} {template} {status}: {body} does not match its schema: {errors:?}"
            );
        }
        None => assert!(
            body.is_null(),
            "{method} {template} {status} is documented without a body, yet sent {body}"
        ),
    }
}

/// `method url` with `body`, as the admin; the answer's status and JSON
/// (`null` when empty or not JSON).
async fn call(env: &TestEnv, method: &str, url: &str, body: Option<Value>) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = env.http.request(method, url).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("service reachable");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_real_answer_of_every_api_and_ingest_operation_matches_its_documented_schema() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500));
    let api = document(&env, &env.api).await;
    let ingest = document(&env, &env.ingest).await;
    let mut covered = Covered::new();
    let a = |path: &str| format!("{}{path}", env.api);

    // Ingest: an accepted event, a refused one, and a batch with both.
    let event =
        json!({"tenant": "acme", "type": "lead.created", "data": {"email": "ana@example.com"}});
    let answer = call(
        &env,
        "POST",
        &format!("{}/v1/events", env.ingest),
        Some(event.clone()),
    )
    .await;
    assert_eq!(answer.0, 202, "{}", answer.1);
    check(
        &ingest,
        &mut covered,
        ("POST", "/v1/events"),
        (answer.0, &answer.1),
    );
    let bad = json!({"tenant": "acme", "type": "Not Valid", "data": {}});
    let answer = call(
        &env,
        "POST",
        &format!("{}/v1/events", env.ingest),
        Some(bad.clone()),
    )
    .await;
    assert_eq!(answer.0, 400, "{}", answer.1);
    check(
        &ingest,
        &mut covered,
        ("POST", "/v1/events"),
        (answer.0, &answer.1),
    );
    let batch = json!({"events": [event, bad]});
    let answer = call(
        &env,
        "POST",
        &format!("{}/v1/events/batch", env.ingest),
        Some(batch),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(
        answer.1["results"][0]["id"].is_string() && answer.1["results"][1]["error"].is_object()
    );
    check(
        &ingest,
        &mut covered,
        ("POST", "/v1/events/batch"),
        (answer.0, &answer.1),
    );

    // API keys.
    let keys = "/v1/tenants/{tenant}/api-keys";
    let answer = call(&env, "POST", &a("/v1/tenants/acme/api-keys"), None).await;
    assert_eq!(answer.0, 201, "{}", answer.1);
    check(&api, &mut covered, ("POST", keys), (answer.0, &answer.1));
    let key_id = answer.1["id"].as_str().expect("key id").to_string();
    let answer = call(
        &env,
        "DELETE",
        &a(&format!("/v1/tenants/acme/api-keys/{key_id}")),
        None,
    )
    .await;
    assert_eq!(answer.0, 204);
    check(
        &api,
        &mut covered,
        ("DELETE", "/v1/tenants/{tenant}/api-keys/{id}"),
        (answer.0, &answer.1),
    );

    // Subscriptions: created, refused, listed, read, changed.
    let subs = "/v1/tenants/{tenant}/subscriptions";
    let sub = "/v1/tenants/{tenant}/subscriptions/{id}";
    let create = json!({"name": "CRM", "url": receiver.url("/down"), "event_types": ["lead.*"],
        "headers": {"Authorization": "Bearer crm-token"}});
    let (status, created) = env.api_post("/v1/tenants/acme/subscriptions", create).await;
    assert_eq!(status, 201, "{created}");
    check(&api, &mut covered, ("POST", subs), (status, &created));
    let id = created["id"].as_str().expect("id").to_string();
    // Fails on every rung of the ladder and ends as the dead letter below.
    let (status, body) = env
        .post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;
    assert_eq!(status, 202, "{body}");
    let answer = call(
        &env,
        "POST",
        &a("/v1/tenants/acme/subscriptions"),
        Some(json!({"url": "ftp://example.com", "event_types": ["lead.created"]})),
    )
    .await;
    assert_eq!(answer.0, 422, "{}", answer.1);
    check(&api, &mut covered, ("POST", subs), (answer.0, &answer.1));
    let answer = call(
        &env,
        "GET",
        &a("/v1/tenants/acme/subscriptions?include_secret=true"),
        None,
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(&api, &mut covered, ("GET", subs), (answer.0, &answer.1));
    let one = format!("/v1/tenants/acme/subscriptions/{id}");
    let answer = call(&env, "GET", &a(&one), None).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(&api, &mut covered, ("GET", sub), (answer.0, &answer.1));
    let answer = call(
        &env,
        "GET",
        &a("/v1/tenants/acme/subscriptions/sub_missing"),
        None,
    )
    .await;
    assert_eq!(answer.0, 404, "{}", answer.1);
    check(&api, &mut covered, ("GET", sub), (answer.0, &answer.1));
    let answer = call(&env, "PATCH", &a(&one), Some(json!({"name": "CRM (prod)"}))).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(&api, &mut covered, ("PATCH", sub), (answer.0, &answer.1));

    // A failing test send, a rotation, then history and a dead letter.
    let answer = call(
        &env,
        "POST",
        &a(&format!("{one}/test")),
        Some(json!({"event_type": "lead.created"})),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["status"], "failed", "{}", answer.1);
    check(
        &api,
        &mut covered,
        ("POST", "/v1/tenants/{tenant}/subscriptions/{id}/test"),
        (answer.0, &answer.1),
    );
    let preview = "/v1/tenants/{tenant}/subscriptions/{id}/preview";
    let answer = call(
        &env,
        "POST",
        &a(&format!("{one}/preview")),
        Some(json!({"event_type": "lead.created", "data": {"email": "ana@example.com"}})),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["method"], "POST", "{}", answer.1);
    check(&api, &mut covered, ("POST", preview), (answer.0, &answer.1));
    let answer = call(
        &env,
        "POST",
        &a(&format!("{one}/preview")),
        Some(json!({"event_type": "lead.created", "data": [1]})),
    )
    .await;
    assert_eq!(answer.0, 422, "{}", answer.1);
    check(&api, &mut covered, ("POST", preview), (answer.0, &answer.1));
    let answer = call(
        &env,
        "POST",
        &a(&format!("{one}/rotate-secret")),
        Some(json!({})),
    )
    .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(
        &api,
        &mut covered,
        (
            "POST",
            "/v1/tenants/{tenant}/subscriptions/{id}/rotate-secret",
        ),
        (answer.0, &answer.1),
    );
    let dead = env.first_dead_letter("acme", Duration::from_secs(30)).await;
    let answer = call(&env, "GET", &a(&format!("{one}/attempts")), None).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert!(
        answer.1["data"].as_array().is_some_and(|d| d.len() >= 2),
        "{}",
        answer.1
    );
    check(
        &api,
        &mut covered,
        ("GET", "/v1/tenants/{tenant}/subscriptions/{id}/attempts"),
        (answer.0, &answer.1),
    );
    let answer = call(&env, "GET", &a("/v1/tenants/acme/dead-letters"), None).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(
        &api,
        &mut covered,
        ("GET", "/v1/tenants/{tenant}/dead-letters"),
        (answer.0, &answer.1),
    );
    let replay = format!(
        "/v1/tenants/acme/dead-letters/{}/replay",
        dead["id"].as_str().expect("id")
    );
    let answer = call(&env, "POST", &a(&replay), Some(json!({}))).await;
    assert_eq!(answer.0, 202, "{}", answer.1);
    check(
        &api,
        &mut covered,
        ("POST", "/v1/tenants/{tenant}/dead-letters/{id}/replay"),
        (answer.0, &answer.1),
    );
    let answer = call(&env, "PATCH", &a(&one), Some(json!({"enabled": false}))).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let answer = call(&env, "POST", &a(&replay), Some(json!({}))).await;
    assert_eq!(answer.0, 409, "{}", answer.1);
    check(
        &api,
        &mut covered,
        ("POST", "/v1/tenants/{tenant}/dead-letters/{id}/replay"),
        (answer.0, &answer.1),
    );
    let answer = call(&env, "DELETE", &a(&one), None).await;
    assert_eq!(answer.0, 204);
    check(&api, &mut covered, ("DELETE", sub), (answer.0, &answer.1));

    // The event type catalogue.
    let types = "/v1/event-types";
    let one_type = "/v1/event-types/{type}";
    let entry = json!({"description": "A new lead", "schema": {"type": "object"},
        "example": {"email": "ana@example.com"}});
    let answer = call(&env, "PUT", &a("/v1/event-types/lead.created"), Some(entry)).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(&api, &mut covered, ("PUT", one_type), (answer.0, &answer.1));
    let answer = call(
        &env,
        "PUT",
        &a("/v1/event-types/lead.created"),
        Some(json!({"example": 1})),
    )
    .await;
    assert_eq!(answer.0, 422, "{}", answer.1);
    check(&api, &mut covered, ("PUT", one_type), (answer.0, &answer.1));
    let answer = call(&env, "GET", &a(types), None).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(&api, &mut covered, ("GET", types), (answer.0, &answer.1));
    let answer = call(&env, "GET", &a("/v1/event-types/lead.created"), None).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    check(&api, &mut covered, ("GET", one_type), (answer.0, &answer.1));
    let answer = call(&env, "DELETE", &a("/v1/event-types/lead.created"), None).await;
    assert_eq!(answer.0, 204);
    check(
        &api,
        &mut covered,
        ("DELETE", one_type),
        (answer.0, &answer.1),
    );

    sample_sources(&env, (&api, &ingest), &mut covered).await;
    sample_verification(&env, &api, &receiver, &mut covered).await;

    // Every `/v1/` operation of both documents was sampled.
    for doc in [&api, &ingest] {
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("item").keys() {
                let operation = (method.to_uppercase(), path.clone());
                if path.starts_with("/v1/") && method != "parameters" {
                    assert!(covered.contains(&operation), "no sample of {operation:?}");
                }
            }
        }
    }

    // The schemas have teeth: a subscription without its id, or an error
    // without its code, does not pass.
    let mut broken = created.clone();
    broken.as_object_mut().expect("object").remove("id");
    let schema = response_schema(&api, "GET", sub, 200).expect("schema");
    assert!(!jsonschema::draft202012::new(&schema)
        .expect("schema")
        .is_valid(&broken));
    let schema = response_schema(&api, "GET", sub, 404).expect("schema");
    let not_an_error = json!({"error": {"message": "no code"}});
    assert!(!jsonschema::draft202012::new(&schema)
        .expect("schema")
        .is_valid(&not_an_error));
}

/// Verification: a challenge asked for again, a wrong token, the right one.
async fn sample_verification(
    env: &TestEnv,
    api: &Value,
    receiver: &Receiver,
    covered: &mut Covered,
) {
    let a = |path: &str| format!("{}{path}", env.api);
    let create = json!({"url": receiver.url("/challenged"), "event_types": ["lead.created"],
        "verification": "challenge"});
    let (status, created) = call(
        env,
        "POST",
        &a("/v1/tenants/acme/subscriptions"),
        Some(create),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    check(
        api,
        covered,
        ("POST", "/v1/tenants/{tenant}/subscriptions"),
        (status, &created),
    );
    let one = format!(
        "/v1/tenants/acme/subscriptions/{}",
        created["id"].as_str().expect("id")
    );
    let sent = call(
        env,
        "POST",
        &a(&format!("{one}/verification")),
        Some(json!({})),
    )
    .await;
    assert_eq!(sent.0, 202, "{}", sent.1);
    let template = "/v1/tenants/{tenant}/subscriptions/{id}/verification";
    check(api, covered, ("POST", template), (sent.0, &sent.1));
    let verify = a(&format!("{one}/verify"));
    let template = "/v1/tenants/{tenant}/subscriptions/{id}/verify";
    let wrong = call(env, "POST", &verify, Some(json!({"token": "hlvt_wrong"}))).await;
    assert_eq!(wrong.0, 422, "{}", wrong.1);
    check(api, covered, ("POST", template), (wrong.0, &wrong.1));
    let token =
        hookline_tests::eventually(Duration::from_secs(15), "the second challenge", || async {
            receiver
                .requests("/challenged")
                .iter()
                .map(|r| r.json())
                .find(|body| body["id"] == sent.1["event_id"])
                .and_then(|body| body["data"]["token"].as_str().map(str::to_string))
        })
        .await;
    let right = call(env, "POST", &verify, Some(json!({ "token": token }))).await;
    assert_eq!(right.0, 200, "{}", right.1);
    assert_eq!(right.1["verified"], true, "{}", right.1);
    check(api, covered, ("POST", template), (right.0, &right.1));
}

/// Sources: created, refused, listed, read, fed to ingest, posted to and
/// deleted.
async fn sample_sources(env: &TestEnv, (api, ingest): (&Value, &Value), covered: &mut Covered) {
    let a = |path: &str| format!("{}{path}", env.api);
    let (list, one) = (
        "/v1/tenants/{tenant}/sources",
        "/v1/tenants/{tenant}/sources/{id}",
    );
    let create =
        json!({"name": "Form", "event_type": "form.submitted", "verify": {"scheme": "standard"}});
    let answer = call(env, "POST", &a("/v1/tenants/acme/sources"), Some(create)).await;
    assert_eq!(answer.0, 201, "{}", answer.1);
    check(api, covered, ("POST", list), (answer.0, &answer.1));
    let (id, url) = (
        answer.1["id"].as_str().expect("id").to_string(),
        answer.1["url"].as_str().expect("url").to_string(),
    );
    let bad = json!({"event_type": "form.*"});
    let refused = call(env, "POST", &a("/v1/tenants/acme/sources"), Some(bad)).await;
    assert_eq!(refused.0, 422, "{}", refused.1);
    check(api, covered, ("POST", list), (refused.0, &refused.1));
    for (method, path, template) in [
        ("GET", "/v1/tenants/acme/sources".to_string(), list),
        ("GET", format!("/v1/tenants/acme/sources/{id}"), one),
        ("GET", "/v1/sources".to_string(), "/v1/sources"),
    ] {
        let answer = call(env, method, &a(&path), None).await;
        assert_eq!(answer.0, 200, "{}", answer.1);
        check(api, covered, (method, template), (answer.0, &answer.1));
    }
    // Ingest: unsigned is 401 (once the source is loaded), unknown is 404.
    let inbound = format!(
        "{}{}",
        env.ingest,
        &url[url.find("/v1/in/").expect("path")..]
    );
    let answer = hookline_tests::eventually(
        Duration::from_secs(5),
        "ingest to load the source",
        || async {
            let answer = call(env, "POST", &inbound, Some(json!({"n": 1}))).await;
            (answer.0 == 401).then_some(answer)
        },
    )
    .await;
    check(
        ingest,
        covered,
        ("POST", "/v1/in/{token}"),
        (answer.0, &answer.1),
    );
    let requests = a(&format!("/v1/tenants/acme/sources/{id}/requests"));
    let answer =
        hookline_tests::eventually(Duration::from_secs(10), "the request recorded", || async {
            let answer = call(env, "GET", &requests, None).await;
            (answer.1["data"][0]["status"] == 401).then_some(answer)
        })
        .await;
    let template = "/v1/tenants/{tenant}/sources/{id}/requests";
    check(api, covered, ("GET", template), (answer.0, &answer.1));
    let answer = call(
        env,
        "DELETE",
        &a(&format!("/v1/tenants/acme/sources/{id}")),
        None,
    )
    .await;
    assert_eq!(answer.0, 204);
    check(api, covered, ("DELETE", one), (answer.0, &answer.1));
    let answer =
        hookline_tests::eventually(Duration::from_secs(5), "the source to be gone", || async {
            let answer = call(env, "POST", &inbound, Some(json!({"n": 1}))).await;
            (answer.0 == 404).then_some(answer)
        })
        .await;
    check(
        ingest,
        covered,
        ("POST", "/v1/in/{token}"),
        (answer.0, &answer.1),
    );
}
