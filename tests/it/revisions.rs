//! Changes made while no deliverer runs still apply to the tasks waiting on
//! the ladder: a deliverer started afterwards reads the control log before
//! it takes a task, drops the retries of a deleted subscription, and sends
//! those of a PATCHed one to the new URL with the new credentials.

use std::time::Duration;

use hookline_tests::env::ADMIN_TOKEN;
use hookline_tests::faults::probe::{metric_sum, metrics_text};
use hookline_tests::faults::{Service, ServiceProcess};
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use serde_json::{json, Value};

/// A real deliverer process, started on the test's vhost and database.
async fn deliverer(env: &TestEnv) -> ServiceProcess {
    let process = ServiceProcess::spawn(Service::Deliverer, &env.settings, &[]);
    process.wait_ready(Duration::from_secs(30)).await;
    process
}

async fn superseded(process: &ServiceProcess, outcome: &str) -> f64 {
    metric_sum(
        &metrics_text(&process.base).await,
        "hookline_deliverer_superseded_tasks_total",
        &[("outcome", outcome)],
    )
}

async fn admin(env: &TestEnv, method: reqwest::Method, path: &str, body: Option<Value>) -> u16 {
    let mut request = env
        .http
        .request(method, format!("{}{path}", env.api))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("api").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deliverer_started_after_a_delete_drops_the_deleted_subscriptions_retries() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let receiver = Receiver::start().await;
    receiver.set_default("/deleted", Reply::status(500));
    // The control: fails once, then accepts; its retry must still arrive.
    receiver.script("/kept", vec![Reply::status(500)]);
    let deleted = env
        .subscribe("acme", &receiver.url("/deleted"), &["lead.created"])
        .await;
    env.subscribe("acme", &receiver.url("/kept"), &["lead.created"])
        .await;
    let mut first = deliverer(&env).await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    eventually(Duration::from_secs(30), "both first attempts", || async {
        let done =
            receiver.requests("/deleted").len() == 1 && receiver.requests("/kept").len() == 1;
        done.then_some(())
    })
    .await;
    first.terminate().await;

    // Deleted while no deliverer runs: only the control log remembers.
    let id = deleted["id"].as_str().expect("id");
    let path = format!("/v1/tenants/acme/subscriptions/{id}");
    assert_eq!(admin(&env, reqwest::Method::DELETE, &path, None).await, 204);

    let second = deliverer(&env).await;
    eventually(
        Duration::from_secs(30),
        "the kept subscription's retry",
        || async { (receiver.requests("/kept").len() == 2).then_some(()) },
    )
    .await;
    eventually(
        Duration::from_secs(30),
        "the deleted subscription's retry dropped",
        || async { (superseded(&second, "dropped").await >= 1.0).then_some(()) },
    )
    .await;
    assert_eq!(
        receiver.requests("/deleted").len(),
        1,
        "no delivery starts after the delete, even on a deliverer that did not see it happen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_patch_goes_to_the_new_url_with_the_new_secret_and_headers() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let receiver = Receiver::start().await;
    receiver.set_default("/old", Reply::status(500));
    let created = env
        .api_post(
            "/v1/tenants/acme/subscriptions",
            json!({
                "url": receiver.url("/old"),
                "event_types": ["lead.created"],
                "headers": {"X-Team": "blue"},
            }),
        )
        .await
        .1;
    let id = created["id"].as_str().expect("id").to_string();
    let old_secret = created["secret"].as_str().expect("secret").to_string();
    let mut first = deliverer(&env).await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;
    eventually(Duration::from_secs(30), "the first attempt", || async {
        (receiver.requests("/old").len() == 1).then_some(())
    })
    .await;
    first.terminate().await;

    let new_secret = format!("whsec_{}", base64_of(&[7u8; 32]));
    let path = format!("/v1/tenants/acme/subscriptions/{id}");
    let patch = json!({
        "url": receiver.url("/new"),
        "headers": {"X-Team": "green"},
        "secret": new_secret,
    });
    assert_eq!(
        admin(&env, reqwest::Method::PATCH, &path, Some(patch)).await,
        200
    );

    let second = deliverer(&env).await;
    let retry = eventually(
        Duration::from_secs(30),
        "the retry at the new URL",
        || async { receiver.requests("/new").into_iter().next() },
    )
    .await;
    let original = &receiver.requests("/old")[0];
    assert_eq!(retry.header("webhook-id"), original.header("webhook-id"));
    assert_eq!(retry.body, original.body, "the same event");
    assert_eq!(retry.header("x-team"), Some("green"));
    assert!(
        standard_signature_valid(&retry, &new_secret),
        "signed with the new secret"
    );
    assert!(
        !standard_signature_valid(&retry, &old_secret),
        "not with the replaced one"
    );
    assert_eq!(
        receiver.requests("/old").len(),
        1,
        "nothing more to the old URL"
    );
    assert!(superseded(&second, "reshaped").await >= 1.0);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
