//! Batched delivery (`"batch": {"max_events", "max_wait"}`) as a receiver
//! sees it: `{"payload": [ … ]}` bodies of at most `max_events` entries in
//! match order, sent when full or `max_wait` after the first event, split
//! under `delivery.max_batch_bytes`, signed and retried whole under one
//! `batch_` webhook-id, parked per event, and never lost to a `kill -9`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, Captured, Receiver, Reply, TestEnv};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::endpoint_queues::{ids, second_deliverer, DelivererProcess};

/// The secret of the `hmac`-signed subscription.
const HMAC_SECRET: &str = "acme-batch-secret-0123456789";
/// When every event here occurred, so rendered timestamps are exact.
const OCCURRED_AT: &str = "2026-01-14T12:17:23.884Z";
const SUBSCRIPTIONS: &str = "/v1/tenants/acme/subscriptions";

/// `base` with the fields of `extra` set on it.
fn merged(mut base: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().expect("an object") {
        base[key] = value.clone();
    }
    base
}

/// The `batch` option as a subscription body field.
fn batch(max_events: u32, max_wait: &str) -> Value {
    json!({"batch": {"max_events": max_events, "max_wait": max_wait}})
}

/// `batch(max_events, max_wait)` with the fields of `extra` added.
fn batch_with(max_events: u32, max_wait: &str, extra: Value) -> Value {
    merged(batch(max_events, max_wait), extra)
}

/// A subscription body of `acme` to `lead.created` at `url` with `options`.
fn subscription(url: &str, options: Value) -> Value {
    let base = json!({"name": "batched", "url": url, "event_types": ["lead.created"]});
    merged(base, options)
}

/// Creates that subscription and returns it (with its secret), once fanout
/// has loaded it.
async fn subscribe(env: &TestEnv, url: &str, options: Value) -> Value {
    let (status, created) = env
        .api_post(SUBSCRIPTIONS, subscription(url, options))
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

fn id_of(sub: &Value) -> &str {
    sub["id"].as_str().expect("subscription id")
}

/// A `lead.created` event of `acme` with `id` and `data`.
fn lead(id: &str, data: Value) -> Value {
    json!({"id": id, "tenant": "acme", "type": "lead.created",
           "occurred_at": OCCURRED_AT, "data": data})
}

/// The events of `sent` with empty data.
fn leads(sent: &[String]) -> Vec<Value> {
    sent.iter().map(|id| lead(id, json!({}))).collect()
}

/// Sends `events` in this order in one ingest batch; each must be accepted.
async fn emit(env: &TestEnv, events: Vec<Value>) {
    let wanted: Vec<Value> = events.iter().map(|e| e["id"].clone()).collect();
    let (status, body) = env
        .ingest_post("/v1/events/batch", &json!({ "events": events }))
        .await;
    assert_eq!(status, 200, "{body}");
    let accepted: Vec<Value> = body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(accepted, wanted, "every event accepted: {body}");
}

/// The entries of a batch body (none when the body is not a batch).
fn payload(request: &Captured) -> Vec<Value> {
    request.json()["payload"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The event ids of the entries of a batch body, in order.
fn payload_ids(request: &Captured) -> Vec<String> {
    payload(request)
        .iter()
        .map(|entry| entry["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The event ids carried by `requests`, concatenated in arrival order.
fn carried(requests: &[Captured]) -> Vec<String> {
    requests.iter().flat_map(payload_ids).collect()
}

/// `ids` sorted without repeats.
fn unique(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

fn webhook_id(request: &Captured) -> String {
    request.header("webhook-id").unwrap_or_default().to_string()
}

/// The requests at `path` once they carry at least `events` entries and
/// nothing more can arrive.
async fn settled(env: &TestEnv, receiver: &Receiver, path: &str, events: usize) -> Vec<Captured> {
    eventually(Duration::from_secs(60), path, || async {
        (carried(&receiver.requests(path)).len() >= events).then_some(())
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(30)).await;
    receiver.requests(path)
}

/// Lowercase hex HMAC-SHA256 of the request body keyed by `secret`'s bytes.
fn hex_hmac(secret: &str, request: &Captured) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(&request.body);
    hex::encode(mac.finalize().into_bytes())
}

/// Every attempt of subscription `id`, all pages, once there are `count`.
async fn history(env: &TestEnv, id: &str, count: usize) -> Vec<Value> {
    eventually(
        Duration::from_secs(30),
        "the attempts in history",
        || async {
            let mut all = Vec::new();
            let mut cursor = String::new();
            loop {
                let mut path = format!("{SUBSCRIPTIONS}/{id}/attempts?limit=200");
                if !cursor.is_empty() {
                    path.push_str(&format!("&cursor={cursor}"));
                }
                let (status, page) = env.api_get(&path).await;
                if status != 200 {
                    return None;
                }
                all.extend(page["data"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = next.to_string(),
                    None => break,
                }
            }
            (all.len() >= count).then_some(all)
        },
    )
    .await
}

/// Each attempt's `batch_id` is the webhook-id of the request that carried
/// its event, and each event has exactly one attempt.
fn assert_batch_ids(history: &[Value], requests: &[Captured], sent: &[String]) {
    let carrier: HashMap<String, String> = requests
        .iter()
        .flat_map(|r| payload_ids(r).into_iter().map(|id| (id, webhook_id(r))))
        .collect();
    let recorded: Vec<String> = history
        .iter()
        .map(|a| a["event_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(unique(recorded.clone()), unique(sent.to_vec()));
    assert_eq!(recorded.len(), sent.len(), "one attempt per event");
    for attempt in history {
        let event = attempt["event_id"].as_str().unwrap_or_default();
        assert_eq!(
            attempt["batch_id"].as_str(),
            carrier.get(event).map(String::as_str),
            "{attempt}"
        );
    }
}

/// 250 events go out as 100, 100 and 50 in match order, each batch signed
/// over its raw body, and history ties every event to its batch.
#[tokio::test]
async fn two_hundred_fifty_events_arrive_as_batches_of_100_100_50_in_match_order_and_verify() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let standard = subscribe(&env, &receiver.url("/standard"), batch(100, "2s")).await;
    let hmac = json!({"signature": {"scheme": "hmac", "header": "X-Signature", "encoding": "hex"},
                      "secret": HMAC_SECRET});
    let hmac = subscribe(&env, &receiver.url("/hmac"), batch_with(100, "2s", hmac)).await;
    let sent = ids("many", 250);
    emit(&env, leads(&sent)).await;

    for (path, sub) in [("/standard", &standard), ("/hmac", &hmac)] {
        let requests = settled(&env, &receiver, path, sent.len()).await;
        let sizes: Vec<usize> = requests.iter().map(|r| payload(r).len()).collect();
        assert_eq!(sizes, [100, 100, 50], "{path}: batch sizes");
        assert_eq!(
            carried(&requests),
            sent,
            "{path}: each once, in match order"
        );
        for request in &requests {
            let id = webhook_id(request);
            assert!(id.starts_with("batch_"), "{path}: webhook-id {id}");
            let verified = if path == "/standard" {
                standard_signature_valid(request, sub["secret"].as_str().expect("secret"))
            } else {
                request.header("x-signature") == Some(hex_hmac(HMAC_SECRET, request).as_str())
            };
            assert!(verified, "{path}: {id} signed over the bytes sent");
        }
        let attempts = history(&env, id_of(sub), sent.len()).await;
        assert_batch_ids(&attempts, &requests, &sent);
    }
}

/// Fewer events than `max_events` wait `max_wait`, then go in one request.
#[tokio::test]
async fn three_events_wait_max_wait_then_go_as_one() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    subscribe(&env, &receiver.url("/waits"), batch(100, "1s")).await;
    let sent = ids("wait", 3);
    emit(&env, leads(&sent)).await;
    let emitted = Instant::now();

    let request = eventually(Duration::from_secs(10), "the batch", || async {
        receiver.requests("/waits").into_iter().next()
    })
    .await;
    // Loose bounds: the 1 s starts when fanout matches the first event,
    // which may be a little before ingest's answer reached us (hence 0.9 s),
    // and a loaded machine adds scheduling and broker latency on top.
    let waited = request.at.saturating_duration_since(emitted);
    assert!(
        waited >= Duration::from_millis(900) && waited <= Duration::from_secs(3),
        "the batch left {waited:?} after the emit"
    );
    assert_eq!(payload_ids(&request), sent);
    // A held-back event would be waiting in memory, not in a queue: only
    // time shows it is not coming.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.requests("/waits").len(), 1, "one request in all");
}

/// A failed batch comes back whole: same webhook-id, same body bytes.
#[tokio::test]
async fn a_failed_batch_is_retried_whole_with_the_same_webhook_id() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.script("/flaky", vec![Reply::status(500)]);
    let sub = subscribe(&env, &receiver.url("/flaky"), batch(5, "2s")).await;
    let sent = ids("retry", 5);
    emit(&env, leads(&sent)).await;

    let requests = settled(&env, &receiver, "/flaky", 2 * sent.len()).await;
    assert_eq!(requests.len(), 2, "one failure, one success");
    let id = webhook_id(&requests[0]);
    assert!(id.starts_with("batch_"), "webhook-id {id}");
    assert_eq!(
        webhook_id(&requests[1]),
        id,
        "the retry keeps the webhook-id"
    );
    assert_eq!(requests[0].body, requests[1].body, "the same bytes again");
    assert_eq!(payload_ids(&requests[0]), sent);

    let attempts = history(&env, id_of(&sub), 2 * sent.len()).await;
    assert_eq!(attempts.len(), 2 * sent.len(), "two attempts per event");
    for event in &sent {
        let mut mine: Vec<&Value> = attempts
            .iter()
            .filter(|a| a["event_id"] == **event)
            .collect();
        mine.sort_by_key(|a| a["attempt"].as_u64());
        let seen: Vec<(u64, &str, u64)> = mine
            .iter()
            .map(|a| {
                let status = a["status"].as_str().unwrap_or_default();
                let code = a["response_status"].as_u64().unwrap_or(0);
                (a["attempt"].as_u64().unwrap_or(0), status, code)
            })
            .collect();
        assert_eq!(seen, [(1, "failed", 500), (2, "succeeded", 200)], "{event}");
        assert!(
            mine.iter().all(|a| a["batch_id"] == id.as_str()),
            "{mine:?}"
        );
    }
}

/// A batch failing every attempt parks one dead letter per event, and
/// replaying them delivers every event again.
#[tokio::test]
async fn a_batch_that_never_succeeds_parks_one_dead_letter_per_event_and_replay_delivers_them() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.set_default("/down", Reply::status(500));
    let sub = subscribe(&env, &receiver.url("/down"), batch(3, "2s")).await;
    let sent = ids("dead", 3);
    emit(&env, leads(&sent)).await;

    let dead = eventually(Duration::from_secs(60), "three dead letters", || async {
        let (_, page) = env.api_get("/v1/tenants/acme/dead-letters").await;
        page["data"].as_array().filter(|d| d.len() >= 3).cloned()
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(30)).await;
    let parked: Vec<String> = dead
        .iter()
        .map(|d| d["event_id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(unique(parked.clone()), sent, "one dead letter per event");
    assert_eq!(parked.len(), 3, "{dead:?}");
    for letter in &dead {
        assert_eq!(letter["subscription_id"], sub["id"], "{letter}");
        assert_eq!(letter["attempts"], 3, "{letter}");
        assert_eq!(letter["last_response_status"], 500, "{letter}");
    }
    let requests = receiver.requests("/down");
    assert_eq!(requests.len(), 3, "1 + len(retry_delays) attempts");
    assert!(
        requests.iter().all(|r| payload_ids(r) == sent),
        "whole each time"
    );
    assert!(requests
        .iter()
        .all(|r| webhook_id(r) == webhook_id(&requests[0])));

    receiver.set_default("/down", Reply::status(200));
    for letter in &dead {
        assert_eq!(env.replay("acme", letter).await, 202, "{letter}");
    }
    eventually(Duration::from_secs(30), "every event replayed", || async {
        let again = carried(&receiver.requests("/down")[3..]);
        (unique(again) == sent).then_some(())
    })
    .await;
}

/// A batch that would pass `delivery.max_batch_bytes` is sent earlier, in
/// several requests each under the limit, losing and reordering nothing.
#[tokio::test]
async fn a_body_past_max_batch_bytes_is_split() {
    let env = TestEnv::start_with(|o| o.settings.delivery.max_batch_bytes = 4096).await;
    let receiver = Receiver::start().await;
    subscribe(&env, &receiver.url("/big"), batch(100, "2s")).await;
    let sent = ids("big", 12);
    let events = sent
        .iter()
        .enumerate()
        .map(|(n, id)| lead(id, json!({"n": n, "filler": "x".repeat(1000)})))
        .collect();
    emit(&env, events).await;

    let requests = settled(&env, &receiver, "/big", sent.len()).await;
    let sizes: Vec<usize> = requests.iter().map(|r| r.body.len()).collect();
    assert!(sizes.iter().all(|&n| n <= 4096), "body sizes {sizes:?}");
    assert!(requests.len() > 1, "split: {sizes:?}");
    assert_eq!(carried(&requests), sent, "each once, in match order");
}

/// With a body template each entry is that event's rendered body: the
/// Spotio `{data, type, date}` item.
#[tokio::test]
async fn a_template_renders_each_entry_spotio_style() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let template = json!({"body": {"format": "json", "template":
        {"data": "{{ data }}", "type": "{{ type }}", "date": "{{ timestamp }}"}}});
    let sub = subscribe(
        &env,
        &receiver.url("/spotio"),
        batch_with(3, "2s", template),
    )
    .await;
    let data: Vec<Value> = (0..3)
        .map(|n| {
            json!({"id": 48213370 + n, "company": format!("Roofing {n}"),
                        "fields": [{"id": 7, "values": ["Hot"], "title": "Status"}]})
        })
        .collect();
    let sent = ids("spotio", 3);
    emit(
        &env,
        sent.iter()
            .zip(&data)
            .map(|(id, d)| lead(id, d.clone()))
            .collect(),
    )
    .await;

    eventually(Duration::from_secs(20), "the batch", || async {
        (!receiver.requests("/spotio").is_empty()).then_some(())
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(30)).await;
    let requests = receiver.requests("/spotio");
    assert_eq!(requests.len(), 1, "one batch");
    let expected: Vec<Value> = data
        .iter()
        .map(|d| json!({"data": d, "type": "lead.created", "date": OCCURRED_AT}))
        .collect();
    assert_eq!(
        payload(&requests[0]),
        expected,
        "exactly data/type/date, in order"
    );
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    let secret = sub["secret"].as_str().expect("secret");
    assert!(standard_signature_valid(&requests[0], secret));
}

/// A deliverer killed with -9 while a batch is in flight loses nothing: the
/// batch's events come back and another deliverer sends them, batched.
#[tokio::test]
async fn a_deliverer_killed_mid_batch_loses_nothing() {
    let env = TestEnv::start_with(|o| {
        o.deliverer = false;
        // The held request must still be in flight at the kill, not timed out.
        o.settings.delivery.timeout = Duration::from_secs(30);
    })
    .await;
    let mut settings = env.settings.clone();
    let addr = format!("127.0.0.1:{}", hookline_tests::binary::free_port());
    settings.deliverer.listen = addr.parse().expect("listen address");
    let holder = DelivererProcess(hookline_tests::binary::spawn_service(
        "deliverer",
        &settings,
    ));
    hookline_tests::api_client::wait_ready(&format!("http://{addr}"), Duration::from_secs(30))
        .await;
    let receiver = Receiver::start().await;
    // Slow to answer while the holder lives.
    let slow = Reply {
        delay: Duration::from_secs(10),
        ..Reply::status(200)
    };
    receiver.set_default("/held", slow);
    subscribe(&env, &receiver.url("/held"), batch(10, "1s")).await;
    let sent = ids("kill", 20);
    emit(&env, leads(&sent)).await;
    let first = eventually(Duration::from_secs(20), "a batch in flight", || async {
        receiver.requests("/held").into_iter().next()
    })
    .await;
    let held = payload_ids(&first);
    assert!(!held.is_empty(), "the request in flight is a batch");
    let (other, _) = second_deliverer(&env).await;
    receiver.set_default("/held", Reply::status(200));
    let killed = Instant::now();
    drop(holder); // SIGKILL, then reaped

    eventually(Duration::from_secs(60), "every event again", || async {
        let all = receiver.requests("/held");
        let after: Vec<Captured> = all.iter().filter(|r| r.at > killed).cloned().collect();
        let again = carried(&after);
        let held_back = held.iter().all(|id| again.contains(id));
        (held_back && unique(carried(&all)) == sent).then_some(())
    })
    .await;
    other.token.cancel();
}

/// `batch` refuses a form body or a GET, shows when read, and `"none"`
/// removes it: events then go one per request.
#[tokio::test]
async fn batch_with_form_or_get_is_refused_and_none_removes_it() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let refused = |status: u16, body: &Value, what: &str| {
        assert_eq!(status, 422, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_batch", "{what}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("batch"), "{what}: {message}");
    };
    for extra in [
        json!({"body": {"format": "form"}}),
        json!({"method": "GET"}),
    ] {
        let body = subscription(&receiver.url("/no"), batch_with(10, "1s", extra.clone()));
        let (status, error) = env.admin.post(SUBSCRIPTIONS, &body).await;
        refused(status, &error, &extra.to_string());
    }
    let form = subscribe(
        &env,
        &receiver.url("/form"),
        json!({"body": {"format": "form"}}),
    )
    .await;
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&form));
    let (status, error) = env.admin.patch(&path, &batch(10, "1s")).await;
    refused(status, &error, "batch added to a form subscription");

    let sub = subscribe(&env, &receiver.url("/batched"), batch(10, "1s")).await;
    let shown = json!({"max_events": 10, "max_wait": "1s"});
    assert_eq!(sub["batch"], shown, "{sub}");
    let path = format!("{SUBSCRIPTIONS}/{}", id_of(&sub));
    let (_, read) = env.admin.get(&path).await;
    assert_eq!(read["batch"], shown, "{read}");
    let (status, error) = env.admin.patch(&path, &json!({"method": "GET"})).await;
    refused(status, &error, "a batched subscription made a GET");

    // A test send shows the receiver the batched shape, as a batch of one.
    let tested = subscribe(&env, &receiver.url("/tested"), batch(10, "1s")).await;
    let test = format!("{SUBSCRIPTIONS}/{}/test", id_of(&tested));
    let (status, attempt) = env
        .admin
        .post(&test, &json!({"event_type": "lead.created"}))
        .await;
    assert_eq!(status, 200, "{attempt}");
    let sample = receiver.requests("/tested");
    assert_eq!(sample.len(), 1, "the test send arrived before its answer");
    let entries = payload(&sample[0]);
    assert_eq!(entries.len(), 1, "{:?}", sample[0].json());
    assert_eq!(entries[0]["test"], true, "{entries:?}");
    assert!(webhook_id(&sample[0]).starts_with("batch_"));
    let secret = tested["secret"].as_str().expect("secret");
    assert!(standard_signature_valid(&sample[0], secret));
    emit(&env, leads(&ids("before", 2))).await;
    let batched = settled(&env, &receiver, "/batched", 2).await;
    assert_eq!(batched.len(), 1, "batched before the removal");

    let (status, patched) = env.admin.patch(&path, &json!({"batch": "none"})).await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["batch"], Value::Null, "{patched}");
    let (_, read) = env.admin.get(&path).await;
    assert_eq!(read["batch"], Value::Null, "{read}");
    // A change is in effect within a second: probe until an event arrives
    // alone, failing after 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in 0.. {
        let probe = format!("evt_probe_{n}");
        emit(&env, vec![lead(&probe, json!({}))]).await;
        let request = eventually(Duration::from_secs(10), "the probe", || async {
            receiver
                .requests("/batched")
                .into_iter()
                .find(|r| r.json()["id"] == probe.as_str() || payload_ids(r).contains(&probe))
        })
        .await;
        if request.json()["id"] == probe.as_str() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still batched 10 s after the removal"
        );
    }
    let before = receiver.requests("/batched").len();
    let sent = ids("after", 3);
    emit(&env, leads(&sent)).await;
    eventually(Duration::from_secs(20), "three single requests", || async {
        (receiver.requests("/batched").len() >= before + 3).then_some(())
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(30)).await;
    let singles = receiver.requests("/batched").split_off(before);
    assert_eq!(singles.len(), 3, "one request per event");
    assert!(singles.iter().all(|r| r.json().get("payload").is_none()));
    assert!(singles.iter().all(|r| webhook_id(r).starts_with("msg_")));
    let got: Vec<String> = singles
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(unique(got), sent);
}
