//! Receivers that misbehave: silent, trickling, huge, redirecting, asking
//! for a later retry, presenting a certificate nobody trusts, or not
//! resolving at all. Each attempt must end within the one total deadline,
//! be recorded with a bounded excerpt, and be retried on the ladder.

use std::time::Duration;

use hookline_tests::faults::env::wait_subscriptions_loaded;
use hookline_tests::faults::probe::metric_sum;
use hookline_tests::faults::{MisbehavingReceiver, Misbehaviour};
use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use serde_json::{json, Value};

/// Every history record of a subscription once there are `count`, newest
/// first.
async fn history(env: &TestEnv, sub: &Value, count: usize) -> Vec<Value> {
    let id = sub["id"].as_str().expect("id");
    eventually(
        Duration::from_secs(25),
        &format!("{count} attempts of {id}"),
        || async {
            let (_, body) = env
                .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
                .await;
            let data = body["data"].as_array().cloned().unwrap_or_default();
            (data.len() >= count).then_some(data)
        },
    )
    .await
}

/// Subscribes each URL to `lead.created` and waits until fanout knows them.
async fn subscribe_all(env: &TestEnv, urls: &[String]) -> Vec<Value> {
    let mut subs = Vec::new();
    for url in urls {
        subs.push(env.subscribe("acme", url, &["lead.created"]).await);
    }
    wait_subscriptions_loaded(&env.fanout, urls.len()).await;
    subs
}

async fn post_one(env: &TestEnv) {
    let (status, body) = env
        .post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    assert_eq!(status, 202, "{body}");
}

fn statuses(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .map(|a| a["status"].as_str().unwrap_or_default())
        .collect()
}

fn duration_ms(attempt: &Value) -> u64 {
    attempt["duration_ms"].as_u64().expect("duration_ms")
}

fn error(attempt: &Value) -> String {
    attempt["error"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_receiver_that_accepts_and_never_answers_fails_at_the_deadline_and_is_retried() {
    let env = TestEnv::start_with(|o| o.settings.delivery.timeout = Duration::from_secs(1)).await;
    let silent = MisbehavingReceiver::start(Misbehaviour::Silent).await;
    let subs = subscribe_all(&env, &[silent.url("/hook")]).await;
    post_one(&env).await;

    let history = history(&env, &subs[0], 3).await;
    assert_eq!(statuses(&history), ["dead", "failed", "failed"]);
    for attempt in &history {
        assert!(attempt["response_status"].is_null(), "{attempt}");
        let took = duration_ms(attempt);
        assert!((900..4000).contains(&took), "took {took} ms: {attempt}");
        assert!(error(attempt).contains("timed out"), "{attempt}");
    }
    assert_eq!(silent.requests(), 3, "one request per attempt");
    let timeouts = metric_sum(
        &env.metrics(&env.deliverer).await,
        "hookline_deliveries_total",
        &[("status_class", "timeout")],
    );
    assert_eq!(timeouts, 3.0);
}

#[tokio::test]
async fn a_body_that_trickles_forever_ends_at_the_one_total_deadline_with_a_capped_excerpt() {
    let env = TestEnv::start_with(|o| {
        o.settings.delivery.timeout = Duration::from_secs(1);
        o.settings.delivery.response_excerpt_bytes = 64;
        // One attempt within the test: the retry waits far longer.
        o.settings.delivery.retry_delays = vec![Duration::from_secs(60)];
    })
    .await;
    let every = Duration::from_millis(100);
    let failing = MisbehavingReceiver::start(Misbehaviour::Trickle { status: 500, every }).await;
    let succeeding = MisbehavingReceiver::start(Misbehaviour::Trickle { status: 200, every }).await;
    let subs = subscribe_all(&env, &[failing.url("/t"), succeeding.url("/t")]).await;
    post_one(&env).await;

    let failed = &history(&env, &subs[0], 1).await[0];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["response_status"], 500);
    let took = duration_ms(failed);
    assert!((900..3000).contains(&took), "took {took} ms: {failed}");
    let excerpt = error(failed);
    assert!(
        !excerpt.is_empty() && excerpt.len() <= 64 && excerpt.chars().all(|c| c == 'x'),
        "the excerpt is what arrived before the deadline: {failed}"
    );

    // A success whose body never ends is still a success, and the attempt
    // still ends at the deadline instead of holding a slot forever.
    let succeeded = &history(&env, &subs[1], 1).await[0];
    assert_eq!(succeeded["status"], "succeeded");
    let took = duration_ms(succeeded);
    assert!(took < 3000, "took {took} ms: {succeeded}");
}

#[tokio::test]
async fn a_huge_response_body_is_read_no_further_than_the_excerpt() {
    const HUGE: u64 = 200 * 1024 * 1024;
    let env = TestEnv::start_with(|o| {
        o.settings.delivery.timeout = Duration::from_secs(2);
        o.settings.delivery.response_excerpt_bytes = 64;
        o.settings.delivery.retry_delays = vec![Duration::from_secs(60)];
    })
    .await;
    let failing = MisbehavingReceiver::start(Misbehaviour::Huge {
        status: 500,
        bytes: HUGE,
    })
    .await;
    let succeeding = MisbehavingReceiver::start(Misbehaviour::Huge {
        status: 200,
        bytes: HUGE,
    })
    .await;
    let subs = subscribe_all(&env, &[failing.url("/h"), succeeding.url("/h")]).await;
    post_one(&env).await;

    let failed = &history(&env, &subs[0], 1).await[0];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["response_status"], 500);
    assert_eq!(error(failed), "x".repeat(64), "exactly the excerpt is kept");
    assert!(duration_ms(failed) < 1500, "{failed}");
    let succeeded = &history(&env, &subs[1], 1).await[0];
    assert_eq!(succeeded["status"], "succeeded");
    assert!(duration_ms(succeeded) < 1500, "{succeeded}");
    for receiver in [&failing, &succeeding] {
        let sent = receiver.body_bytes_sent();
        assert!(
            sent < HUGE / 4,
            "the client read {sent} of {HUGE} bytes instead of hanging up"
        );
    }
}

#[tokio::test]
async fn a_redirect_is_never_followed_and_counts_as_a_failed_attempt() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let to_target = |status: u16| Reply {
        status,
        delay: Duration::ZERO,
        headers: vec![("location".into(), receiver.url("/target"))],
    };
    receiver.script(
        "/moved",
        vec![to_target(301), to_target(307), to_target(308)],
    );
    let subs = subscribe_all(&env, &[receiver.url("/moved")]).await;
    post_one(&env).await;

    let history = history(&env, &subs[0], 3).await;
    assert_eq!(statuses(&history), ["dead", "failed", "failed"]);
    let codes: Vec<_> = history
        .iter()
        .map(|a| a["response_status"].clone())
        .collect();
    assert_eq!(codes, [json!(308), json!(307), json!(301)], "newest first");
    assert!(
        receiver.requests("/target").is_empty(),
        "a redirect was followed"
    );
    assert_eq!(receiver.requests("/moved").len(), 3);
}

#[tokio::test]
async fn retry_after_in_seconds_or_as_a_date_is_honoured_garbage_ignored_and_years_clamped() {
    let env = TestEnv::start_with(|o| {
        o.settings.delivery.retry_delays = [1, 3, 6].map(Duration::from_secs).to_vec();
    })
    .await;
    let receiver = Receiver::start().await;
    let asking = |status: u16, retry_after: String| Reply {
        status,
        delay: Duration::ZERO,
        headers: vec![("retry-after".into(), retry_after)],
    };
    let in_six_seconds = (chrono::Utc::now() + chrono::Duration::seconds(6))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    // (path, first answer, shortest and longest acceptable wait in ms)
    let cases = [
        ("/seconds", asking(429, "2".into()), 2900, 5900),
        ("/date", asking(503, in_six_seconds), 5900, 12000),
        ("/garbage", asking(503, "soon, probably".into()), 900, 2900),
        ("/years", asking(429, "999999999".into()), 5900, 12000),
    ];
    let urls: Vec<String> = cases.iter().map(|(p, ..)| receiver.url(p)).collect();
    for (path, reply, ..) in &cases {
        receiver.script(path, vec![reply.clone()]);
    }
    subscribe_all(&env, &urls).await;
    post_one(&env).await;

    for (path, _, shortest, longest) in cases {
        let requests = eventually(Duration::from_secs(20), path, || async {
            let r = receiver.requests(path);
            (r.len() >= 2).then_some(r)
        })
        .await;
        let waited = (requests[1].at - requests[0].at).as_millis();
        assert!(
            (shortest..longest).contains(&waited),
            "{path}: waited {waited} ms, expected {shortest}..{longest}"
        );
        assert_eq!(
            requests[0].header("webhook-id"),
            requests[1].header("webhook-id")
        );
    }
}

#[tokio::test]
async fn a_receiver_with_an_untrusted_certificate_fails_the_attempt_before_any_request() {
    let env = TestEnv::start_with(|o| {
        o.settings.delivery.retry_delays = vec![Duration::from_secs(60)];
    })
    .await;
    let tls = MisbehavingReceiver::start(Misbehaviour::UntrustedTls).await;
    let subs = subscribe_all(&env, &[tls.url("/hook")]).await;
    post_one(&env).await;

    let attempt = &history(&env, &subs[0], 1).await[0];
    assert_eq!(attempt["status"], "failed", "retried, not dead: {attempt}");
    assert!(attempt["response_status"].is_null(), "{attempt}");
    assert!(
        error(attempt).to_lowercase().contains("certificate"),
        "{attempt}"
    );
    assert!(tls.connections() >= 1, "the deliverer never connected");
    assert_eq!(tls.requests(), 0, "a request went over the untrusted TLS");
    let metrics = env.metrics(&env.deliverer).await;
    assert_eq!(
        metric_sum(
            &metrics,
            "hookline_deliveries_total",
            &[("status_class", "connect")]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(&metrics, "hookline_retries_scheduled_total", &[]),
        1.0
    );
}

#[tokio::test]
async fn a_host_name_that_does_not_resolve_is_a_failure_that_is_retried() {
    let env = TestEnv::start().await;
    // `.invalid` never resolves (RFC 6761).
    let subs = subscribe_all(&env, &["http://hookline-receiver.invalid/hook".to_string()]).await;
    post_one(&env).await;

    let history = history(&env, &subs[0], 3).await;
    assert_eq!(statuses(&history), ["dead", "failed", "failed"]);
    for attempt in &history {
        assert!(attempt["response_status"].is_null(), "{attempt}");
        assert!(error(attempt).to_lowercase().contains("dns"), "{attempt}");
    }
    let connect = metric_sum(
        &env.metrics(&env.deliverer).await,
        "hookline_deliveries_total",
        &[("status_class", "connect")],
    );
    assert_eq!(connect, 3.0);
}
