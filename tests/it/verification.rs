//! Endpoint verification (`verification: "challenge"`): a subscription
//! receives nothing until its endpoint echoes the token of a signed
//! `webhook.verification` delivery, or the tenant types the token in; a new
//! URL asks again. Each test keeps a plain subscription beside the
//! challenged one, so "nothing arrived" is checked after something did.

use std::time::Duration;

use hookline_tests::faults::probe::metric_sum;
use hookline_tests::receiver::{Captured, Receiver};
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, TestEnv};
use serde_json::{json, Value};

/// Creates a `verification: "challenge"` subscription of acme to `url`.
/// Fanout does not load it (it is unverified), so this does not wait.
async fn create_challenged(env: &TestEnv, url: &str) -> Value {
    let (status, created) = env
        .admin
        .post(
            "/v1/tenants/acme/subscriptions",
            &json!({"name": "Verified CRM", "url": url, "event_types": ["lead.created"],
                    "verification": "challenge"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["verification"], "challenge", "{created}");
    assert_eq!(created["verified"], false, "{created}");
    created
}

/// The challenges `receiver` got on `path`, oldest first.
fn challenges(receiver: &Receiver, path: &str) -> Vec<Captured> {
    receiver
        .requests(path)
        .into_iter()
        .filter(|r| r.json()["type"] == "webhook.verification")
        .collect()
}

/// Waits for the `n`th challenge on `path` and returns it.
async fn nth_challenge(receiver: &Receiver, path: &str, n: usize) -> Captured {
    eventually(
        Duration::from_secs(15),
        "a verification challenge",
        || async { challenges(receiver, path).get(n - 1).cloned() },
    )
    .await
}

/// The token a challenge carries.
fn token_of(challenge: &Captured) -> String {
    challenge.json()["data"]["token"]
        .as_str()
        .expect("data.token")
        .to_string()
}

/// `GET` of one subscription of acme.
async fn read(env: &TestEnv, id: &str) -> Value {
    let (status, body) = env
        .api_get(&format!("/v1/tenants/acme/subscriptions/{id}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Posts one `lead.created` event and waits until the plain subscription
/// on `/control` has it, then until nothing is in flight: whatever the
/// challenged subscription was going to get, it has got by then.
async fn post_and_settle(env: &TestEnv, receiver: &Receiver, id: &str) {
    let (status, body) = env
        .post_event(json!({"id": id, "tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;
    assert_eq!(status, 202, "{body}");
    eventually(Duration::from_secs(15), "the control delivery", || async {
        receiver
            .requests("/control")
            .iter()
            .any(|r| r.json()["id"] == id)
            .then_some(())
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(15)).await;
}

/// Event ids `path` received, challenges left out.
fn events_at(receiver: &Receiver, path: &str) -> Vec<String> {
    receiver
        .requests(path)
        .iter()
        .map(Captured::json)
        .filter(|body| body["type"] == "lead.created")
        .map(|body| body["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Waits until fanout has loaded one more subscription than `before`.
async fn wait_loaded(env: &TestEnv, before: i64) {
    env.wait_fanout_loaded_over(before).await;
}

async fn verify(env: &TestEnv, id: &str, token: &str) -> (u16, Value) {
    env.admin
        .post(
            &format!("/v1/tenants/acme/subscriptions/{id}/verify"),
            &json!({ "token": token }),
        )
        .await
}

#[tokio::test]
async fn an_endpoint_that_echoes_the_token_becomes_verified_and_then_receives_events() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.echo_challenges("/echo");
    env.subscribe("acme", &receiver.url("/control"), &["lead.created"])
        .await;
    let loaded = env.fanout_loaded().await;
    let created = create_challenged(&env, &receiver.url("/echo")).await;
    let id = created["id"].as_str().expect("id");
    let secret = created["secret"].as_str().expect("secret");

    let challenge = nth_challenge(&receiver, "/echo", 1).await;
    let body = challenge.json();
    assert_eq!(body["tenant"], "acme", "{body}");
    assert!(
        body["id"].as_str().is_some_and(|i| i.starts_with("vch_")),
        "{body}"
    );
    let token = token_of(&challenge);
    assert!(
        token.starts_with("hlvt_") && token.len() >= 5 + 32,
        "{token}"
    );
    assert!(
        standard_signature_valid(&challenge, secret),
        "the challenge is signed like any delivery"
    );
    assert_eq!(
        challenge.header("content-type"),
        Some("application/json"),
        "{:?}",
        challenge.headers
    );

    eventually(
        Duration::from_secs(15),
        "the subscription verified",
        || async { (read(&env, id).await["verified"] == true).then_some(()) },
    )
    .await;
    wait_loaded(&env, loaded).await;
    post_and_settle(&env, &receiver, "evt_after_echo").await;
    assert_eq!(events_at(&receiver, "/echo"), ["evt_after_echo"]);

    let (status, history) = env
        .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
        .await;
    assert_eq!(status, 200, "{history}");
    let challenge_attempt = history["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|a| a["event_type"] == "webhook.verification")
        .cloned()
        .unwrap_or_else(|| panic!("the challenge in history: {history}"));
    assert_eq!(challenge_attempt["status"], "succeeded", "{history}");
    assert_eq!(challenge_attempt["event_id"], body["id"], "{history}");
    let metrics = env.metrics(&env.api).await;
    assert_eq!(
        metric_sum(
            &metrics,
            "hookline_verifications_total",
            &[("outcome", "sent")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "hookline_verifications_total",
            &[("outcome", "echoed")]
        ),
        1.0
    );
}

#[tokio::test]
async fn an_endpoint_that_answers_200_without_the_token_stays_unverified_and_receives_nothing() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/control"), &["lead.created"])
        .await;
    let created = create_challenged(&env, &receiver.url("/silent")).await;
    let id = created["id"].as_str().expect("id");
    nth_challenge(&receiver, "/silent", 1).await;

    let path = format!("/v1/tenants/acme/subscriptions/{id}/attempts");
    let attempt = eventually(
        Duration::from_secs(15),
        "the challenge in history",
        || async {
            let (_, history) = env.api_get(&path).await;
            history["data"]
                .as_array()
                .and_then(|d| d.iter().find(|a| a["event_type"] == "webhook.verification"))
                .cloned()
        },
    )
    .await;
    assert_eq!(attempt["status"], "failed", "{attempt}");
    assert_eq!(attempt["response_status"], 200, "{attempt}");
    assert!(
        attempt["error"]
            .as_str()
            .is_some_and(|e| e.contains("verification token")),
        "the attempt says why: {attempt}"
    );

    post_and_settle(&env, &receiver, "evt_while_unverified").await;
    assert!(events_at(&receiver, "/silent").is_empty());
    assert_eq!(
        challenges(&receiver, "/silent").len(),
        1,
        "a challenge is sent once"
    );
    assert_eq!(read(&env, id).await["verified"], false);

    // Guessing is bounded: five tries a minute, then 429.
    for n in 0..5 {
        let (status, body) = verify(&env, id, &format!("hlvt_guess{n}")).await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{body}");
    }
    let (status, body) = verify(&env, id, "hlvt_guess5").await;
    assert_eq!(status, 429, "{body}");
    let metrics = env.metrics(&env.api).await;
    assert_eq!(
        metric_sum(
            &metrics,
            "hookline_verifications_total",
            &[("outcome", "unanswered")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &metrics,
            "hookline_verifications_total",
            &[("outcome", "wrong_token")]
        ),
        5.0
    );
}

#[tokio::test]
async fn a_typed_in_token_verifies_once_and_a_new_url_must_verify_again() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/control"), &["lead.created"])
        .await;
    let created = create_challenged(&env, &receiver.url("/first")).await;
    let id = created["id"].as_str().expect("id");
    let token = token_of(&nth_challenge(&receiver, "/first", 1).await);

    let (status, body) = verify(&env, id, "hlvt_not_it").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_token", "{body}");

    let loaded = env.fanout_loaded().await;
    let (status, body) = verify(&env, id, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verified"], true, "{body}");
    let (status, body) = verify(&env, id, &token).await;
    assert_eq!(status, 422, "a token verifies once: {body}");
    wait_loaded(&env, loaded).await;
    post_and_settle(&env, &receiver, "evt_verified_by_hand").await;
    assert_eq!(events_at(&receiver, "/first"), ["evt_verified_by_hand"]);

    // A new URL is unverified until it answers its own challenge.
    let (status, body) = env
        .admin
        .patch(
            &format!("/v1/tenants/acme/subscriptions/{id}"),
            &json!({"url": receiver.url("/second")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verified"], false, "{body}");
    let second = token_of(&nth_challenge(&receiver, "/second", 1).await);
    assert_ne!(second, token, "a new challenge has a new token");
    let (status, body) = verify(&env, id, &token).await;
    assert_eq!(
        status, 422,
        "the old token does not verify the new URL: {body}"
    );
    post_and_settle(&env, &receiver, "evt_after_move").await;
    assert!(events_at(&receiver, "/second").is_empty());

    // Asking again replaces the token.
    let (status, sent) = env
        .admin
        .post(
            &format!("/v1/tenants/acme/subscriptions/{id}/verification"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let third = nth_challenge(&receiver, "/second", 2).await;
    assert_eq!(third.json()["id"], sent["event_id"], "{sent}");
    let (status, body) = verify(&env, id, &second).await;
    assert_eq!(status, 422, "a replaced token no longer verifies: {body}");
    let loaded = env.fanout_loaded().await;
    let (status, body) = verify(&env, id, &token_of(&third)).await;
    assert_eq!(status, 200, "{body}");
    wait_loaded(&env, loaded).await;
    post_and_settle(&env, &receiver, "evt_second_verified").await;
    assert_eq!(events_at(&receiver, "/second"), ["evt_second_verified"]);
}

#[tokio::test]
async fn subscriptions_without_a_challenge_are_verified_and_verification_is_validated() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let plain = env
        .subscribe("acme", &receiver.url("/plain"), &["lead.created"])
        .await;
    assert_eq!(plain["verification"], "none", "{plain}");
    assert_eq!(plain["verified"], true, "{plain}");
    let (status, body) = env
        .admin
        .post(
            "/v1/tenants/acme/subscriptions",
            &json!({"url": receiver.url("/x"), "event_types": ["lead.created"], "verification": "email"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_verification", "{body}");
    let id = plain["id"].as_str().expect("id");
    let (status, body) = env
        .admin
        .post(
            &format!("/v1/tenants/acme/subscriptions/{id}/verification"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        body["error"]["code"], "verification_not_requested",
        "{body}"
    );
    let (status, body) = verify(&env, id, "").await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = verify(&env, "sub_missing", "hlvt_x").await;
    assert_eq!(status, 404, "{body}");
}
