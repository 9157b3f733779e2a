//! Inbound webhooks: a source URL turns a third party's POST into an event
//! of the source's tenant and type, which fanout delivers like any other.
//! Signatures are checked with the seeds' styles; limits, deletes and
//! tenant isolation hold.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use hookline_tests::faults::probe::metric_sum;
use hookline_tests::receiver::Receiver;
use hookline_tests::{eventually, TestEnv};
use serde_json::{json, Value};
use sha2::Sha256;

/// Creates a source of `tenant` as admin; any answer but 201 fails.
async fn create_source(env: &TestEnv, tenant: &str, event_type: &str, verify: Value) -> Value {
    let (status, source) = env
        .admin
        .post(
            &format!("/v1/tenants/{tenant}/sources"),
            &json!({"name": "Website form", "event_type": event_type, "verify": verify}),
        )
        .await;
    assert_eq!(status, 201, "create source: {source}");
    source
}

/// The source URL's path on the test's ingest (the api builds the URL from
/// `ingest.public_url`, which tests do not know before ingest starts).
fn inbound_url(env: &TestEnv, source: &Value) -> String {
    let url = source["url"].as_str().expect("url in the create answer");
    let path = &url[url.find("/v1/in/").expect("inbound path")..];
    format!("{}{path}", env.ingest)
}

/// Waits until ingest knows the source (a probe that publishes nothing:
/// `415`, or `401` for a verified source).
async fn wait_known(env: &TestEnv, url: &str) {
    eventually(
        Duration::from_secs(5),
        "ingest to load the source",
        || async {
            let status = probe(env, url).await;
            (status != 404 && status != 503).then_some(())
        },
    )
    .await;
}

async fn probe(env: &TestEnv, url: &str) -> u16 {
    env.http
        .post(url)
        .header("content-type", "text/plain")
        .body("probe")
        .send()
        .await
        .expect("ingest")
        .status()
        .as_u16()
}

async fn post(
    env: &TestEnv,
    url: &str,
    content_type: &str,
    body: &str,
    headers: &[(&str, String)],
) -> (u16, Value) {
    let mut request = env
        .http
        .post(url)
        .header("content-type", content_type)
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("ingest");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn hmac_hex(secret: &[u8], content: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(content);
    hex::encode(mac.finalize().into_bytes())
}

/// Standard Webhooks headers for `body`, signed at `unix_seconds`.
fn standard_headers(
    secret: &str,
    id: &str,
    unix_seconds: i64,
    body: &str,
) -> Vec<(&'static str, String)> {
    let key = STANDARD
        .decode(secret.trim_start_matches("whsec_"))
        .expect("whsec_ base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{unix_seconds}.{body}").as_bytes());
    let signature = STANDARD.encode(mac.finalize().into_bytes());
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", unix_seconds.to_string()),
        ("webhook-signature", format!("v1,{signature}")),
    ]
}

#[tokio::test]
async fn json_and_form_posts_to_a_source_reach_the_tenants_subscription() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/hook"), &["form.submitted"])
        .await;
    let source = create_source(&env, "acme", "form.submitted", Value::Null).await;
    assert!(
        source["id"].as_str().unwrap().starts_with("src_"),
        "{source}"
    );
    assert_eq!(source["verify"], Value::Null);
    let url = inbound_url(&env, &source);
    wait_known(&env, &url).await;

    let (status, json_answer) = post(
        &env,
        &url,
        "application/json",
        r#"{"email": "ana@example.com", "tags": ["vip"]}"#,
        &[("webhook-id", "msg_form_1".into())],
    )
    .await;
    assert_eq!(
        (status, json_answer["id"].clone()),
        (202, json!("msg_form_1"))
    );
    let (status, form_answer) = post(
        &env,
        &url,
        "application/x-www-form-urlencoded",
        "name=Ana+Lima&email=ana%40example.com",
        &[],
    )
    .await;
    assert_eq!(status, 202, "{form_answer}");
    let form_id = form_answer["id"]
        .as_str()
        .expect("generated id")
        .to_string();
    // A sender's retry (same webhook-id) is the same event.
    let (status, again) = post(
        &env,
        &url,
        "application/json",
        r#"{"email": "ana@example.com", "tags": ["vip"]}"#,
        &[("webhook-id", "msg_form_1".into())],
    )
    .await;
    assert_eq!((status, again["id"].clone()), (202, json!("msg_form_1")));

    let arrived = eventually(Duration::from_secs(15), "three deliveries", || async {
        let requests = receiver.requests("/hook");
        (requests.len() >= 3).then_some(requests)
    })
    .await;
    let bodies: Vec<Value> = arrived.iter().map(|r| r.json()).collect();
    for body in &bodies {
        assert_eq!(body["type"], "form.submitted");
        assert_eq!(body["tenant"], "acme");
    }
    let by_id = |id: &str| {
        bodies
            .iter()
            .filter(|b| b["id"] == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    let json_events = by_id("msg_form_1");
    assert_eq!(json_events.len(), 2, "{bodies:?}");
    assert_eq!(
        json_events[0]["data"],
        json!({"email": "ana@example.com", "tags": ["vip"]})
    );
    let form_events = by_id(&form_id);
    assert_eq!(
        form_events[0]["data"],
        json!({"name": "Ana Lima", "email": "ana@example.com"})
    );
    // Nothing of the sender's request but the body and its id was copied.
    let webhook_ids: Vec<_> = arrived
        .iter()
        .filter(|r| r.json()["id"] == "msg_form_1")
        .map(|r| r.header("webhook-id").unwrap_or_default().to_string())
        .collect();
    assert_eq!(webhook_ids[0], webhook_ids[1], "one event, one webhook-id");
    env.stop().await;
}

#[tokio::test]
async fn a_verified_source_refuses_forged_stale_and_unsigned_requests_and_publishes_nothing() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe(
        "acme",
        &receiver.url("/hook"),
        &["lead.received", "order.paid"],
    )
    .await;
    // The seeds' second style: `X-Webhook-Signature: sha256=<hex of the body>`.
    let secret = "a-shared-secret-of-the-crm";
    let hmac_source = create_source(
        &env,
        "acme",
        "lead.received",
        json!({"scheme": "hmac", "header": "X-Webhook-Signature", "encoding": "hex",
               "prefix": "sha256=", "secret": secret}),
    )
    .await;
    assert_eq!(hmac_source["verify"]["secret"], secret, "shown at create");
    let standard_source =
        create_source(&env, "acme", "order.paid", json!({"scheme": "standard"})).await;
    let generated = standard_source["verify"]["secret"]
        .as_str()
        .expect("a generated secret")
        .to_string();
    assert!(generated.starts_with("whsec_"));
    let (hmac_url, standard_url) = (
        inbound_url(&env, &hmac_source),
        inbound_url(&env, &standard_source),
    );
    wait_known(&env, &hmac_url).await;
    wait_known(&env, &standard_url).await;
    let before = env.metrics(&env.ingest).await;

    let body = r#"{"lead": {"email": "ana@example.com"}}"#;
    let good = format!("sha256={}", hmac_hex(secret.as_bytes(), body.as_bytes()));
    let forged = format!(
        "sha256={}",
        hmac_hex(b"not-the-secret-at-all", body.as_bytes())
    );
    let (status, refused) = post(
        &env,
        &hmac_url,
        "application/json",
        body,
        &[("x-webhook-signature", forged)],
    )
    .await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (401, json!("signature_mismatch"))
    );
    let (status, refused) = post(&env, &hmac_url, "application/json", body, &[]).await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (401, json!("signature_missing"))
    );
    let (status, accepted_hmac) = post(
        &env,
        &hmac_url,
        "application/json",
        body,
        &[("x-webhook-signature", good)],
    )
    .await;
    assert_eq!(status, 202, "{accepted_hmac}");

    let now = chrono::Utc::now().timestamp();
    let order = r#"{"order": 17}"#;
    let stale = standard_headers(&generated, "msg_stale", now - 3600, order);
    let (status, refused) = post(&env, &standard_url, "application/json", order, &stale).await;
    assert_eq!(
        (status, refused["error"]["code"].clone()),
        (401, json!("signature_stale"))
    );
    let fresh = standard_headers(&generated, "msg_fresh", now, order);
    let (status, accepted) = post(&env, &standard_url, "application/json", order, &fresh).await;
    assert_eq!((status, accepted["id"].clone()), (202, json!("msg_fresh")));

    let arrived = eventually(Duration::from_secs(15), "two deliveries", || async {
        let requests = receiver.requests("/hook");
        (requests.len() >= 2).then_some(requests)
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(10)).await;
    assert_eq!(
        receiver.requests("/hook").len(),
        2,
        "refused requests published nothing"
    );
    let types: Vec<Value> = arrived.iter().map(|r| r.json()["type"].clone()).collect();
    assert!(
        types.contains(&json!("lead.received")) && types.contains(&json!("order.paid")),
        "{types:?}"
    );

    let after = env.metrics(&env.ingest).await;
    let delta = |outcome: &str| {
        let name = "hookline_ingest_source_requests_total";
        metric_sum(&after, name, &[("outcome", outcome)])
            - metric_sum(&before, name, &[("outcome", outcome)])
    };
    assert_eq!((delta("unverified"), delta("accepted")), (3.0, 2.0));
    assert!(!after.contains("src_"), "no source label in the metrics");

    // The tenant reads what its source received, newest first.
    let hmac_id = hmac_source["id"].as_str().expect("id");
    let path = format!("/v1/tenants/acme/sources/{hmac_id}/requests?limit=3");
    let page = eventually(Duration::from_secs(10), "the requests recorded", || async {
        let (status, page) = env.admin.get(&path).await;
        assert_eq!(status, 200, "{page}");
        (page["data"][0]["status"] == 202).then_some(page)
    })
    .await;
    let seen: Vec<(Value, Value)> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| (r["status"].clone(), r["reason"].clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (json!(202), Value::Null),
            (json!(401), json!("signature_missing")),
            (json!(401), json!("signature_mismatch")),
        ],
        "{page}"
    );
    assert_eq!(page["data"][0]["event_id"], accepted_hmac["id"]);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("the probe is on page two");
    let (_, rest) = env.admin.get(&format!("{path}&cursor={cursor}")).await;
    assert_eq!(
        rest["data"][0]["reason"], "signature_missing",
        "the probe: {rest}"
    );
    let (_, shown) = env
        .admin
        .get(&format!("/v1/tenants/acme/sources/{hmac_id}"))
        .await;
    assert_eq!(shown["last_status"], 202, "{shown}");
    assert!(shown["last_request_at"].is_string(), "{shown}");
    env.stop().await;
}

#[tokio::test]
async fn bodies_types_rates_deletes_and_tenants_are_held_to_their_limits() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
        o.settings.ingest.source_rate_limit = 3;
    })
    .await;
    let source = create_source(&env, "acme", "form.submitted", Value::Null).await;
    let url = inbound_url(&env, &source);
    wait_known(&env, &url).await;
    // The probe took one request of the bucket of 3; after a second it is full.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let big = format!("{{\"x\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (status, body) = post(&env, &url, "application/json", &big, &[]).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (413, json!("too_large"))
    );
    let (status, body) = post(&env, &url, "text/plain", "hello", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (415, json!("unsupported_media_type"))
    );
    let (status, body) = post(&env, &url, "application/json", "[1, 2]", &[]).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (400, json!("invalid_data"))
    );
    let response = env
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("ingest");
    assert_eq!(
        response.status().as_u16(),
        429,
        "the fourth request in a second"
    );
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let (status, body) = post(
        &env,
        &format!("{}/v1/in/hlin_nobody", env.ingest),
        "application/json",
        "{}",
        &[],
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (404, json!("unknown_source"))
    );

    // Tenant B sees none of A's sources.
    let (status, key) = env
        .admin
        .post("/v1/tenants/globex/api-keys", &json!({}))
        .await;
    assert_eq!(status, 201, "{key}");
    let globex = hookline_tests::api_client::ApiClient {
        admin_token: key["key"].as_str().unwrap().to_string(),
        ..env.admin.clone()
    };
    let id = source["id"].as_str().unwrap();
    assert_eq!(
        globex
            .get(&format!("/v1/tenants/acme/sources/{id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        globex
            .get(&format!("/v1/tenants/globex/sources/{id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        globex
            .delete(&format!("/v1/tenants/globex/sources/{id}"))
            .await
            .0,
        404
    );
    assert_eq!(
        globex.get("/v1/sources").await.0,
        403,
        "the feed is the admin's"
    );
    let (status, listed) = globex.get("/v1/tenants/globex/sources").await;
    assert_eq!((status, listed["data"].clone()), (200, json!([])));
    let (_, listed) = env.admin.get("/v1/tenants/acme/sources").await;
    assert_eq!(listed["data"][0]["id"], id);
    assert_eq!(
        listed["data"][0]["url"],
        Value::Null,
        "the URL is shown once"
    );
    assert!(listed["data"][0]["url_hint"]
        .as_str()
        .unwrap()
        .ends_with('…'));

    // A delete answers 404 within a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = env
        .admin
        .delete(&format!("/v1/tenants/acme/sources/{id}"))
        .await;
    assert_eq!(status, 204);
    let deleted_at = Instant::now();
    eventually(
        Duration::from_secs(3),
        "the deleted source to be unknown",
        || async { (probe(&env, &url).await == 404).then_some(()) },
    )
    .await;
    let took = deleted_at.elapsed();
    assert!(took < Duration::from_secs(1), "404 after {took:?}");
    env.stop().await;
}
