//! Signing as a receiver sees it: every scheme checked by code written here
//! from the scheme's plain description (not by `hookline-signature`), secret
//! rotation, the api's refusals, and `hookline verify` on a real delivery.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use hookline_tests::binary::hookline_binary;
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, Captured, Receiver, TestEnv};
use serde_json::{json, Value};
use sha2::Sha256;

/// An hmac secret: any string of at least 16 characters, used as its bytes.
const HMAC_SECRET: &str = "acme-shared-secret-0123456789";
/// A Standard Webhooks secret no subscription uses.
const STRANGER: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// HMAC-SHA256 of the concatenated `parts`, keyed by `key`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// `base` with the fields of `extra` set on it.
fn merged(mut base: Value, extra: &Value) -> Value {
    for (key, value) in extra.as_object().expect("an object") {
        base[key] = value.clone();
    }
    base
}

/// Creates a subscription to `lead.created` with `extra` fields merged in.
async fn subscribe(env: &TestEnv, url: &str, extra: Value) -> Value {
    let body = merged(
        json!({"name": "signed", "url": url, "event_types": ["lead.created"]}),
        &extra,
    );
    let (status, created) = env.api_post("/v1/tenants/acme/subscriptions", body).await;
    assert_eq!(status, 201, "create subscription: {created}");
    // Deliver only once fanout matches on it, so no event goes unmatched.
    let (_, list) = env.api_get("/v1/tenants/acme/subscriptions").await;
    let count = list["data"].as_array().map_or(0, Vec::len) as f64;
    eventually(
        Duration::from_secs(10),
        "the subscription indexed",
        || async { (indexed(env).await >= Some(count)).then_some(()) },
    )
    .await;
    created
}

/// How many subscriptions fanout's index holds, from its gauge.
async fn indexed(env: &TestEnv) -> Option<f64> {
    let text = env.metrics(&env.fanout).await;
    let lines = text.lines().map(|line| Ok(line.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).ok()?;
    scrape.samples.iter().find_map(|s| match s.value {
        prometheus_parse::Value::Gauge(v) if s.metric == "hookline_fanout_subscriptions_loaded" => {
            Some(v)
        }
        _ => None,
    })
}

/// Posts one `lead.created` event and returns its delivery to `path`.
async fn deliver(env: &TestEnv, receiver: &Receiver, path: &str) -> Captured {
    let (status, accepted) = env
        .post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().expect("event id").to_string();
    eventually(Duration::from_secs(15), "the delivery", || async {
        receiver
            .requests(path)
            .into_iter()
            .find(|r| r.json()["id"] == id.as_str())
    })
    .await
}

/// Every scheme sends `webhook-id` and a recent `webhook-timestamp` in
/// Unix seconds; returns the timestamp.
fn assert_webhook_headers(request: &Captured) -> i64 {
    let id = request.header("webhook-id").expect("webhook-id header");
    assert!(!id.is_empty(), "webhook-id is empty");
    let seconds: i64 = request
        .header("webhook-timestamp")
        .expect("webhook-timestamp header")
        .parse()
        .expect("webhook-timestamp is an integer");
    let now = now_millis() / 1000;
    assert!(
        (now - seconds).abs() <= 60,
        "webhook-timestamp {seconds} is not Unix seconds near {now}"
    );
    seconds
}

/// The `webhook-signature` entries, split on spaces.
fn standard_signatures(request: &Captured) -> Vec<String> {
    request
        .header("webhook-signature")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn a_hex_hmac_of_the_body_arrives_in_x_signature_keyed_by_the_secret_bytes() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    subscribe(
        &env,
        &receiver.url("/hex"),
        json!({"signature": {"scheme": "hmac", "header": "X-Signature", "encoding": "hex"},
               "secret": HMAC_SECRET}),
    )
    .await;
    let request = deliver(&env, &receiver, "/hex").await;

    assert_webhook_headers(&request);
    let signature = request.header("x-signature").expect("X-Signature header");
    let expected = hex::encode(hmac_sha256(HMAC_SECRET.as_bytes(), &[&request.body]));
    assert_eq!(signature, expected, "lowercase hex HMAC-SHA256 of the body");
    let wrong = hex::encode(hmac_sha256(b"another-secret-0123456789", &[&request.body]));
    assert_ne!(signature, wrong);
    assert!(
        request.header("webhook-signature").is_none(),
        "the hmac scheme sends its own header instead of webhook-signature"
    );
}

#[tokio::test]
async fn a_prefixed_hmac_arrives_as_sha256_equals_hex_in_x_webhook_signature() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    subscribe(
        &env,
        &receiver.url("/prefixed"),
        json!({"signature": {"scheme": "hmac", "header": "X-Webhook-Signature", "prefix": "sha256="},
               "secret": HMAC_SECRET}),
    )
    .await;
    let request = deliver(&env, &receiver, "/prefixed").await;

    assert_webhook_headers(&request);
    let signature = request
        .header("x-webhook-signature")
        .expect("X-Webhook-Signature header");
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(HMAC_SECRET.as_bytes(), &[&request.body]))
    );
    assert_eq!(signature, expected);
}

#[tokio::test]
async fn a_timestamp_dot_body_hmac_carries_a_recent_millisecond_timestamp_header() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    subscribe(
        &env,
        &receiver.url("/acme"),
        json!({"signature": {"scheme": "hmac", "header": "X-Acme-Signature",
                             "signed": "timestamp.body", "timestamp_header": "X-Acme-Timestamp",
                             "timestamp_unit": "ms"},
               "secret": HMAC_SECRET}),
    )
    .await;
    let request = deliver(&env, &receiver, "/acme").await;

    let seconds = assert_webhook_headers(&request);
    let timestamp = request
        .header("x-acme-timestamp")
        .expect("X-Acme-Timestamp header");
    let millis: i64 = timestamp.parse().expect("an integer timestamp");
    assert!(
        (now_millis() - millis).abs() < 60_000,
        "X-Acme-Timestamp {millis} is not Unix milliseconds of the last minute"
    );
    assert!(
        (millis / 1000 - seconds).abs() <= 1,
        "X-Acme-Timestamp {millis} ms and webhook-timestamp {seconds} s name the same attempt"
    );
    let expected = hex::encode(hmac_sha256(
        HMAC_SECRET.as_bytes(),
        &[timestamp.as_bytes(), b".", &request.body],
    ));
    assert_eq!(
        request.header("x-acme-signature"),
        Some(expected.as_str()),
        "hex HMAC of \"{{timestamp}}.{{body}}\""
    );
    let body_only = hex::encode(hmac_sha256(HMAC_SECRET.as_bytes(), &[&request.body]));
    assert_ne!(expected, body_only);
}

#[tokio::test]
async fn a_base64_hmac_uses_the_standard_alphabet_with_padding() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    subscribe(
        &env,
        &receiver.url("/b64"),
        json!({"signature": {"scheme": "hmac", "header": "X-Signature", "encoding": "base64"},
               "secret": HMAC_SECRET}),
    )
    .await;
    let request = deliver(&env, &receiver, "/b64").await;

    assert_webhook_headers(&request);
    let signature = request.header("x-signature").expect("X-Signature header");
    let expected = STANDARD.encode(hmac_sha256(HMAC_SECRET.as_bytes(), &[&request.body]));
    assert_eq!(signature, expected);
    assert!(
        signature.ends_with('='),
        "32 bytes in base64 end with one padding character"
    );
}

#[tokio::test]
async fn the_standard_scheme_sends_webhook_id_and_timestamp_and_one_signature() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&env, &receiver.url("/std"), json!({})).await;
    let secret = sub["secret"].as_str().expect("secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let request = deliver(&env, &receiver, "/std").await;

    assert_webhook_headers(&request);
    assert_eq!(standard_signatures(&request).len(), 1);
    assert!(standard_signature_valid(&request, secret));
    assert!(!standard_signature_valid(&request, STRANGER));
}

#[tokio::test]
async fn rotating_a_standard_secret_signs_with_both_the_old_and_the_new_secret() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&env, &receiver.url("/rotate"), json!({})).await;
    let id = sub["id"].as_str().expect("id");
    let old = sub["secret"].as_str().expect("secret").to_string();
    let before = deliver(&env, &receiver, "/rotate").await;
    assert_eq!(standard_signatures(&before).len(), 1);
    assert!(standard_signature_valid(&before, &old));

    let (status, rotated) = env
        .api_post(
            &format!("/v1/tenants/acme/subscriptions/{id}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().expect("new secret").to_string();
    assert_ne!(new, old);

    // A change is in effect within a second; deliver until one shows it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let request = deliver(&env, &receiver, "/rotate").await;
        if standard_signatures(&request).len() > 1 {
            break request;
        }
        assert!(
            Instant::now() < deadline,
            "no delivery signed with both secrets 10 s after the rotation"
        );
    };
    let signatures = standard_signatures(&after);
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    assert!(
        standard_signature_valid(&after, &new),
        "the new secret verifies"
    );
    assert!(
        standard_signature_valid(&after, &old),
        "the old secret still verifies"
    );
    assert!(!standard_signature_valid(&after, STRANGER));
}

#[tokio::test]
async fn rotating_an_hmac_secret_signs_with_the_new_secret_only() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = subscribe(
        &env,
        &receiver.url("/hmac-rotate"),
        json!({"signature": {"scheme": "hmac", "header": "X-Signature"}, "secret": HMAC_SECRET}),
    )
    .await;
    let id = sub["id"].as_str().expect("id");
    let signed_by = |request: &Captured, secret: &str| {
        hex::encode(hmac_sha256(secret.as_bytes(), &[&request.body]))
    };
    let before = deliver(&env, &receiver, "/hmac-rotate").await;
    assert_eq!(
        before.header("x-signature"),
        Some(signed_by(&before, HMAC_SECRET).as_str())
    );

    let (status, rotated) = env
        .api_post(
            &format!("/v1/tenants/acme/subscriptions/{id}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().expect("new secret");
    assert_ne!(new_secret, HMAC_SECRET);

    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let request = deliver(&env, &receiver, "/hmac-rotate").await;
        if request.header("x-signature") != Some(signed_by(&request, HMAC_SECRET).as_str()) {
            break request;
        }
        assert!(
            Instant::now() < deadline,
            "still signed with the old secret 10 s after the rotation"
        );
    };
    assert_eq!(
        after.header("x-signature"),
        Some(signed_by(&after, new_secret).as_str()),
        "exactly one signature, by the new secret"
    );
}

#[tokio::test]
async fn invalid_signature_objects_and_secrets_are_422_naming_the_field() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let url = "http://127.0.0.1:9/hook";
    for (extra, field) in [
        (
            json!({"signature": {"scheme": "hmac", "header": "X-Signature", "signed": "timestamp.body"}}),
            "signature.timestamp_header",
        ),
        (
            json!({"signature": {"scheme": "hmac", "header": "webhook-signature"}}),
            "signature.header",
        ),
        (
            json!({"signature": {"scheme": "hmac", "header": "Content-Type"}}),
            "signature.header",
        ),
        (
            json!({"signature": {"scheme": "hmac", "header": "X Signature"}}),
            "signature.header",
        ),
        (
            json!({"signature": {"scheme": "hmac", "header": "X-Signature",
                                 "timestamp_header": "webhook-timestamp"}}),
            "signature.timestamp_header",
        ),
        (
            json!({"signature": {"scheme": "hmac", "header": "X-Signature",
                                 "prefix": "p".repeat(33)}}),
            "signature.prefix",
        ),
        (json!({"signature": {"scheme": "hmac"}}), "header"),
        (
            json!({"signature": {"scheme": "hmac", "header": "X-Signature"},
                   "secret": "fifteen-chars!!"}),
            "secret",
        ),
        (
            json!({"signature": {"scheme": "standard"}, "secret": HMAC_SECRET}),
            "secret",
        ),
    ] {
        let (status, body) = env
            .api_post(
                "/v1/tenants/acme/subscriptions",
                merged(json!({"url": url, "event_types": ["lead.created"]}), &extra),
            )
            .await;
        assert_eq!(status, 422, "{extra}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(field),
            "the error for {extra} names `{field}`: {message}"
        );
    }
}

/// Runs `hookline verify` on a saved request; returns exit code and stdout.
async fn verify(secret: &str, scheme: Option<&Value>, request: &Captured) -> (i32, String) {
    let body = std::env::temp_dir().join(format!("hookline-verify-{}.json", ulid::Ulid::new()));
    std::fs::write(&body, &request.body).expect("write the body file");
    let mut command = tokio::process::Command::new(hookline_binary());
    command.arg("verify").arg("--secret").arg(secret);
    if let Some(scheme) = scheme {
        command.arg("--scheme").arg(scheme.to_string());
    }
    let mut names: Vec<&String> = request.headers.keys().collect();
    names.sort();
    for name in names {
        command
            .arg("-H")
            .arg(format!("{name}: {}", request.headers[name]));
    }
    let output = command
        .arg("--body")
        .arg(&body)
        .output()
        .await
        .expect("run hookline verify");
    let _ = std::fs::remove_file(&body);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn hookline_verify_accepts_a_captured_delivery_and_rejects_a_wrong_secret() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let standard = subscribe(&env, &receiver.url("/verify-std"), json!({})).await;
    let scheme = json!({"scheme": "hmac", "header": "X-Acme-Signature", "signed": "timestamp.body",
                        "timestamp_header": "X-Acme-Timestamp", "timestamp_unit": "ms"});
    subscribe(
        &env,
        &receiver.url("/verify-hmac"),
        json!({"signature": scheme, "secret": HMAC_SECRET}),
    )
    .await;
    let standard_request = deliver(&env, &receiver, "/verify-std").await;
    let hmac_request = eventually(Duration::from_secs(15), "the hmac delivery", || async {
        receiver.requests("/verify-hmac").into_iter().next()
    })
    .await;

    let secret = standard["secret"].as_str().expect("secret");
    let (code, out) = verify(secret, None, &standard_request).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("valid"), "{out}");
    let (code, out) = verify(STRANGER, None, &standard_request).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("invalid"), "{out}");

    let (code, out) = verify(HMAC_SECRET, Some(&scheme), &hmac_request).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("valid"), "{out}");
    let (code, out) = verify("a-wrong-secret-0123456789", Some(&scheme), &hmac_request).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("invalid"), "{out}");
}
