//! Security rules a caller can test from outside: the SSRF guard in the
//! deliverer and the test send, internal URLs refused at the api, static
//! headers that cannot inject CR/LF or override what Hookline sets, and
//! limits that are configurable and answer a clear 4xx.

use std::time::Duration;

use hookline_runtime::Shutdown;
use hookline_tests::api_client::wait_ready;
use hookline_tests::faults::env::wait_subscriptions_loaded;
use hookline_tests::faults::services::{spawn_in_process, Service, ServiceProcess};
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, ApiClient, Receiver, TestEnv};
use serde_json::{json, Value};

/// The port of a receiver's `http://127.0.0.1:PORT`.
fn port(receiver: &Receiver) -> u16 {
    receiver
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port")
}

#[tokio::test]
async fn the_deliverer_sends_nothing_to_loopback_when_allowed_networks_is_empty() {
    // The api lets loopback through so the subscriptions can exist; the
    // deliverer, with the default empty allowed_networks, must not.
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let mut guarded = env.settings.clone();
    guarded.delivery.allowed_networks = Vec::new();
    let shutdown = Shutdown::new();
    let deliverer = spawn_in_process(Service::Deliverer, &guarded, &shutdown).await;
    wait_ready(&deliverer, Duration::from_secs(30)).await;

    let receiver = Receiver::start().await;
    let port = port(&receiver);
    let urls = [
        receiver.url("/literal"),
        format!("http://localhost:{port}/name"),
        format!("http://127.1:{port}/short"),
        format!("http://2130706433:{port}/decimal"),
    ];
    let mut subs = Vec::new();
    for url in &urls {
        subs.push(env.subscribe("acme", url, &["lead.created"]).await);
    }
    wait_subscriptions_loaded(&env.fanout, urls.len()).await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;

    for (url, sub) in urls.iter().zip(&subs) {
        let id = sub["id"].as_str().expect("id");
        let history = eventually(
            Duration::from_secs(20),
            &format!("every attempt to {url} refused"),
            || async {
                let (_, body) = env
                    .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
                    .await;
                let data = body["data"].as_array().cloned().unwrap_or_default();
                (data.len() >= 3).then_some(data)
            },
        )
        .await;
        let statuses: Vec<_> = history.iter().map(|a| a["status"].clone()).collect();
        assert_eq!(statuses, ["dead", "failed", "failed"], "{url}");
        for attempt in &history {
            assert!(attempt["response_status"].is_null(), "{url}: {attempt}");
            let error = attempt["error"].as_str().unwrap_or_default();
            assert!(error.contains("SSRF guard"), "{url}: {attempt}");
        }
    }
    assert!(
        receiver.all().is_empty(),
        "a request reached loopback: {:?}",
        receiver.all()
    );
    shutdown.token.cancel();
}

#[tokio::test]
async fn a_proxy_from_the_environment_does_not_let_deliveries_around_the_ssrf_guard() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    // The "proxy" records whatever the deliverer hands it.
    let proxy = Receiver::start().await;
    let mut guarded = env.settings.clone();
    guarded.delivery.allowed_networks = Vec::new();
    let proxy_env = [
        ("HTTP_PROXY", proxy.base.as_str()),
        ("http_proxy", proxy.base.as_str()),
        ("HTTPS_PROXY", proxy.base.as_str()),
        ("https_proxy", proxy.base.as_str()),
    ];
    let deliverer = ServiceProcess::spawn(Service::Deliverer, &guarded, &proxy_env);
    deliverer.wait_ready(Duration::from_secs(30)).await;
    // A name the guard would have to resolve (and may not resolve at all):
    // behind a proxy it is the proxy that resolves and connects.
    let sub = env
        .subscribe(
            "acme",
            "http://internal-service.invalid/admin",
            &["lead.created"],
        )
        .await;
    wait_subscriptions_loaded(&env.fanout, 1).await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    let id = sub["id"].as_str().expect("id");
    let attempt = eventually(Duration::from_secs(20), "the first attempt", || async {
        let (_, body) = env
            .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
            .await;
        body["data"].as_array()?.last().cloned()
    })
    .await;
    let through_proxy: Vec<_> = proxy.all().iter().map(|r| r.path.clone()).collect();
    assert!(
        through_proxy.is_empty(),
        "the delivery went to the proxy, unguarded: {through_proxy:?} (attempt: {attempt})"
    );
    // The deliverer resolved the name itself, through the guard, and failed.
    assert_eq!(attempt["status"], "failed", "{attempt}");
    assert!(
        attempt["error"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("dns"),
        "{attempt}"
    );
}

#[tokio::test]
async fn a_test_send_to_loopback_is_refused_when_allowed_networks_is_empty() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/t"), &["lead.created"])
        .await;
    // A second api on the same database whose guard allows nothing.
    let mut guarded = env.settings.clone();
    guarded.delivery.allowed_networks = Vec::new();
    let shutdown = Shutdown::new();
    let api = spawn_in_process(Service::Api, &guarded, &shutdown).await;
    wait_ready(&api, Duration::from_secs(30)).await;
    let guarded_api = ApiClient::new(env.http.clone(), api);

    let id = sub["id"].as_str().expect("id");
    let (status, attempt) = guarded_api
        .post(
            &format!("/v1/tenants/acme/subscriptions/{id}/test"),
            &json!({"event_type": "lead.created"}),
        )
        .await;
    assert_eq!(status, 200, "{attempt}");
    assert_eq!(attempt["status"], "failed", "{attempt}");
    assert!(attempt["response_status"].is_null(), "{attempt}");
    assert!(
        attempt["error"]
            .as_str()
            .unwrap_or_default()
            .contains("SSRF guard"),
        "{attempt}"
    );
    assert!(receiver.all().is_empty(), "the test send reached loopback");

    let (status, body) = guarded_api
        .post(
            "/v1/tenants/acme/subscriptions",
            &json!({"url": receiver.url("/t"), "event_types": ["*"]}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_url");
    shutdown.token.cancel();
}

#[tokio::test]
async fn the_api_refuses_every_spelling_of_an_internal_address_with_422() {
    let env = TestEnv::start_with(|o| {
        o.deliverer = false;
        o.settings.delivery.allowed_networks = Vec::new();
    })
    .await;
    let internal = [
        "http://127.0.0.1/",
        "http://127.1:8080/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://localhost:9000/",
        "http://LOCALHOST./",
        "http://app.localhost/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://0.0.0.0/",
        "http://10.1.2.3/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
        "http://[fe80::1]/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
    ];
    for url in internal {
        let (status, body) = env
            .api_post(
                "/v1/tenants/acme/subscriptions",
                json!({"url": url, "event_types": ["*"]}),
            )
            .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["error"]["code"], "invalid_url", "{url}");
    }
    // Nor can an existing subscription be moved to one.
    let sub = env
        .subscribe("acme", "https://hooks.example.com/in", &["*"])
        .await;
    let path = format!(
        "/v1/tenants/acme/subscriptions/{}",
        sub["id"].as_str().expect("id")
    );
    for url in ["http://127.0.0.1:9000/", "http://169.254.169.254/"] {
        let (status, body) = env.admin.patch(&path, &json!({ "url": url })).await;
        assert_eq!(status, 422, "{url}: {body}");
    }
    let (_, now) = env.api_get(&path).await;
    assert_eq!(now["url"], "https://hooks.example.com/in");
}

#[tokio::test]
async fn static_headers_cannot_inject_crlf_or_override_what_hookline_sets() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let refused = [
        json!({"X-Token": "a\r\nX-Injected: 1"}),
        json!({"X-Token": "a\nX-Injected: 1"}),
        json!({"X-Token": "a\rb"}),
        json!({"X-Token": "nul\u{0}byte"}),
        json!({"X-Token\r\nX-Injected": "1"}),
        json!({"X Token": "spaces are not a token"}),
        json!({"": "empty name"}),
        json!({"webhook-id": "msg_forged"}),
        json!({"Webhook-Signature": "v1,forged"}),
        json!({"WEBHOOK-TIMESTAMP": "1"}),
        json!({"Host": "evil.example"}),
        json!({"content-length": "0"}),
        json!({"Content-Type": "text/plain"}),
        json!({"user-agent": "NotHookline"}),
        json!({"X-Token": 42}),
    ];
    for headers in &refused {
        let (status, body) = env
            .api_post(
                "/v1/tenants/acme/subscriptions",
                json!({"url": receiver.url("/h"), "event_types": ["*"], "headers": headers}),
            )
            .await;
        assert_eq!(status, 422, "{headers}: {body}");
        assert_eq!(body["error"]["code"], "invalid_headers", "{headers}");
    }
    // An hmac scheme's own signature header cannot be shadowed either.
    let (status, body) = env
        .api_post(
            "/v1/tenants/acme/subscriptions",
            json!({
                "url": receiver.url("/h"), "event_types": ["*"],
                "secret": "a-secret-of-enough-length",
                "signature": {"scheme": "hmac", "header": "X-Signature", "encoding": "hex", "prefix": "", "signed": "body"},
                "headers": {"x-signature": "forged"}
            }),
        )
        .await;
    assert_eq!(status, 422, "{body}");

    let sub = env
        .subscribe("acme", &receiver.url("/h"), &["lead.created"])
        .await;
    let path = format!(
        "/v1/tenants/acme/subscriptions/{}",
        sub["id"].as_str().expect("id")
    );
    let (status, body) = env
        .admin
        .patch(
            &path,
            &json!({"headers": {"X-Token": "a\r\nX-Injected: 1"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = env
        .admin
        .patch(&path, &json!({"headers": {"X-Token": "t0ken"}}))
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, with_header) = env
        .api_post(
            "/v1/tenants/acme/subscriptions",
            json!({"url": receiver.url("/h2"), "event_types": ["lead.created"], "headers": {"X-Token": "t0ken"}}),
        )
        .await;
    assert_eq!(status, 201, "{with_header}");
    wait_subscriptions_loaded(&env.fanout, 2).await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    let request = eventually(
        Duration::from_secs(15),
        "a delivery with the header",
        || async { receiver.requests("/h2").into_iter().next() },
    )
    .await;
    assert_eq!(request.header("x-token"), Some("t0ken"));
    assert!(request.header("x-injected").is_none());
    assert_eq!(request.header("content-type"), Some("application/json"));
    let secret = with_header["secret"].as_str().expect("secret");
    assert!(standard_signature_valid(&request, secret));
}

#[tokio::test]
async fn each_limit_is_configurable_and_answers_a_clear_4xx() {
    let env = TestEnv::start_with(|o| {
        o.deliverer = false;
        o.settings.ingest.max_event_bytes = 2048;
        o.settings.ingest.max_batch_events = 3;
        o.settings.api.max_body_bytes = 4096;
        o.settings.api.max_headers = 2;
        o.settings.api.max_subscriptions_per_tenant = 1;
    })
    .await;
    let event = |size: usize| json!({"tenant": "acme", "type": "lead.created", "data": {"pad": "x".repeat(size)}});

    let (status, body) = env.post_event(event(4096)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_large");
    assert!(message(&body).contains("2048"), "{body}");
    let (status, _) = env.post_event(event(100)).await;
    assert_eq!(status, 202);

    let batch = |n: usize| json!({"events": (0..n).map(|_| event(10)).collect::<Vec<_>>()});
    let (status, body) = env.ingest_post("/v1/events/batch", &batch(4)).await;
    assert_eq!(status, 413);
    assert!(message(&body).contains('3'), "{body}");
    let (status, _) = env.ingest_post("/v1/events/batch", &batch(3)).await;
    assert_eq!(status, 200);

    let subscriptions = "/v1/tenants/acme/subscriptions";
    let sub = |extra: Value| {
        let mut body = json!({"url": "https://hooks.example.com/in", "event_types": ["*"]});
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    };
    let long_url = format!("https://hooks.example.com/{}", "a".repeat(2048));
    for (extra, refusal, limit) in [
        (json!({"name": "n".repeat(5000)}), 413, "4096"),
        (
            json!({"headers": {"X-A": "1", "X-B": "2", "X-C": "3"}}),
            422,
            "2",
        ),
        (json!({"url": long_url}), 422, "2048"),
        (json!({"headers": {"X-A": "v".repeat(1025)}}), 422, "1024"),
    ] {
        let (status, body) = env.api_post(subscriptions, sub(extra)).await;
        assert_eq!(status, refusal, "{body}");
        assert!(message(&body).contains(limit), "{body}");
    }

    let (status, body) = env.api_post(subscriptions, sub(json!({}))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = env.api_post(subscriptions, sub(json!({}))).await;
    assert_eq!(status, 409, "{body}");
    assert!(!message(&body).is_empty(), "{body}");
}

fn message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}
