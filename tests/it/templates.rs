//! The subscription bodies in `examples/templates/`, one per seed product,
//! created as they are (only the URL pointed at the test receiver) and
//! checked against the product's documented delivery: exact fields, JSON
//! types, and its signature header verified here from the bytes received.

use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, Captured, Receiver, TestEnv};
use serde_json::{json, Value};
use sha2::Sha256;

/// When every event here occurred, so the rendered timestamps are exact.
const OCCURRED_AT: &str = "2026-01-14T12:17:23.884Z";

/// The template files this module tests; a file added without a test fails
/// [`every_example_template_is_tested_here_and_points_at_an_example_url`].
const FILES: [&str; 4] = [
    "autoreach-events.json",
    "hoopai-contact.json",
    "hoopai-form.json",
    "spotio-item.json",
];

fn templates_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/templates")
}

/// The create body in `examples/templates/{file}`.
fn template(file: &str) -> Value {
    let path = templates_dir().join(file);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Creates the subscription of `body` with its URL replaced by `path` on
/// `receiver`; returns its secret.
async fn create(env: &TestEnv, receiver: &Receiver, mut body: Value, path: &str) -> String {
    body["url"] = json!(receiver.url(path));
    let (status, created) = env.api_post("/v1/tenants/acme/subscriptions", body).await;
    assert_eq!(status, 201, "create {path}: {created}");
    created["secret"].as_str().expect("secret").to_string()
}

/// Posts an event of `event_type` with `data`, occurred at [`OCCURRED_AT`].
async fn post(env: &TestEnv, event_type: &str, data: Value) {
    let (status, accepted) = env
        .post_event(json!({"tenant": "acme", "type": event_type,
                           "occurred_at": OCCURRED_AT, "data": data}))
        .await;
    assert_eq!(status, 202, "{accepted}");
}

/// The requests at `path`, once there are `count` of them and nothing more
/// can arrive.
async fn exactly(env: &TestEnv, receiver: &Receiver, path: &str, count: usize) -> Vec<Captured> {
    eventually(Duration::from_secs(15), path, || async {
        (receiver.requests(path).len() >= count).then_some(())
    })
    .await;
    env.wait_nothing_pending(Duration::from_secs(15)).await;
    let requests = receiver.requests(path);
    assert_eq!(requests.len(), count, "{path}: {requests:?}");
    requests
}

/// Lowercase hex HMAC-SHA256 of the request body keyed by `secret`'s bytes.
fn hex_hmac(secret: &str, request: &Captured) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(&request.body);
    hex::encode(mac.finalize().into_bytes())
}

/// The body fields of a form request, sorted by name (field order is not
/// part of the contract).
fn form_fields(request: &Captured) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> =
        form_urlencoded::parse(&request.body).into_owned().collect();
    fields.sort();
    fields
}

/// A HoopAI contact as the product's backend publishes it to Hookline; the
/// `+` in the email and the spaces test the form encoding.
fn contact_created() -> Value {
    json!({
        "locationId": "ve9EPM428h8vShlRW1KT",
        "contact": {
            "id": "nmFmQEsNgz6AVpgLVUJ0", "email": "ana.souza+crm@example.com",
            "first_name": "Ana", "last_name": "Souza", "full_name": "Ana Souza",
            "phone": "+1 555 010 0123", "tags": ["vip", "spring promo"], "score": 42
        }
    })
}

/// A Spotio lead: numbers, nested objects, and `{id, values[], title}` fields.
fn spotio_lead() -> Value {
    json!({
        "id": 48213377, "createdAt": "2026-01-14T12:17:20.000+00:00",
        "updatedAt": "2026-01-14T12:17:23.000+00:00",
        "assignedUser": {"id": 912, "name": "Rui Costa", "email": "rui@example.com",
                         "phone": "+351 912 345 678"},
        "company": "Costa Roofing",
        "address": {"fullAddress": "1 Main St, Springfield, IL 62701, US", "lat": 39.7817,
                    "lng": -89.6501, "street": "Main St", "houseNumber": "1", "zip": "62701",
                    "city": "Springfield", "state": "IL", "country": "US"},
        "fields": [{"id": 7, "values": ["Hot"], "title": "Status"},
                   {"id": 9, "values": [], "title": "Notes"}],
        "contacts": [{"fields": [{"id": 1, "values": ["Jane Doe"], "title": "Name"}]}]
    })
}

/// An AutoReach lead: identity, scoring, source, enrichment, web intelligence.
fn autoreach_lead() -> Value {
    json!({
        "lead": {"id": "ld_8Q2KX", "firstName": "Maya", "lastName": "Chen",
                 "email": "maya@northwind.example", "company": "Northwind"},
        "scoring": {"buyerScore": 87, "fit": 0.92, "intent": 0.81, "timing": 0.64,
                    "buyerState": "evaluating", "strategy": "consultative", "channel": "email"},
        "source": "linkedin",
        "enrichment": {"employees": 240, "industry": "Logistics", "verified": true},
        "webIntelligence": {"recentFunding": null, "hiring": ["SDR", "AE"]}
    })
}

#[test]
fn every_example_template_is_tested_here_and_points_at_an_example_url() {
    let mut found: Vec<String> = std::fs::read_dir(templates_dir())
        .expect("examples/templates exists")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(found, FILES, "a template without a test here");
    let readme = std::fs::read_to_string(templates_dir().join("README.md")).expect("README.md");
    for file in FILES {
        let body = template(file);
        let url = body["url"].as_str().unwrap_or_default();
        assert!(
            url.starts_with("https://example.com/hooks/"),
            "{file}: url {url}"
        );
        assert!(body["name"].is_string(), "{file}: a name");
        assert!(
            readme.contains(&format!("`{file}`")),
            "README.md describes {file}"
        );
    }
}

#[tokio::test]
async fn the_hoopai_workflow_template_posts_contact_merge_fields_as_a_form_with_the_bearer_header()
{
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let secret = create(
        &env,
        &receiver,
        template("hoopai-form.json"),
        "/hoopai-form",
    )
    .await;

    post(&env, "contact.created", contact_created()).await;

    let request = exactly(&env, &receiver, "/hoopai-form", 1).await.remove(0);
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.header("authorization"),
        Some("Bearer replace-with-the-receivers-token")
    );
    let expected: Vec<(String, String)> = [
        ("email", "ana.souza+crm@example.com"),
        ("first_name", "Ana"),
        ("full_name", "Ana Souza"),
        ("last_name", "Souza"),
        ("location_id", "ve9EPM428h8vShlRW1KT"),
        ("phone", "+1 555 010 0123"),
        ("tags", "vip,spring promo"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form_fields(&request), expected);
    assert!(
        standard_signature_valid(&request, &secret),
        "signed over the form bytes sent"
    );
    env.stop().await;
}

#[tokio::test]
async fn the_hoopai_contact_template_delivers_contact_created_typed_and_signed_in_x_hmac_signature()
{
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let secret = create(&env, &receiver, template("hoopai-contact.json"), "/hoopai").await;

    post(&env, "contact.created", contact_created()).await;

    let request = exactly(&env, &receiver, "/hoopai", 1).await.remove(0);
    assert_eq!(request.method, "POST");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "type": "ContactCreated",
            "locationId": "ve9EPM428h8vShlRW1KT",
            "timestamp": OCCURRED_AT,
            "data": {"id": "nmFmQEsNgz6AVpgLVUJ0", "email": "ana.souza+crm@example.com",
                     "firstName": "Ana", "lastName": "Souza", "phone": "+1 555 010 0123",
                     "tags": ["vip", "spring promo"]}
        })
    );
    assert_eq!(
        request.header("x-hmac-signature"),
        Some(hex_hmac(&secret, &request).as_str()),
        "hex HMAC-SHA256 of the body"
    );
    assert_eq!(request.header("webhook-signature"), None);
    env.stop().await;
}

#[tokio::test]
async fn the_spotio_template_delivers_each_event_as_a_data_type_date_item_signed_in_x_signature() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let secret = create(&env, &receiver, template("spotio-item.json"), "/spotio").await;
    let appointment = json!({"id": 5531, "leadId": 48213377, "durationMinutes": 30,
                             "start": "2026-01-20T09:00:00.000+00:00", "done": false});

    post(&env, "lead.added", spotio_lead()).await;
    post(&env, "appointment.created", appointment.clone()).await;

    let requests = exactly(&env, &receiver, "/spotio", 2).await;
    let mut bodies: Vec<Value> = requests.iter().map(Captured::json).collect();
    bodies.sort_by_key(|body| body["type"].to_string());
    let date = "2026-01-14T12:17:23.884+00:00";
    assert_eq!(
        bodies,
        [
            json!({"data": appointment, "type": "appointment.created", "date": date}),
            json!({"data": spotio_lead(), "type": "lead.added", "date": date}),
        ]
    );
    for request in &requests {
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(
            request.header("x-signature"),
            Some(hex_hmac(&secret, request).as_str()),
            "hex HMAC-SHA256 of the body"
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn the_autoreach_template_names_each_event_as_autoreach_does_and_signs_sha256_equals_hex() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let file = template("autoreach-events.json");
    let lead_secret = create(&env, &receiver, file.clone(), "/lead").await;
    // The same file for another AutoReach event: only `event_types` changes.
    let mut meetings = file;
    meetings["event_types"] = json!(["meeting.booked"]);
    let meeting_secret = create(&env, &receiver, meetings, "/meeting").await;
    let meeting = json!({"lead": {"id": "ld_8Q2KX"}, "meeting": {"durationMinutes": 30,
                         "startsAt": "2026-01-20T09:00:00.000Z"}});

    post(&env, "lead.created", autoreach_lead()).await;
    post(&env, "meeting.booked", meeting.clone()).await;

    let lead = exactly(&env, &receiver, "/lead", 1).await.remove(0);
    assert_eq!(
        lead.json(),
        json!({"event": "Lead Created", "timestamp": OCCURRED_AT, "data": autoreach_lead()})
    );
    assert_eq!(
        lead.header("x-webhook-signature"),
        Some(format!("sha256={}", hex_hmac(&lead_secret, &lead)).as_str())
    );
    let booked = exactly(&env, &receiver, "/meeting", 1).await.remove(0);
    assert_eq!(
        booked.json(),
        json!({"event": "Meeting Booked", "timestamp": OCCURRED_AT, "data": meeting})
    );
    assert_eq!(
        booked.header("x-webhook-signature"),
        Some(format!("sha256={}", hex_hmac(&meeting_secret, &booked)).as_str())
    );
    env.stop().await;
}
