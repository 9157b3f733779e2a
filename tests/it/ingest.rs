//! Ingest's answers to good and bad input.

use hookline_tests::TestEnv;
use serde_json::json;

#[tokio::test]
async fn invalid_envelopes_get_a_json_400_and_oversized_bodies_a_413() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let (status, body) = env
        .post_event(json!({"tenant": "acme", "type": "BAD", "data": {}}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_type");
    assert!(body["error"]["message"].as_str().is_some());

    let (status, body) = env.post_event(json!({"type": "a.b", "data": {}})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "missing_field");

    let big = "x".repeat(300 * 1024);
    let (status, body) = env
        .post_event(json!({"tenant": "acme", "type": "a.b", "data": {"big": big}}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");

    let response = env
        .http
        .post(format!("{}/v1/events", env.ingest))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn a_batch_answers_one_result_per_event_in_order() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let response = env
        .http
        .post(format!("{}/v1/events/batch", env.ingest))
        .json(&json!({"events": [
            {"id": "evt_a", "tenant": "acme", "type": "lead.created", "data": {}},
            {"tenant": "acme", "type": "Bad Type", "data": {}},
            {"tenant": "acme", "type": "lead.updated", "data": {}}
        ]}))
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["id"], "evt_a");
    assert_eq!(results[1]["error"]["code"], "invalid_type");
    assert!(results[2]["id"]
        .as_str()
        .expect("generated id")
        .starts_with("evt_"));

    let too_many: Vec<_> = (0..1001)
        .map(|_| json!({"tenant": "a", "type": "a", "data": {}}))
        .collect();
    let response = env
        .http
        .post(format!("{}/v1/events/batch", env.ingest))
        .json(&json!({ "events": too_many }))
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status().as_u16(), 413);
}
