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

/// Creates a subscription to `lead.created` with `extra` fields merged in
/// (`api_post` returns once fanout has loaded it, so no event goes unmatched).
async fn subscribe(env: &TestEnv, url: &str, extra: Value) -> Value {
    let body = merged(
        json!({"name": "signed", "url": url, "event_types": ["lead.created"]}),
        &extra,
    );
    let (status, created) = env.api_post("/v1/tenants/acme/subscriptions", body).await;
    assert_eq!(status, 201, "create subscription: {created}");
    created
}

/// A fresh env and receiver with one subscription at `path` (`extra`
/// merged in); returns them and the subscription.
async fn subscribed(path: &str, extra: Value) -> (TestEnv, Receiver, Value) {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let sub = subscribe(&env, &receiver.url(path), extra).await;
    (env, receiver, sub)
}

/// The first delivery to a fresh subscription at `path` signed by the hmac
/// `scheme` with [`HMAC_SECRET`].
async fn hmac_delivery(path: &str, scheme: Value) -> Captured {
    let extra = json!({"signature": scheme, "secret": HMAC_SECRET});
    let (env, receiver, _) = subscribed(path, extra).await;
    deliver(&env, &receiver, path).await
}

/// Lowercase hex HMAC-SHA256 of the request body keyed by `secret`'s bytes.
fn hex_hmac(secret: &str, request: &Captured) -> String {
    hex::encode(hmac_sha256(secret.as_bytes(), &[&request.body]))
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

/// Rotates the secret of subscription `id`; returns the new secret.
async fn rotate(env: &TestEnv, id: &str) -> String {
    let (status, rotated) = env
        .api_post(
            &format!("/v1/tenants/acme/subscriptions/{id}/rotate-secret"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    rotated["secret"].as_str().expect("new secret").to_string()
}

/// A change is in effect within a second: delivers to `path` until a
/// delivery `shows` the rotation, failing with `still` after 10 s.
async fn deliver_until_rotated(
    env: &TestEnv,
    receiver: &Receiver,
    path: &str,
    still: &str,
    shows: impl Fn(&Captured) -> bool,
) -> Captured {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = deliver(env, receiver, path).await;
        if shows(&request) {
            return request;
        }
        assert!(Instant::now() < deadline, "{still} 10 s after the rotation");
    }
}

#[tokio::test]
async fn a_hex_hmac_of_the_body_arrives_in_x_signature_keyed_by_the_secret_bytes() {
    let request = hmac_delivery(
        "/hex",
        json!({"scheme": "hmac", "header": "X-Signature", "encoding": "hex"}),
    )
    .await;

    assert_webhook_headers(&request);
    let signature = request.header("x-signature").expect("X-Signature header");
    let expected = hex_hmac(HMAC_SECRET, &request);
    assert_eq!(signature, expected, "lowercase hex HMAC-SHA256 of the body");
    assert_ne!(signature, hex_hmac("another-secret-0123456789", &request));
    assert!(
        request.header("webhook-signature").is_none(),
        "the hmac scheme sends its own header instead of webhook-signature"
    );
}

#[tokio::test]
async fn a_prefixed_hmac_arrives_as_sha256_equals_hex_in_x_webhook_signature() {
    let request = hmac_delivery(
        "/prefixed",
        json!({"scheme": "hmac", "header": "X-Webhook-Signature", "prefix": "sha256="}),
    )
    .await;

    assert_webhook_headers(&request);
    let signature = request
        .header("x-webhook-signature")
        .expect("X-Webhook-Signature header");
    let expected = format!("sha256={}", hex_hmac(HMAC_SECRET, &request));
    assert_eq!(signature, expected);
}

#[tokio::test]
async fn a_timestamp_dot_body_hmac_carries_a_recent_millisecond_timestamp_header() {
    let request = hmac_delivery(
        "/acme",
        json!({"scheme": "hmac", "header": "X-Acme-Signature", "signed": "timestamp.body",
               "timestamp_header": "X-Acme-Timestamp", "timestamp_unit": "ms"}),
    )
    .await;

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
    assert_ne!(expected, hex_hmac(HMAC_SECRET, &request));
}

#[tokio::test]
async fn a_base64_hmac_uses_the_standard_alphabet_with_padding() {
    let request = hmac_delivery(
        "/b64",
        json!({"scheme": "hmac", "header": "X-Signature", "encoding": "base64"}),
    )
    .await;

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
    let (env, receiver, sub) = subscribed("/std", json!({})).await;
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
    let (env, receiver, sub) = subscribed("/rotate", json!({})).await;
    let old = sub["secret"].as_str().expect("secret");
    let before = deliver(&env, &receiver, "/rotate").await;
    assert_eq!(standard_signatures(&before).len(), 1);
    assert!(standard_signature_valid(&before, old));

    let new = rotate(&env, sub["id"].as_str().expect("id")).await;
    assert_ne!(new, old);
    let after = deliver_until_rotated(
        &env,
        &receiver,
        "/rotate",
        "no delivery signed with both secrets",
        |request| standard_signatures(request).len() > 1,
    )
    .await;
    let signatures = standard_signatures(&after);
    assert_eq!(signatures.len(), 2, "{signatures:?}");
    assert!(signatures.iter().all(|s| s.starts_with("v1,")));
    assert!(
        standard_signature_valid(&after, &new),
        "the new secret verifies"
    );
    assert!(
        standard_signature_valid(&after, old),
        "the old secret still verifies"
    );
    assert!(!standard_signature_valid(&after, STRANGER));
}

#[tokio::test]
async fn rotating_an_hmac_secret_signs_with_the_new_secret_only() {
    let (env, receiver, sub) = subscribed(
        "/hmac-rotate",
        json!({"signature": {"scheme": "hmac", "header": "X-Signature"}, "secret": HMAC_SECRET}),
    )
    .await;
    let signed_by = |request: &Captured, secret: &str| {
        request.header("x-signature") == Some(hex_hmac(secret, request).as_str())
    };
    let before = deliver(&env, &receiver, "/hmac-rotate").await;
    assert!(
        signed_by(&before, HMAC_SECRET),
        "{:?}",
        before.header("x-signature")
    );

    let new_secret = rotate(&env, sub["id"].as_str().expect("id")).await;
    assert_ne!(new_secret, HMAC_SECRET);
    let after = deliver_until_rotated(
        &env,
        &receiver,
        "/hmac-rotate",
        "still signed with the old secret",
        |request| !signed_by(request, HMAC_SECRET),
    )
    .await;
    assert_eq!(
        after.header("x-signature"),
        Some(hex_hmac(&new_secret, &after).as_str()),
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

/// Runs `hookline verify` on a saved request and checks its verdict: exit 0
/// and `valid…` when `valid`, else exit 1 and `invalid…`.
async fn verify(secret: &str, scheme: Option<&Value>, request: &Captured, valid: bool) {
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
    let (code, out) = (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    );
    let (expected_code, verdict) = if valid { (0, "valid") } else { (1, "invalid") };
    assert_eq!(code, expected_code, "{out}");
    assert!(out.starts_with(verdict), "{out}");
}

#[tokio::test]
async fn hookline_verify_accepts_a_captured_delivery_and_rejects_a_wrong_secret() {
    let (env, receiver, standard) = subscribed("/verify-std", json!({})).await;
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
    verify(secret, None, &standard_request, true).await;
    verify(STRANGER, None, &standard_request, false).await;
    verify(HMAC_SECRET, Some(&scheme), &hmac_request, true).await;
    let wrong = "a-wrong-secret-0123456789";
    verify(wrong, Some(&scheme), &hmac_request, false).await;
}
