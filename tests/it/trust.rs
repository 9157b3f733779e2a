//! Trust in production: no secret or static header value in clear at rest
//! (database, broker), sealing keys that rotate, a deliverer that cannot open
//! a task parks it loudly, producers that authenticate, development
//! credentials refused off loopback, and retention of dead letters and
//! parked messages.

use std::time::Duration;

use base64::Engine as _;
use hookline_amqp::names::{wait_queue, DEAD_QUEUE};
use hookline_config::Secret;
use hookline_model::sealed::Keyring;
use hookline_runtime::Shutdown;
use hookline_tests::api_client::{wait_not_ready, wait_ready};
use hookline_tests::binary::hookline_binary;
use hookline_tests::faults::env::wait_subscriptions_loaded;
use hookline_tests::faults::services::{spawn_in_process, Service};
use hookline_tests::signature::standard_signature_valid;
use hookline_tests::{eventually, ApiClient, Receiver, Reply, TestEnv};
use serde_json::{json, Value};

const KEY_A: &str = "sealing-key-a-0123456789abcdef";
const KEY_B: &str = "sealing-key-b-0123456789abcdef";
const HEADER_VALUE: &str = "Bearer static-header-value-7f3c9e1d";
const HMAC_SECRET: &str = "hmac-secret-value-5b8e2a6f4c";

fn standard_secret() -> (String, Vec<u8>) {
    let key: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    (secret, key)
}

/// Every way a value could show up: as written, its bytes in hex (how
/// `pg_dump` prints `bytea`), and base64.
fn needles(value: &[u8]) -> Vec<Vec<u8>> {
    vec![
        value.to_vec(),
        hex::encode(value).into_bytes(),
        base64::engine::general_purpose::STANDARD
            .encode(value)
            .into_bytes(),
    ]
}

fn assert_absent(place: &str, haystack: &[u8], secrets: &[Vec<u8>]) {
    for secret in secrets {
        for needle in needles(secret) {
            assert!(
                !haystack
                    .windows(needle.len())
                    .any(|w| w == needle.as_slice()),
                "{place} holds `{}` in clear",
                String::from_utf8_lossy(&needle)
            );
        }
    }
}

async fn api_in_process(settings: &hookline_config::Settings, shutdown: &Shutdown) -> ApiClient {
    let base = spawn_in_process(Service::Api, settings, shutdown).await;
    wait_ready(&base, Duration::from_secs(30)).await;
    ApiClient::new(reqwest::Client::new(), &base)
}

#[tokio::test]
async fn no_secret_or_static_header_value_is_in_clear_in_the_database_or_on_the_broker() {
    // Only ingest runs with the env. The api runs only while the
    // subscriptions are made: with it stopped nobody drains the dead queue,
    // so the dead letters can be read there.
    let env = TestEnv::start_with(|o| {
        o.api = false;
        o.fanout = false;
        o.deliverer = false;
        o.settings.delivery.retry_delays = vec![Duration::from_secs(1), Duration::from_secs(4)];
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default("/fail", Reply::status(500));
    let (standard, standard_key) = standard_secret();

    let api_shutdown = Shutdown::new();
    let api = api_in_process(&env.settings, &api_shutdown).await;
    for body in [
        json!({"url": receiver.url("/fail"), "event_types": ["lead.created"], "secret": standard,
               "headers": {"Authorization": HEADER_VALUE}}),
        json!({"url": receiver.url("/fail"), "event_types": ["lead.created"], "secret": HMAC_SECRET,
               "signature": {"scheme": "hmac", "header": "X-Signature", "encoding": "hex"},
               "headers": {"Authorization": HEADER_VALUE}}),
    ] {
        let (status, created) = api.post("/v1/tenants/acme/subscriptions", &body).await;
        assert_eq!(status, 201, "{created}");
    }
    api_shutdown.token.cancel();
    api_shutdown.drain(Duration::from_secs(10)).await;
    let pipeline = Shutdown::new();
    let fanout = spawn_in_process(Service::Fanout, &env.settings, &pipeline).await;
    let deliverer = spawn_in_process(Service::Deliverer, &env.settings, &pipeline).await;
    wait_ready(&deliverer, Duration::from_secs(30)).await;
    wait_subscriptions_loaded(&fanout, 2).await;

    let secrets = [
        standard.clone().into_bytes(),
        standard_key,
        HMAC_SECRET.as_bytes().to_vec(),
        HEADER_VALUE.as_bytes().to_vec(),
    ];
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;

    // Both tasks wait out the 4 s rung after their second attempt.
    let waiting = eventually(
        Duration::from_secs(30),
        "both tasks waiting on the 4 s rung",
        || async {
            let messages = env.peek_queue(&wait_queue(Duration::from_secs(4))).await;
            (messages.len() == 2).then_some(messages)
        },
    )
    .await;
    for message in &waiting {
        assert_absent("a task on the retry ladder", message, &secrets);
    }
    let dead = eventually(
        Duration::from_secs(30),
        "both tasks parked in the dead queue",
        || async {
            let messages = env.peek_queue(DEAD_QUEUE).await;
            (messages.len() == 2).then_some(messages)
        },
    )
    .await;
    for message in &dead {
        assert_absent("a dead letter on the broker", message, &secrets);
    }
    assert_eq!(receiver.requests("/fail").len(), 6);
    for request in receiver.requests("/fail") {
        assert_eq!(request.header("authorization"), Some(HEADER_VALUE));
    }

    // The api comes back, records the dead letters, and the dump of the
    // whole database holds the rows but not the secrets.
    let api_shutdown = Shutdown::new();
    let api = api_in_process(&env.settings, &api_shutdown).await;
    eventually(
        Duration::from_secs(30),
        "two dead letters recorded",
        || async {
            let (_, page) = api.get("/v1/tenants/acme/dead-letters").await;
            (page["data"].as_array().map(Vec::len) == Some(2)).then_some(())
        },
    )
    .await;
    let dump = tokio::process::Command::new("pg_dump")
        .args(["-h", "127.0.0.1", "-U", "postgres", env.database()])
        .output()
        .await
        .expect("pg_dump runs");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(
        text.contains("COPY public.dead_letters"),
        "dump has the tables"
    );
    assert!(text.contains("lead.created"), "dump has the rows");
    assert_absent("the database dump", &dump.stdout, &secrets);
    api_shutdown.token.cancel();
    pipeline.token.cancel();
}

#[tokio::test]
async fn a_rotated_secret_key_reseals_every_row_and_the_new_key_alone_then_delivers() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
        o.settings.api.secret_key = Secret::new(KEY_A);
    })
    .await;
    let receiver = Receiver::start().await;
    let (status, created) = env
        .admin
        .post(
            "/v1/tenants/acme/subscriptions",
            &json!({"url": receiver.url("/hook"), "event_types": ["lead.created"],
                    "headers": {"Authorization": HEADER_VALUE}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().expect("secret").to_string();
    let (status, source) = env
        .admin
        .post(
            "/v1/tenants/acme/sources",
            &json!({"event_type": "form.submitted", "verify": {"scheme": "standard"}}),
        )
        .await;
    assert_eq!(status, 201, "{source}");

    // The operator's rotation: the new key in api.secret_key, the old one in
    // api.previous_secret_keys. A restarted api re-seals every row.
    let mut rotated = env.settings.clone();
    rotated.api.secret_key = Secret::new(KEY_B);
    rotated.api.previous_secret_keys = vec![Secret::new(KEY_A)];
    let shutdown = Shutdown::new();
    let api = api_in_process(&rotated, &shutdown).await;
    let new_id = hex::decode(Keyring::new(KEY_B, []).current_key_id()).expect("hex");
    let pool = sqlx::PgPool::connect(env.settings.database.url.expose())
        .await
        .expect("database");
    eventually(
        Duration::from_secs(20),
        "every sealed value under key B",
        || async {
            let (secret, headers): (Vec<u8>, Option<Vec<u8>>) =
                sqlx::query_as("SELECT secret_sealed, headers_sealed FROM subscriptions")
                    .fetch_one(&pool)
                    .await
                    .expect("row");
            let source: Vec<u8> = sqlx::query_scalar("SELECT secret_sealed FROM sources")
                .fetch_one(&pool)
                .await
                .expect("source");
            let under_b = |v: &[u8]| v.get(2..6) == Some(new_id.as_slice());
            (under_b(&secret) && headers.as_deref().is_some_and(under_b) && under_b(&source))
                .then_some(())
        },
    )
    .await;
    let (_, read_back) = api
        .get(&format!(
            "/v1/tenants/acme/subscriptions/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(read_back["secret"], secret.as_str());
    assert_eq!(read_back["headers"]["Authorization"], HEADER_VALUE);
    let (_, source_back) = api
        .get(&format!(
            "/v1/tenants/acme/sources/{}",
            source["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(source_back["verify"]["secret"], source["verify"]["secret"]);

    // Key A is gone: a fanout and a deliverer that know only key B deliver.
    let mut only_b = rotated.clone();
    only_b.api.previous_secret_keys = Vec::new();
    let fanout = spawn_in_process(Service::Fanout, &only_b, &shutdown).await;
    let deliverer = spawn_in_process(Service::Deliverer, &only_b, &shutdown).await;
    wait_ready(&fanout, Duration::from_secs(30)).await;
    wait_ready(&deliverer, Duration::from_secs(30)).await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;
    let delivered = eventually(Duration::from_secs(20), "the delivery", || async {
        receiver.requests("/hook").into_iter().next()
    })
    .await;
    assert!(standard_signature_valid(&delivered, &secret));
    assert_eq!(delivered.header("authorization"), Some(HEADER_VALUE));
    shutdown.token.cancel();
}

#[tokio::test]
async fn a_deliverer_whose_keys_do_not_open_a_task_parks_it_loudly_and_a_replay_delivers_it() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let mut wrong = env.settings.clone();
    wrong.api.secret_key = Secret::new(KEY_B);
    let bad_shutdown = Shutdown::new();
    let bad = spawn_in_process(Service::Deliverer, &wrong, &bad_shutdown).await;
    wait_ready(&bad, Duration::from_secs(30)).await;

    let receiver = Receiver::start().await;
    let sub = env
        .subscribe("acme", &receiver.url("/hook"), &["lead.created"])
        .await;
    let (status, _) = env
        .post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": 1}}))
        .await;
    assert_eq!(status, 202);

    let dead = env.first_dead_letter("acme", Duration::from_secs(20)).await;
    let error = dead["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("do not open"), "{dead}");
    assert!(error.contains("api.previous_secret_keys"), "{dead}");
    assert_eq!(dead["attempts"], 1, "no retries burnt on a key problem");
    wait_not_ready(&bad, Duration::from_secs(10)).await;
    let metrics = env.metrics(&bad).await;
    assert!(
        metrics.contains("hookline_deliverer_unopenable_tasks_total 1"),
        "{metrics}"
    );
    assert!(receiver.all().is_empty(), "nothing is sent unsigned");

    // The operator fixes the key; the replay goes out signed.
    bad_shutdown.token.cancel();
    bad_shutdown.drain(Duration::from_secs(10)).await;
    let good_shutdown = Shutdown::new();
    let good = spawn_in_process(Service::Deliverer, &env.settings, &good_shutdown).await;
    wait_ready(&good, Duration::from_secs(30)).await;
    assert_eq!(env.replay("acme", &dead).await, 202);
    let delivered = eventually(Duration::from_secs(20), "the replay", || async {
        receiver.requests("/hook").into_iter().next()
    })
    .await;
    let secret = sub["secret"].as_str().expect("secret");
    assert!(standard_signature_valid(&delivered, secret));
    good_shutdown.token.cancel();
}

#[tokio::test]
async fn ingest_with_producer_tokens_answers_401_without_the_right_one() {
    let token = "producer-token-0123456789abcdef";
    let env = TestEnv::start_with(|o| {
        o.settings.ingest.tokens = vec![Secret::new(token)];
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let event = json!({"tenant": "acme", "type": "lead.created", "data": {}});
    for (path, body) in [
        ("/v1/events", event.clone()),
        ("/v1/events/batch", json!({"events": [event.clone()]})),
    ] {
        for auth in [None, Some("Bearer wrong-token-0123456789abcdef")] {
            let mut request = env.http.post(format!("{}{path}", env.ingest)).json(&body);
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            let response = request.send().await.expect("ingest");
            assert_eq!(response.status(), 401, "{path} with {auth:?}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
        let response = env
            .http
            .post(format!("{}{path}", env.ingest))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("ingest");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
}

#[tokio::test]
async fn hop_by_hop_static_headers_are_422() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
        o.ingest = false;
    })
    .await;
    for name in [
        "Connection",
        "Transfer-Encoding",
        "Proxy-Authorization",
        "TE",
        "Upgrade",
    ] {
        let (status, body) = env
            .admin
            .post(
                "/v1/tenants/acme/subscriptions",
                &json!({"url": "http://127.0.0.1:9/h", "event_types": ["*"], "headers": {name: "x"}}),
            )
            .await;
        assert_eq!(status, 422, "{name}: {body}");
        assert_eq!(body["error"]["code"], "invalid_headers", "{name}");
    }
}

/// Runs `hookline <service>` with `env`, expecting it to refuse to start.
fn refused(service: &str, env: &[(&str, &str)]) -> String {
    let output = std::process::Command::new(hookline_binary())
        .arg(service)
        .envs(env.iter().copied())
        .env("HOOKLINE__AMQP__URL", "amqp://guest:guest@127.0.0.1:1/%2f")
        .output()
        .expect("hookline runs");
    assert_eq!(output.status.code(), Some(2), "{service} {env:?} started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_service_on_a_public_address_refuses_development_credentials_naming_the_key() {
    let stderr = refused("api", &[("HOOKLINE__API__LISTEN", "0.0.0.0:0")]);
    assert!(stderr.contains("api.admin_token"), "{stderr}");
    let stderr = refused(
        "deliverer",
        &[
            ("HOOKLINE__DELIVERER__LISTEN", "0.0.0.0:0"),
            (
                "HOOKLINE__API__ADMIN_TOKEN",
                "a-real-admin-token-0123456789",
            ),
            ("HOOKLINE__API__SECRET_KEY", "CHANGE-ME-secret-key"),
        ],
    );
    assert!(stderr.contains("api.secret_key"), "{stderr}");
    let stderr = refused(
        "ingest",
        &[
            ("HOOKLINE__INGEST__LISTEN", "0.0.0.0:0"),
            (
                "HOOKLINE__API__ADMIN_TOKEN",
                "a-real-admin-token-0123456789",
            ),
            ("HOOKLINE__API__SECRET_KEY", "a-real-secret-key-0123456789"),
        ],
    );
    assert!(stderr.contains("ingest.tokens"), "{stderr}");
}

#[tokio::test]
async fn dead_letters_and_parked_messages_are_pruned_past_their_retention() {
    let env = TestEnv::start_with(|o| {
        o.fanout = false;
        o.deliverer = false;
        o.ingest = false;
    })
    .await;
    let pool = sqlx::PgPool::connect(env.settings.database.url.expose())
        .await
        .expect("database");
    for (id, age_days) in [("old", 10), ("new", 0)] {
        sqlx::query(
            "INSERT INTO dead_letters (id, tenant, subscription_id, delivery_id, event_id, event_type, \
             attempts, dead_at, task) VALUES ($1, 'acme', 'sub_x', $1, $1, 'lead.created', 3, \
             now() - make_interval(days => $2), '')",
        )
        .bind(format!("dl_{id}"))
        .bind(age_days)
        .execute(&pool)
        .await
        .expect("dead letter");
        sqlx::query(
            "INSERT INTO parked_messages (id, queue, reason, payload, parked_at) \
             VALUES ($1, 'q', 'r', '', now() - make_interval(days => $2))",
        )
        .bind(format!("pm_{id}"))
        .bind(age_days)
        .execute(&pool)
        .await
        .expect("parked");
    }
    // The running api keeps 30 days; one configured for a day prunes.
    let mut short = env.settings.clone();
    short.api.dead_letter_retention = Duration::from_secs(86400);
    short.api.parked_retention = Duration::from_secs(86400);
    let shutdown = Shutdown::new();
    let _api = api_in_process(&short, &shutdown).await;
    eventually(Duration::from_secs(20), "old rows pruned", || async {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM dead_letters UNION ALL SELECT id FROM parked_messages ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .expect("ids");
        (ids == ["dl_new", "pm_new"]).then_some(())
    })
    .await;
    shutdown.token.cancel();
}

/// A RabbitMQ user made for one test, deleted when dropped.
struct BrokerUser {
    name: String,
}

const MANAGEMENT: &str = "http://127.0.0.1:15672/api";

impl Drop for BrokerUser {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let _ = reqwest::Client::new()
                    .delete(format!("{MANAGEMENT}/users/{name}"))
                    .basic_auth("guest", Some("guest"))
                    .send()
                    .await;
            });
        })
        .join();
    }
}

#[tokio::test]
async fn the_shipped_producer_permissions_publish_events_and_are_refused_on_the_control_exchange() {
    let env = TestEnv::start_with(|o| {
        o.api = false;
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    let definitions: Value =
        serde_json::from_str(include_str!("../../deploy/rabbitmq/definitions.json"))
            .expect("definitions.json");
    let permissions = definitions["permissions"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["user"] == "producer"))
        .expect("producer permissions")
        .clone();
    let user = BrokerUser {
        name: format!(
            "hl_producer_{}",
            ulid::Ulid::new().to_string().to_lowercase()
        ),
    };
    let password = "producer-password-0123456789";
    for (path, body) in [
        (
            format!("{MANAGEMENT}/users/{}", user.name),
            json!({"password": password, "tags": ""}),
        ),
        (
            format!("{MANAGEMENT}/permissions/{}/{}", env.vhost(), user.name),
            json!({"configure": permissions["configure"], "write": permissions["write"],
                   "read": permissions["read"]}),
        ),
    ] {
        let status = env
            .http
            .put(path)
            .basic_auth("guest", Some("guest"))
            .json(&body)
            .send()
            .await
            .expect("management API")
            .status();
        assert!(status.is_success(), "{status}");
    }
    let url = format!(
        "amqp://{}:{password}@127.0.0.1:5672/{}",
        user.name,
        env.vhost()
    );
    let connection = hookline_amqp::connect(&url, "producer")
        .await
        .expect("connect");
    // A refused publish closes its channel (a confirm never comes), so each
    // publish gets a channel of its own and the test watches its state.
    let publish = |exchange: &'static str| {
        let connection = &connection;
        async move {
            let channel = connection.create_channel().await.expect("channel");
            channel
                .confirm_select(Default::default())
                .await
                .expect("confirm mode");
            let confirm = channel
                .basic_publish(
                    exchange.into(),
                    "lead.created".into(),
                    Default::default(),
                    br#"{"tenant":"acme","type":"lead.created","data":{}}"#,
                    lapin::BasicProperties::default().with_delivery_mode(2),
                )
                .await;
            let confirmed = match confirm {
                Ok(confirm) => tokio::time::timeout(Duration::from_secs(5), confirm)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .is_some_and(|c| c.is_ack()),
                Err(_) => false,
            };
            (confirmed, channel)
        }
    };
    let (confirmed, channel) = publish("hookline.events").await;
    assert!(confirmed, "the producer may publish events");
    assert!(channel.status().connected());
    let (confirmed, channel) = publish("hookline.control").await;
    assert!(!confirmed, "a control message was confirmed");
    eventually(
        Duration::from_secs(5),
        "the broker to close the channel that wrote to hookline.control",
        || async { (!channel.status().connected()).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn a_cluster_url_whose_first_node_is_down_connects_to_the_next_and_delivers() {
    let env = TestEnv::start_with(|o| o.deliverer = false).await;
    let mut cluster = env.settings.clone();
    let live = env.amqp_url().to_string();
    let dead_node = live.replace("127.0.0.1:5672", "127.0.0.1:1");
    cluster.amqp.url = Secret::new(format!("{dead_node},{live}"));
    let shutdown = Shutdown::new();
    let deliverer = spawn_in_process(Service::Deliverer, &cluster, &shutdown).await;
    wait_ready(&deliverer, Duration::from_secs(30)).await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/hook"), &["lead.created"])
        .await;
    env.post_event(json!({"tenant": "acme", "type": "lead.created", "data": {}}))
        .await;
    eventually(Duration::from_secs(20), "the delivery", || async {
        receiver.requests("/hook").into_iter().next()
    })
    .await;
    shutdown.token.cancel();
}
