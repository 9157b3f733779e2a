//! Events checked against the catalogue: a type with a schema refuses
//! `data` that does not satisfy it, on ingest (`400` naming the JSON path)
//! and over AMQP (`hookline.events.invalid`, the path in
//! `x-hookline-error`), from the moment the type is put until it is
//! deleted; nothing refused reaches a receiver.

use std::time::Duration;

use hookline_amqp::names::INVALID_QUEUE;
use hookline_tests::{eventually, Receiver, TestEnv};
use serde_json::{json, Value};

/// The contract's one second for a catalogue change to apply, on ingest
/// and on fanout.
const CHANGE_APPLIES: Duration = Duration::from_secs(1);

fn lead_schema() -> Value {
    json!({
        "description": "A new lead entered the CRM",
        "schema": {"type": "object", "required": ["contact"],
                   "properties": {"contact": {"type": "object", "required": ["email"],
                       "properties": {"email": {"type": "string"}}}}}
    })
}

fn lead(id: &str, email: Value) -> Value {
    json!({"id": id, "tenant": "acme", "type": "lead.created",
           "data": {"contact": {"email": email, "first_name": "Ana"}}})
}

async fn put_type(env: &TestEnv, body: Value) {
    let response = env
        .http
        .put(format!("{}/v1/event-types/lead.created", env.api))
        .bearer_auth(hookline_tests::env::ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("api");
    assert_eq!(response.status(), 200);
}

/// Reads (and removes) the invalid queue's messages whose body holds
/// `needle`, with their `x-hookline-error`.
async fn invalid_with(env: &TestEnv, needle: &str) -> Vec<String> {
    let connection = hookline_amqp::connect(env.amqp_url(), "test-reader")
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let mut reasons = Vec::new();
    while let Ok(Some(message)) = channel
        .basic_get(INVALID_QUEUE.into(), Default::default())
        .await
    {
        let body = String::from_utf8_lossy(&message.delivery.data).to_string();
        let reason = hookline_amqp::header_str(
            message.delivery.properties.headers().as_ref(),
            "x-hookline-error",
        )
        .unwrap_or_default()
        .to_string();
        let _ = message.delivery.acker.ack(Default::default()).await;
        if body.contains(needle) {
            reasons.push(reason);
        }
    }
    let _ = connection.close(200, "done".into()).await;
    reasons
}

#[tokio::test]
async fn data_against_its_types_schema_is_refused_on_ingest_and_over_amqp_until_the_type_is_deleted(
) {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/leads"), &["lead.created"])
        .await;
    put_type(&env, lead_schema()).await;

    // Ingest: a 400 whose message names the failing path, within 1 s of the put.
    let mut probe = 0;
    let (status, refused) = eventually(CHANGE_APPLIES, "ingest to check the new schema", || {
        probe += 1;
        let event = lead(&format!("probe-{probe}"), json!(42));
        let env = &env;
        async move {
            let answer = env.post_event(event).await;
            (answer.0 == 400).then_some(answer)
        }
    })
    .await;
    assert_eq!(status, 400);
    assert_eq!(refused["error"]["code"], "schema_mismatch", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/data/contact/email"), "{message}");
    assert!(message.contains("lead.created"), "{message}");

    // A batch refuses the bad event alone.
    let (status, batch) = env
        .ingest_post(
            "/v1/events/batch",
            &json!({"events": [lead("good-1", json!("ana@example.com")),
                               lead("bad-1", json!(["not", "a", "string"]))]}),
        )
        .await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["results"][0]["id"], "good-1", "{batch}");
    assert_eq!(
        batch["results"][1]["error"]["code"], "schema_mismatch",
        "{batch}"
    );
    let missing = env
        .post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"contact": {}}}))
        .await;
    assert_eq!(missing.0, 400, "{:?}", missing.1);
    assert!(
        missing.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("/data/contact") && m.contains("email")),
        "a missing field is named at its parent: {:?}",
        missing.1
    );

    // AMQP, past ingest: fanout parks it with the path in the header.
    let mut attempt = 0;
    let reasons = eventually(
        CHANGE_APPLIES * 5,
        "fanout to park a bad AMQP event",
        || {
            attempt += 1;
            let id = format!("amqp-bad-{attempt}");
            let env = &env;
            async move {
                let body = serde_json::to_vec(&lead(&id, json!(false))).expect("json");
                env.publish_amqp("lead.created", &body).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
                let reasons = invalid_with(env, &id).await;
                (!reasons.is_empty()).then_some(reasons)
            }
        },
    )
    .await;
    assert!(
        reasons[0].contains("schema_mismatch") && reasons[0].contains("/data/contact/email"),
        "{reasons:?}"
    );

    // The good event of the batch, and only it, reached the receiver.
    eventually(Duration::from_secs(10), "the good event", || async {
        (!receiver.requests("/leads").is_empty()).then_some(())
    })
    .await;

    // Deleted: the same data passes everywhere within 1 s.
    let response = env
        .http
        .delete(format!("{}/v1/event-types/lead.created", env.api))
        .bearer_auth(hookline_tests::env::ADMIN_TOKEN)
        .send()
        .await
        .expect("api");
    assert_eq!(response.status(), 204);
    let mut probe = 0;
    eventually(CHANGE_APPLIES, "ingest to forget the schema", || {
        probe += 1;
        let event = lead(&format!("after-delete-{probe}"), json!(42));
        let env = &env;
        async move { (env.post_event(event).await.0 == 202).then_some(()) }
    })
    .await;
    eventually(
        Duration::from_secs(10),
        "the unchecked event delivered",
        || async {
            receiver
                .requests("/leads")
                .iter()
                .any(|r| {
                    r.json()["id"]
                        .as_str()
                        .is_some_and(|id| id.starts_with("after-delete-"))
                })
                .then_some(())
        },
    )
    .await;
    let ids: Vec<String> = receiver
        .requests("/leads")
        .iter()
        .filter_map(|r| r.json()["id"].as_str().map(str::to_owned))
        .collect();
    assert!(
        ids.iter()
            .all(|id| id == "good-1" || id.starts_with("after-delete-")),
        "nothing refused was delivered: {ids:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_ingest_started_after_the_type_was_put_checks_it_from_its_first_request() {
    let env = TestEnv::start_with(|o| {
        o.ingest = false;
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    put_type(&env, lead_schema()).await;
    let mut settings = env.settings.clone();
    settings.ingest.api_url.clone_from(&env.api);
    let shutdown = hookline_runtime::Shutdown::new();
    let ingest = hookline_tests::faults::services::spawn_in_process(
        hookline_tests::faults::services::Service::Ingest,
        &settings,
        &shutdown,
    )
    .await;
    hookline_tests::api_client::wait_ready(&ingest, Duration::from_secs(30)).await;
    eventually(CHANGE_APPLIES, "the catalogue read at start", || async {
        let response = env
            .http
            .post(format!("{ingest}/v1/events"))
            .json(&lead("late-1", json!(7)))
            .send()
            .await
            .ok()?;
        (response.status() == 400).then_some(())
    })
    .await;
    // Its control listener ends with it: nothing holds shutdown up.
    assert!(
        shutdown.drain(Duration::from_secs(5)).await,
        "ingest drained within its grace"
    );
    env.stop().await;
}
