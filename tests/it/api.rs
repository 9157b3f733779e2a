//! The control plane's rules and errors, as a client sees them.

use hookline_tests::{Receiver, TestEnv};
use serde_json::json;

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_with_401() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let url = format!("{}/v1/tenants/acme/subscriptions", env.api);
    let none = env.http.get(&url).send().await.expect("api");
    assert_eq!(none.status().as_u16(), 401);
    let wrong = env
        .http
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .expect("api");
    assert_eq!(wrong.status().as_u16(), 401);
    let body: serde_json::Value = wrong.json().await.expect("json error");
    assert!(body["error"]["code"].as_str().is_some());
}

#[tokio::test]
async fn invalid_subscriptions_are_422_and_unknown_ids_404() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let path = "/v1/tenants/acme/subscriptions";
    for (body, why) in [
        (
            json!({"url": "http://127.0.0.1:1/x", "event_types": []}),
            "empty event types",
        ),
        (
            json!({"url": "ftp://example.com/x", "event_types": ["a"]}),
            "non-http scheme",
        ),
        (
            json!({"url": "http://user:pw@example.com/x", "event_types": ["a"]}),
            "userinfo",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "event_types": ["a"]}),
            "metadata address",
        ),
        (
            json!({"url": "http://example.com/x", "event_types": ["a"], "secret": "short"}),
            "short secret",
        ),
        (
            json!({"url": "http://example.com/x", "event_types": ["a"], "headers": {"Host": "x"}}),
            "reserved header",
        ),
        (
            json!({"url": "http://example.com/x", "event_types": ["a"], "signature": {"scheme": "rot13"}}),
            "unknown scheme",
        ),
        (
            json!({"url": "http://example.com/x", "event_types": ["Bad Type"]}),
            "bad pattern",
        ),
    ] {
        let (status, response) = env.api_post(path, body).await;
        assert_eq!(status, 422, "{why}: {response}");
        assert!(response["error"]["message"].as_str().is_some(), "{why}");
    }
    let response = env
        .http
        .post(format!("{}{path}", env.api))
        .bearer_auth(hookline_tests::env::ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .expect("api");
    assert_eq!(response.status().as_u16(), 400);
    let (status, _) = env
        .api_get("/v1/tenants/acme/subscriptions/sub_missing")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_tenant_over_its_subscription_limit_gets_409() {
    let env = TestEnv::start_with(|o| {
        o.deliverer = false;
        o.settings.api.max_subscriptions_per_tenant = 2;
    })
    .await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/1"), &["*"]).await;
    env.subscribe("acme", &receiver.url("/2"), &["*"]).await;
    let (status, _) = env
        .api_post(
            "/v1/tenants/acme/subscriptions",
            json!({"url": receiver.url("/3"), "event_types": ["*"]}),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_test_send_makes_one_real_signed_delivery_and_answers_the_attempt() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/t"), &["lead.created"])
        .await;
    let id = sub["id"].as_str().expect("id");
    let (status, attempt) = env
        .api_post(
            &format!("/v1/tenants/acme/subscriptions/{id}/test"),
            json!({"event_type": "lead.created"}),
        )
        .await;
    assert_eq!(status, 200, "{attempt}");
    assert_eq!(attempt["status"], "succeeded");
    assert_eq!(attempt["response_status"], 200);
    assert_eq!(attempt["attempt"], 1);
    let requests = receiver.requests("/t");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["test"], true);
    let secret = sub["secret"].as_str().expect("secret");
    assert!(hookline_tests::signature::standard_signature_valid(
        &requests[0],
        secret
    ));
}

#[tokio::test]
async fn a_tenant_key_sees_its_own_tenant_only() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let receiver = Receiver::start().await;
    let other = env.subscribe("globex", &receiver.url("/g"), &["*"]).await;
    let (status, key) = env.api_post("/v1/tenants/acme/api-keys", json!({})).await;
    assert_eq!(status, 201, "{key}");
    let key = key["key"].as_str().expect("key").to_string();
    let own = env
        .http
        .get(format!("{}/v1/tenants/acme/subscriptions", env.api))
        .bearer_auth(&key)
        .send()
        .await
        .expect("api");
    assert_eq!(own.status().as_u16(), 200);
    let other_id = other["id"].as_str().expect("id");
    let foreign = env
        .http
        .get(format!(
            "{}/v1/tenants/globex/subscriptions/{other_id}",
            env.api
        ))
        .bearer_auth(&key)
        .send()
        .await
        .expect("api");
    assert_eq!(
        foreign.status().as_u16(),
        404,
        "another tenant's object is a 404, not a 403"
    );
}
