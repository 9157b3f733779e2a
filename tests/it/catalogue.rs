//! The event type catalogue: the admin defines types with a schema and an
//! example, any valid token reads them, and a schema or an example that
//! cannot work is refused naming what is wrong.

use hookline_tests::env::ADMIN_TOKEN;
use hookline_tests::TestEnv;
use serde_json::{json, Value};

/// `method path` on the api with `token`; status and JSON body.
async fn call(
    env: &TestEnv,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = env
        .http
        .request(method, format!("{}{path}", env.api))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("api");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The contact schema of the seeds' lead events.
fn lead_created() -> Value {
    json!({
        "description": "A new lead entered the CRM",
        "schema": {"type": "object", "required": ["contact"],
                   "properties": {"contact": {"type": "object", "required": ["email"],
                       "properties": {"email": {"type": "string", "format": "email"}}}}},
        "example": {"contact": {"email": "ana@example.com", "first_name": "Ana"}}
    })
}

#[tokio::test]
async fn the_admin_defines_event_types_and_any_tenant_key_lists_them() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let (status, key) = call(&env, ADMIN_TOKEN, "POST", "/v1/tenants/acme/api-keys", None).await;
    assert_eq!(status, 201, "{key}");
    let tenant_key = key["key"].as_str().expect("key").to_string();

    let (status, stored) = call(
        &env,
        ADMIN_TOKEN,
        "PUT",
        "/v1/event-types/lead.created",
        Some(lead_created()),
    )
    .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["type"], "lead.created");
    assert_eq!(stored["example"], lead_created()["example"]);
    let (status, _) = call(
        &env,
        ADMIN_TOKEN,
        "PUT",
        "/v1/event-types/appointment.updated",
        Some(json!({"description": "An appointment moved"})),
    )
    .await;
    assert_eq!(status, 200);

    let (status, page) = call(&env, &tenant_key, "GET", "/v1/event-types?limit=1", None).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        page["data"][0]["type"], "appointment.updated",
        "by name: {page}"
    );
    assert_eq!(page["data"][0]["schema"], Value::Null);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, next) = call(
        &env,
        &tenant_key,
        "GET",
        &format!("/v1/event-types?limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(next["data"][0]["type"], "lead.created", "{next}");
    assert_eq!(next["data"][0]["schema"], lead_created()["schema"]);
    assert_eq!(next["next_cursor"], Value::Null);
    let (status, one) = call(
        &env,
        &tenant_key,
        "GET",
        "/v1/event-types/lead.created",
        None,
    )
    .await;
    assert_eq!(
        (status, one["description"].clone()),
        (200, json!("A new lead entered the CRM"))
    );

    // A tenant reads the catalogue but does not change it.
    let (status, body) = call(
        &env,
        &tenant_key,
        "PUT",
        "/v1/event-types/lead.created",
        Some(lead_created()),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = call(
        &env,
        &tenant_key,
        "DELETE",
        "/v1/event-types/lead.created",
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Replacing keeps one entry.
    let mut replaced = lead_created();
    replaced["description"] = json!("A lead, replaced");
    let (status, _) = call(
        &env,
        ADMIN_TOKEN,
        "PUT",
        "/v1/event-types/lead.created",
        Some(replaced),
    )
    .await;
    assert_eq!(status, 200);
    let (_, all) = call(&env, &tenant_key, "GET", "/v1/event-types", None).await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2), "{all}");

    let (status, _) = call(
        &env,
        ADMIN_TOKEN,
        "DELETE",
        "/v1/event-types/lead.created",
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &env,
        &tenant_key,
        "GET",
        "/v1/event-types/lead.created",
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = call(
        &env,
        ADMIN_TOKEN,
        "DELETE",
        "/v1/event-types/lead.created",
        None,
    )
    .await;
    assert_eq!(status, 404, "deleting twice");
}

#[tokio::test]
async fn a_schema_that_does_not_compile_or_an_example_it_refuses_is_422_naming_the_cause() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let cases = [
        (
            "Lead.Created",
            lead_created(),
            "invalid_event_type",
            "dot-separated",
        ),
        (
            "lead.created",
            json!({"schema": {"type": "no-such-type"}}),
            "invalid_schema",
            "schema",
        ),
        (
            "lead.created",
            json!({"schema": "object"}),
            "invalid_schema",
            "JSON Schema object",
        ),
        (
            "lead.created",
            json!({"example": [1, 2]}),
            "invalid_example",
            "object",
        ),
        (
            "lead.created",
            json!({"description": 7}),
            "invalid_description",
            "string",
        ),
        (
            "lead.created",
            json!({"schema": lead_created()["schema"], "example": {"contact": {"email": 42}}}),
            "invalid_example",
            "/contact/email",
        ),
    ];
    for (name, body, code, says) in cases {
        let (status, answer) = call(
            &env,
            ADMIN_TOKEN,
            "PUT",
            &format!("/v1/event-types/{name}"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(says),
            "{body}: {message:?} should mention {says:?}"
        );
    }
    let (_, all) = call(&env, ADMIN_TOKEN, "GET", "/v1/event-types", None).await;
    assert_eq!(all["data"], json!([]), "nothing refused was stored");
}

#[tokio::test]
async fn a_test_send_carries_the_catalogue_example_as_its_data() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let receiver = hookline_tests::Receiver::start().await;
    let (status, _) = call(
        &env,
        ADMIN_TOKEN,
        "PUT",
        "/v1/event-types/lead.created",
        Some(lead_created()),
    )
    .await;
    assert_eq!(status, 200);
    let sub = env
        .subscribe("acme", &receiver.url("/hook"), &["lead.*"])
        .await;
    let id = sub["id"].as_str().expect("id");
    let test = format!("/v1/tenants/acme/subscriptions/{id}/test");
    for (event_type, data) in [
        ("lead.created", lead_created()["example"].clone()),
        (
            "lead.deleted",
            json!({"sample": true, "message": "This is a test delivery from Hookline"}),
        ),
    ] {
        let (status, attempt) = call(
            &env,
            ADMIN_TOKEN,
            "POST",
            &test,
            Some(json!({"event_type": event_type})),
        )
        .await;
        assert_eq!(
            (status, attempt["status"].clone()),
            (200, json!("succeeded")),
            "{attempt}"
        );
        let arrived = receiver.requests("/hook");
        let body = arrived.last().expect("the test delivery arrived").json();
        assert_eq!(body["type"], event_type, "{body}");
        assert_eq!(body["data"], data, "{event_type}: {body}");
    }
}
