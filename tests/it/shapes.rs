//! Delivery options as a receiver sees them: method, JSON and form bodies
//! from merge-field templates, `GET` with the fields in the query, CEL
//! filters, and templates that fail ending as dead letters, never a stall.

use std::time::Duration;

use hookline_tests::faults::probe::metric_sum;
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, Captured, Receiver, TestEnv};
use serde_json::{json, Value};

/// Creates a `lead.created` subscription at `path` with `options` merged
/// in; returns its secret.
async fn subscribe(env: &TestEnv, receiver: &Receiver, path: &str, options: Value) -> String {
    let mut body =
        json!({"name": path, "url": receiver.url(path), "event_types": ["lead.created"]});
    for (key, value) in options.as_object().expect("options object") {
        body[key] = value.clone();
    }
    let (status, created) = env.api_post("/v1/tenants/acme/subscriptions", body).await;
    assert_eq!(status, 201, "create {path}: {created}");
    created["secret"].as_str().expect("secret").to_string()
}

/// Posts a `lead.created` event with `data`; returns its id.
async fn post(env: &TestEnv, data: Value) -> String {
    let (status, accepted) = env
        .post_event(json!({"tenant": "acme", "type": "lead.created", "data": data}))
        .await;
    assert_eq!(status, 202, "{accepted}");
    accepted["id"].as_str().expect("id").to_string()
}

/// The one request that arrived at `path`, once it has.
async fn only(receiver: &Receiver, path: &str) -> Captured {
    eventually(Duration::from_secs(15), path, || async {
        receiver.requests(path).into_iter().next()
    })
    .await
}

fn lead() -> Value {
    json!({"contact": {"email": "ana@example.com", "first_name": "Ana"},
           "tags": ["vip", "spring"], "amount": 150, "stage": "won"})
}

#[tokio::test]
async fn each_subscription_gets_the_method_and_body_its_options_say_signed_over_the_bytes_sent() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let form_secret = subscribe(&env, &receiver, "/form", json!({
        "body": {"format": "form", "template": {"email": "{{ data.contact.email }}", "source": "crm"}}
    }))
    .await;
    subscribe(&env, &receiver, "/put", json!({
        "method": "PUT",
        "body": {"template": {"email": "{{ data.contact.email }}", "tags": "{{ data.tags }}",
                               "missing": "{{ data.nothing }}", "hello": "Hi {{ data.contact.first_name }}",
                               "kind": "{{ type }}", "fixed": 7}}
    }))
    .await;
    let get_secret = subscribe(
        &env,
        &receiver,
        "/get?key=k1",
        json!({
            "method": "GET",
            "body": {"format": "form", "template": {"email": "{{ data.contact.email }}"}}
        }),
    )
    .await;
    subscribe(
        &env,
        &receiver,
        "/flat",
        json!({"body": {"format": "form"}}),
    )
    .await;

    let id = post(&env, lead()).await;

    let form = only(&receiver, "/form").await;
    assert_eq!(form.method, "POST");
    assert_eq!(
        form.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(&form.body[..], b"email=ana%40example.com&source=crm");
    assert!(
        standard_signature_valid(&form, &form_secret),
        "form body signature"
    );

    let put = only(&receiver, "/put").await;
    assert_eq!(put.method, "PUT");
    assert_eq!(put.header("content-type"), Some("application/json"));
    assert_eq!(
        put.json(),
        json!({"email": "ana@example.com", "tags": ["vip", "spring"], "missing": null,
               "hello": "Hi Ana", "kind": "lead.created", "fixed": 7})
    );

    let get = only(&receiver, "/get").await;
    assert_eq!(get.method, "GET");
    assert!(get.body.is_empty(), "GET sends no body");
    assert_eq!(get.header("content-type"), None);
    assert_eq!(get.query, "key=k1&email=ana%40example.com");
    assert!(
        standard_signature_valid(&get, &get_secret),
        "a GET is signed over the empty body"
    );

    let flat = only(&receiver, "/flat").await;
    let fields: Vec<(String, String)> = form_urlencoded::parse(&flat.body).into_owned().collect();
    assert!(fields.contains(&("id".into(), id.clone())), "{fields:?}");
    assert!(
        fields.contains(&("data[contact][email]".into(), "ana@example.com".into())),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("data[tags][1]".into(), "spring".into())),
        "{fields:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_filter_delivers_only_what_it_admits_and_counts_evaluation_errors_as_false() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    subscribe(
        &env,
        &receiver,
        "/won",
        json!({
            "filter": "data.amount > 100 && data.stage == 'won' && 'vip' in data.tags"
        }),
    )
    .await;
    subscribe(&env, &receiver, "/all", json!({})).await;

    let admitted = post(&env, lead()).await;
    let mut small = lead();
    small["amount"] = json!(50);
    post(&env, small).await;
    // No `amount`: the filter cannot evaluate, which counts as false.
    post(&env, json!({"stage": "won"})).await;

    eventually(Duration::from_secs(15), "every event at /all", || async {
        (receiver.requests("/all").len() == 3).then_some(())
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    let won = receiver.requests("/won");
    assert_eq!(won.len(), 1, "only the admitted event: {won:?}");
    assert_eq!(won[0].json()["id"], admitted.as_str());
    let metrics = env.metrics(&env.fanout).await;
    assert_eq!(
        metric_sum(&metrics, "hookline_fanout_filter_errors_total", &[]),
        1.0,
        "{metrics}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_patched_filter_applies_to_every_event_posted_a_second_after_the_patch() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let (status, created) = env
        .api_post(
            "/v1/tenants/acme/subscriptions",
            json!({"name": "big", "url": receiver.url("/big"),
                   "event_types": ["lead.created"], "filter": "data.amount > 100"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let path = format!(
        "/v1/tenants/acme/subscriptions/{}",
        created["id"].as_str().expect("id")
    );
    let mut big = lead();
    big["amount"] = json!(500);
    let mut small = lead();
    small["amount"] = json!(50);
    let before = post(&env, big.clone()).await;
    post(&env, small.clone()).await;
    let first = only(&receiver, "/big").await;
    assert_eq!(
        first.json()["id"],
        before.as_str(),
        "the old filter admits 500"
    );

    let (status, patched) = env
        .admin
        .patch(&path, &json!({"filter": "data.amount < 100"}))
        .await;
    assert_eq!(status, 200, "{patched}");
    let patched_at = std::time::Instant::now();
    // The contract's bound for a change to reach fanout: events posted from
    // a second after the PATCH answered see the new filter, none the old.
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(patched_at.elapsed())).await;
    post(&env, big).await;
    let admitted = post(&env, small).await;
    eventually(
        Duration::from_secs(15),
        "the small event at /big",
        || async { (receiver.requests("/big").len() >= 2).then_some(()) },
    )
    .await;
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    let ids: Vec<Value> = receiver
        .requests("/big")
        .iter()
        .map(|r| r.json()["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![json!(before), json!(admitted)],
        "old filter gone, new one applied"
    );
    env.stop().await;
}

#[tokio::test]
async fn options_that_cannot_work_are_refused_naming_the_field_and_valid_ones_read_back() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let base = json!({"url": "https://example.com/h", "event_types": ["lead.created"]});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        body
    };
    for (extra, code, names) in [
        (json!({"method": "TRACE"}), "invalid_method", "method"),
        (json!({"body": {"format": "xml"}}), "invalid_body", "body"),
        (
            json!({"body": {"template": {"contact": {"email": "{{ data.email "}}}}),
            "invalid_body",
            "body.template.contact.email",
        ),
        (
            json!({"body": {"format": "form", "template": ["a"]}}),
            "invalid_body",
            "body.template",
        ),
        (
            json!({"filter": "data.amount >"}),
            "invalid_filter",
            "filter",
        ),
        (json!({"filter": "dta.amount > 1"}), "invalid_filter", "dta"),
        (json!({"filter": 3}), "invalid_filter", "filter"),
    ] {
        let (status, error) = env
            .api_post("/v1/tenants/acme/subscriptions", with(extra.clone()))
            .await;
        assert_eq!(status, 422, "{extra}: {error}");
        assert_eq!(error["error"]["code"], code, "{extra}: {error}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(names),
            "{extra}: `{message}` should name {names}"
        );
    }

    let (status, created) = env
        .api_post(
            "/v1/tenants/acme/subscriptions",
            with(json!({
                "method": "PATCH", "filter": "data.amount > 1",
                "body": {"format": "json", "template": {"e": "{{ data.email }}"}}
            })),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["method"], "PATCH");
    assert_eq!(created["filter"], "data.amount > 1");
    assert_eq!(
        created["body"]["template"],
        json!({"e": "{{ data.email }}"})
    );
    let id = created["id"].as_str().expect("id");
    let path = format!("/v1/tenants/acme/subscriptions/{id}");
    let (status, patched) = env
        .admin
        .patch(&path, &json!({"method": "POST", "filter": ""}))
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["method"], "POST");
    assert_eq!(patched["filter"], Value::Null);
    assert_eq!(
        patched["body"]["template"],
        json!({"e": "{{ data.email }}"}),
        "kept"
    );
    let (_, plain) = env
        .api_post("/v1/tenants/acme/subscriptions", base.clone())
        .await;
    assert_eq!(plain["method"], "POST");
    assert_eq!(plain["body"], json!({"format": "json"}));
    env.stop().await;
}

#[tokio::test]
async fn a_template_that_explodes_ends_as_a_dead_letter_with_the_reason_and_nothing_is_sent() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    subscribe(&env, &receiver, "/boom", json!({
        "body": {"format": "form", "template": {
            "x": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
        }}
    }))
    .await;
    subscribe(&env, &receiver, "/fine", json!({})).await;
    post(&env, lead()).await;
    let dead = env.first_dead_letter("acme", Duration::from_secs(20)).await;
    let error = dead["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("template"), "{dead}");
    assert_eq!(dead["attempts"], 1, "parked at once: {dead}");
    only(&receiver, "/fine").await;
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    assert!(receiver.requests("/boom").is_empty(), "nothing was sent");
    env.stop().await;
}

/// The preview's answer as the request the receiver would capture.
fn as_captured(preview: &Value) -> Captured {
    let url = preview["url"].as_str().expect("url");
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    Captured {
        path: path.to_string(),
        method: preview["method"].as_str().expect("method").to_string(),
        query: query.to_string(),
        headers: preview["headers"]
            .as_object()
            .expect("headers")
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        body: axum::body::Bytes::from(preview["body"].as_str().expect("body").to_string()),
        at: std::time::Instant::now(),
    }
}

#[tokio::test]
async fn a_preview_is_byte_for_byte_the_request_the_receiver_gets_and_sends_nothing() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let cases = [
        (
            "/plain",
            json!({"headers": {"Authorization": "Bearer crm-token"}}),
        ),
        (
            "/tpl",
            json!({"method": "PUT", "body": {"template": {
                "email": "{{ data.contact.email }}", "tags": "{{ data.tags }}", "n": "{{ data.amount }}"}}}),
        ),
        (
            "/get?k=1",
            json!({"method": "GET", "body": {"format": "form"}}),
        ),
    ];
    let mut subs = Vec::new();
    for (path, options) in &cases {
        let secret = subscribe(&env, &receiver, path, options.clone()).await;
        let (_, list) = env.api_get("/v1/tenants/acme/subscriptions").await;
        let id = list["data"]
            .as_array()
            .expect("list")
            .iter()
            .find(|s| s["name"] == *path)
            .and_then(|s| s["id"].as_str())
            .expect("id")
            .to_string();
        subs.push((*path, id, secret));
    }
    let when = "2026-12-05T10:00:00.123Z";
    let mut previews = Vec::new();
    for (_, id, _) in &subs {
        let (status, preview) = env
            .api_post(
                &format!("/v1/tenants/acme/subscriptions/{id}/preview"),
                json!({"event_type": "lead.created", "data": lead(),
                       "id": "evt_preview_match", "occurred_at": when}),
            )
            .await;
        assert_eq!(status, 200, "{preview}");
        assert_eq!(preview["filtered_out"], false);
        previews.push(preview);
    }
    let (status, _) = env
        .post_event(
            json!({"tenant": "acme", "type": "lead.created", "data": lead(),
                           "id": "evt_preview_match", "occurred_at": when}),
        )
        .await;
    assert_eq!(status, 202);
    for ((path, _, secret), preview) in subs.iter().zip(&previews) {
        let bare = path.split('?').next().unwrap_or(path);
        let got = only(&receiver, bare).await;
        let shown = as_captured(preview);
        assert_eq!(shown.body, got.body, "{path}: the exact body");
        assert_eq!(shown.method, got.method, "{path}");
        assert_eq!(shown.query, got.query, "{path}");
        assert_eq!(shown.path, receiver.url(bare), "{path}");
        for (name, value) in &shown.headers {
            if name == "webhook-timestamp" || name == "webhook-signature" {
                continue; // signed at a different second
            }
            if name == "traceparent" {
                continue; // a new span for every attempt
            }
            assert_eq!(
                got.header(name),
                Some(value.as_str()),
                "{path}: header {name}"
            );
        }
        assert!(shown.header("webhook-signature").is_some(), "{path}");
        assert!(
            standard_signature_valid(&shown, secret),
            "{path}: the preview's signature covers its body"
        );
    }
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    for (path, id, _) in &subs {
        let bare = path.split('?').next().unwrap_or(path);
        assert_eq!(
            receiver.requests(bare).len(),
            1,
            "{path}: previews sent nothing"
        );
        let (_, attempts) = env
            .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
            .await;
        assert_eq!(
            attempts["data"].as_array().map(Vec::len),
            Some(1),
            "{path}: previews are not history: {attempts}"
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn a_preview_says_when_the_filter_rejects_and_names_a_failing_template() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let mut ids = Vec::new();
    for (path, options) in [
        ("/picky", json!({"filter": "data.amount > 1000"})),
        (
            "/boom",
            json!({"body": {"format": "form", "template": {
                "x": "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"}}}),
        ),
    ] {
        let mut body =
            json!({"name": path, "url": receiver.url(path), "event_types": ["lead.created"]});
        for (k, v) in options.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (status, created) = env.api_post("/v1/tenants/acme/subscriptions", body).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().expect("id").to_string());
    }
    let preview = |id: &str, body: Value| {
        let path = format!("/v1/tenants/acme/subscriptions/{id}/preview");
        let env = &env;
        async move { env.api_post(&path, body).await }
    };
    let (status, shown) = preview(
        &ids[0],
        json!({"event_type": "lead.created", "data": lead()}),
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["filtered_out"], true, "amount 150 is not > 1000");
    let (status, shown) = preview(
        &ids[0],
        json!({"event_type": "lead.created", "data": {"amount": 5000}}),
    )
    .await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["filtered_out"], false);
    let (status, error) = preview(&ids[1], json!({"event_type": "lead.created"})).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "template_failed", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("body.template"),
        "{error}"
    );
    for (body, code) in [
        (json!({}), "invalid_event_type"),
        (
            json!({"event_type": "lead.created", "data": "x"}),
            "invalid_data",
        ),
        (
            json!({"event_type": "lead.created", "occurred_at": "yesterday"}),
            "invalid_occurred_at",
        ),
    ] {
        let (status, error) = preview(&ids[0], body.clone()).await;
        assert_eq!(status, 422, "{body}: {error}");
        if !code.is_empty() {
            assert_eq!(error["error"]["code"], code, "{body}: {error}");
        }
    }
    let (status, _) = preview("sub_missing", json!({"event_type": "lead.created"})).await;
    assert_eq!(status, 404);
    assert!(receiver.requests("/picky").is_empty() && receiver.requests("/boom").is_empty());
    env.stop().await;
}
