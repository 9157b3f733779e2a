//! Endpoint queues: `ordering: "fifo"` and `rate_limit` against the real
//! services, broker, database and receiver, with two deliverers taking
//! from the same queues (the queue's single active consumer is what makes
//! the policy hold across them).

use std::time::Duration;

use hookline_runtime::Shutdown;
use hookline_tests::api_client::wait_ready;
use hookline_tests::faults::probe::metric_sum;
use hookline_tests::faults::services::{spawn_in_process, Service};
use hookline_tests::{eventually, Captured, Receiver, Reply, TestEnv};
use serde_json::{json, Value};

/// Starts a second deliverer beside the environment's own; it stops with
/// the returned shutdown.
pub(crate) async fn second_deliverer(env: &TestEnv) -> (Shutdown, String) {
    let shutdown = Shutdown::new();
    let base = spawn_in_process(Service::Deliverer, &env.settings, &shutdown).await;
    wait_ready(&base, Duration::from_secs(30)).await;
    (shutdown, base)
}

/// Creates a subscription of `acme` to `lead.created` with `options`.
async fn subscribe_with(env: &TestEnv, url: &str, options: Value) -> String {
    let mut body = json!({"url": url, "event_types": ["lead.created"]});
    body.as_object_mut()
        .expect("object")
        .extend(options.as_object().expect("options").clone());
    let (status, sub) = env.api_post("/v1/tenants/acme/subscriptions", body).await;
    assert_eq!(status, 201, "{sub}");
    sub["id"].as_str().expect("id").to_string()
}

/// Sends `ids` as `lead.created` events of `acme`, in this order, in one
/// batch (ingest publishes a batch in order).
async fn emit(env: &TestEnv, ids: &[String]) {
    let events: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "tenant": "acme", "type": "lead.created", "data": {}}))
        .collect();
    let (status, body) = env
        .ingest_post("/v1/events/batch", &json!({"events": events}))
        .await;
    assert_eq!(status, 200, "{body}");
}

/// PATCHes `acme`'s subscription `id` with `body`, which must succeed.
async fn patch(env: &TestEnv, id: &str, body: Value) {
    let (status, patched) = env
        .admin
        .patch(&format!("/v1/tenants/acme/subscriptions/{id}"), &body)
        .await;
    assert_eq!(status, 200, "{patched}");
}

fn event_id(request: &Captured) -> String {
    request.json()["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("evt_{prefix}_{i:03}")).collect()
}

#[tokio::test]
async fn policies_are_validated_naming_the_field_and_shown_when_read() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let path = "/v1/tenants/acme/subscriptions";
    let base = json!({"url": "https://example.com/hook", "event_types": ["lead.created"]});
    let with = |extra: Value| {
        let mut body = base.clone();
        body.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("extra").clone());
        body
    };
    for (extra, code, names) in [
        (json!({"ordering": "lifo"}), "invalid_ordering", "ordering"),
        (
            json!({"rate_limit": {"per_second": 0}}),
            "invalid_rate_limit",
            "rate_limit.per_second",
        ),
        (
            json!({"rate_limit": {"per_second": "fast"}}),
            "invalid_rate_limit",
            "rate_limit.per_second",
        ),
        (
            json!({"batch": {"max_events": 0, "max_wait": "2s"}}),
            "invalid_batch",
            "batch.max_events",
        ),
        (
            json!({"batch": {"max_events": 1001, "max_wait": "2s"}}),
            "invalid_batch",
            "batch.max_events",
        ),
        (
            json!({"batch": {"max_events": 10, "max_wait": "61s"}}),
            "invalid_batch",
            "batch.max_wait",
        ),
    ] {
        let (status, body) = env.admin.post(path, &with(extra.clone())).await;
        assert_eq!(status, 422, "{extra} → {body}");
        assert_eq!(body["error"]["code"], code, "{extra} → {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{extra} → {message}");
    }
    let (status, body) = env
        .admin
        .post(
            path,
            &with(json!({"batch": {"max_events": 100, "max_wait": "2s"}})),
        )
        .await;
    assert_eq!(status, 201, "a valid batch: {body}");
    assert_eq!(body["batch"], json!({"max_events": 100, "max_wait": "2s"}));

    let (status, plain) = env.admin.post(path, &base).await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(plain["ordering"], "none");
    assert_eq!(plain["rate_limit"], Value::Null);
    let (status, sub) = env
        .admin
        .post(
            path,
            &with(json!({"ordering": "fifo", "rate_limit": {"per_second": 5}})),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    assert_eq!(sub["ordering"], "fifo");
    assert_eq!(sub["rate_limit"], json!({"per_second": 5}));
    let id = sub["id"].as_str().expect("id");
    let (status, patched) = env
        .admin
        .patch(
            &format!("{path}/{id}"),
            &json!({"rate_limit": "none", "ordering": "none"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["rate_limit"], Value::Null);
    assert_eq!(patched["ordering"], "none");
    let (_, read) = env.admin.get(&format!("{path}/{id}")).await;
    assert_eq!(read["ordering"], "none", "{read}");
}

#[tokio::test]
async fn a_rate_limit_of_5_a_second_holds_across_two_deliverers() {
    let env = TestEnv::start().await;
    let (other, _) = second_deliverer(&env).await;
    let receiver = Receiver::start().await;
    subscribe_with(
        &env,
        &receiver.url("/paced"),
        json!({"rate_limit": {"per_second": 5}}),
    )
    .await;
    let sent = ids("rate", 50);
    emit(&env, &sent).await;

    let requests = eventually(Duration::from_secs(60), "50 paced requests", || async {
        let r = receiver.requests("/paced");
        (r.len() >= 50).then_some(r)
    })
    .await;
    let mut got: Vec<_> = requests.iter().map(event_id).collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 50, "every event arrived");
    // No more than 5 in any one-second window: the 6th after any request
    // comes at least a second later.
    for (first, sixth) in requests.iter().zip(requests.iter().skip(5)) {
        assert!(
            sixth.at.duration_since(first.at) >= Duration::from_secs(1),
            "6 requests within {:?}",
            sixth.at.duration_since(first.at)
        );
    }
    let took = requests[49].at.duration_since(requests[0].at);
    assert!(
        took >= Duration::from_secs(9) && took <= Duration::from_secs(11),
        "50 events at 5/s took {took:?}"
    );
    other.token.cancel();
}

#[tokio::test]
async fn fifo_delivers_in_match_order_and_a_failing_head_holds_the_rest_across_two_deliverers() {
    let env = TestEnv::start_with(|o| {
        o.settings.delivery.retry_delays = vec![Duration::from_millis(300), Duration::from_secs(1)];
    })
    .await;
    let (other, _) = second_deliverer(&env).await;
    let receiver = Receiver::start().await;
    // Every 10th request fails once.
    let replies = (1..=260)
        .map(|n| Reply::status(if n % 10 == 0 { 500 } else { 200 }))
        .collect();
    receiver.script("/ordered", replies);
    subscribe_with(&env, &receiver.url("/ordered"), json!({"ordering": "fifo"})).await;
    let sent = ids("fifo", 200);
    emit(&env, &sent).await;

    let requests = eventually(
        Duration::from_secs(120),
        "200 delivered in order",
        || async {
            let r = receiver.requests("/ordered");
            let delivered = r.len() - r.len() / 10;
            (delivered >= 200).then_some(r)
        },
    )
    .await;
    let got: Vec<_> = requests.iter().map(event_id).collect();
    // The request after each failure is the same event again: nothing
    // behind a failing head was sent meanwhile.
    for n in (10..got.len()).step_by(10) {
        assert_eq!(
            got[n - 1],
            got[n],
            "request {} failed, request {} should retry it",
            n,
            n + 1
        );
    }
    let delivered: Vec<_> = got
        .iter()
        .enumerate()
        .filter(|(i, _)| (i + 1) % 10 != 0)
        .map(|(_, id)| id.clone())
        .collect();
    let first_difference = delivered
        .iter()
        .zip(&sent)
        .position(|(got, want)| got != want);
    assert!(
        first_difference.is_none() && delivered.len() == sent.len(),
        "not in match order from position {first_difference:?}: got {:?}, {} delivered",
        &delivered[first_difference.unwrap_or(0)..][..delivered.len().min(8)],
        delivered.len()
    );
    other.token.cancel();
}

#[tokio::test]
async fn a_paced_retry_comes_back_through_its_queue_and_removing_the_policy_loses_nothing() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.script("/slowly", vec![Reply::status(503)]);
    let id = subscribe_with(
        &env,
        &receiver.url("/slowly"),
        json!({"rate_limit": {"per_second": 1}}),
    )
    .await;
    let sent = ids("drain", 30);
    emit(&env, &sent).await;
    eventually(
        Duration::from_secs(20),
        "the first paced requests",
        || async { (receiver.requests("/slowly").len() >= 3).then_some(()) },
    )
    .await;
    // 27 or so still wait in the endpoint queue: lifting the limit lets
    // them all through, none lost.
    patch(&env, &id, json!({"rate_limit": "none"})).await;
    let requests = eventually(Duration::from_secs(30), "every event", || async {
        let r = receiver.requests("/slowly");
        let mut got: Vec<_> = r.iter().map(event_id).collect();
        got.sort();
        got.dedup();
        (got.len() == 30).then_some(r)
    })
    .await;
    assert!(
        requests.len() >= 31,
        "the first request failed and was retried"
    );
    let took = requests[requests.len() - 1]
        .at
        .duration_since(requests[0].at);
    assert!(
        took < Duration::from_secs(20),
        "the rest went unpaced once the limit was removed: {took:?}"
    );
    let metrics = env.metrics(&env.deliverer).await;
    assert!(
        metric_sum(
            &metrics,
            "hookline_deliverer_endpoint_queue_moves_total",
            &[]
        ) >= 1.0,
        "the retry was moved back into the endpoint queue"
    );
}

/// A `hookline deliverer` process on a free port, killed when dropped.
pub(crate) struct DelivererProcess(pub(crate) std::process::Child);

impl Drop for DelivererProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_deliverer_killed_while_holding_a_failing_fifo_head_hands_it_over_in_order() {
    let env = TestEnv::start_with(|o| {
        o.deliverer = false;
        // The failing head waits 5 s in place: time to kill its holder.
        o.settings.delivery.retry_delays = vec![Duration::from_secs(5)];
    })
    .await;
    let mut settings = env.settings.clone();
    let addr = format!("127.0.0.1:{}", hookline_tests::binary::free_port());
    settings.deliverer.listen = addr.parse().expect("listen address");
    let mut holder = DelivererProcess(hookline_tests::binary::spawn_service(
        "deliverer",
        &settings,
    ));
    wait_ready(&format!("http://{addr}"), Duration::from_secs(30)).await;
    let receiver = Receiver::start().await;
    // The 5th request (event 4's first attempt) fails.
    let mut replies: Vec<_> = (0..4).map(|_| Reply::status(200)).collect();
    replies.push(Reply::status(500));
    receiver.script("/ordered", replies);
    subscribe_with(&env, &receiver.url("/ordered"), json!({"ordering": "fifo"})).await;
    let sent = ids("kill", 20);
    // The first event shows the process consumes the queue, and is the
    // active consumer, before a second deliverer joins.
    emit(&env, &sent[..1]).await;
    eventually(Duration::from_secs(20), "the first delivery", || async {
        (!receiver.requests("/ordered").is_empty()).then_some(())
    })
    .await;
    let (other, _) = second_deliverer(&env).await;
    emit(&env, &sent[1..]).await;
    eventually(Duration::from_secs(20), "the failing head", || async {
        (receiver.requests("/ordered").len() >= 5).then_some(())
    })
    .await;
    holder
        .0
        .kill()
        .expect("kill -9 the deliverer holding the head");
    let _ = holder.0.wait();

    let requests = eventually(Duration::from_secs(60), "every event", || async {
        let r = receiver.requests("/ordered");
        (r.len() > sent.len()).then_some(r)
    })
    .await;
    let got: Vec<_> = requests.iter().map(event_id).collect();
    assert_eq!(got[4], sent[4], "the 5th request was event 4's, and failed");
    assert_eq!(
        got[5], sent[4],
        "the head came back first, to the other deliverer"
    );
    // Sooner than the holder's 5 s wait in place would have ended: the
    // head was handed over, not retried by a deliverer that never died.
    let handed_over = requests[5].at.duration_since(requests[4].at);
    assert!(
        handed_over < Duration::from_secs(4),
        "the head was sent again only after {handed_over:?}"
    );
    let mut delivered = got.clone();
    delivered.remove(4);
    assert_eq!(
        delivered, sent,
        "in match order, nothing lost or sent past the head"
    );
    other.token.cancel();
}

#[tokio::test]
async fn changing_a_rate_limit_to_fifo_with_events_queued_loses_none_and_keeps_their_order() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let id = subscribe_with(
        &env,
        &receiver.url("/changed"),
        json!({"rate_limit": {"per_second": 1}}),
    )
    .await;
    let sent = ids("change", 12);
    emit(&env, &sent).await;
    eventually(
        Duration::from_secs(20),
        "the first paced requests",
        || async { (receiver.requests("/changed").len() >= 2).then_some(()) },
    )
    .await;
    patch(&env, &id, json!({"rate_limit": "none", "ordering": "fifo"})).await;
    let requests = eventually(Duration::from_secs(30), "every event", || async {
        let r = receiver.requests("/changed");
        (r.len() >= sent.len()).then_some(r)
    })
    .await;
    let got: Vec<_> = requests.iter().map(event_id).collect();
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, sent, "none lost");
    // One in flight from the queue's head on, before and after the change.
    assert_eq!(got, sent, "in order");
}
