//! One isolated Hookline per test: its own RabbitMQ vhost and PostgreSQL
//! database, the four services in-process on ephemeral ports, and clean-up
//! of both on drop, so tests run in parallel and leave nothing behind.

use std::time::Duration;

use hookline_amqp::names::EVENTS_EXCHANGE;
use hookline_config::{QueueType, Secret, Settings};
use hookline_runtime::Shutdown;
use lapin::BasicProperties;
use serde_json::Value;

use crate::api_client::{answer, wait_ready, ApiClient};
use crate::eventually;
use crate::faults::probe::publish;
use crate::faults::services::{spawn_in_process, Service};

/// RabbitMQ management API (vhosts are made through it).
const MANAGEMENT: &str = "http://127.0.0.1:15672/api";
/// Where test databases are created.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// The admin token every test env uses.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// What a test may change before the services start.
pub struct TestOptions {
    /// Settings as the services will see them (URLs are filled in).
    pub settings: Settings,
    /// Start the api in-process.
    pub api: bool,
    /// Start ingest in-process.
    pub ingest: bool,
    /// Start fanout in-process.
    pub fanout: bool,
    /// Start the deliverer in-process (tests that run it as a binary, or
    /// test the queues alone, leave it off).
    pub deliverer: bool,
}

/// A running, isolated Hookline.
pub struct TestEnv {
    /// The settings the services run with.
    pub settings: Settings,
    /// `http://127.0.0.1:PORT` of each service.
    pub ingest: String,
    /// Api base URL.
    pub api: String,
    /// Admin requests to `api`.
    pub admin: ApiClient,
    /// Fanout base URL (metrics, health).
    pub fanout: String,
    /// Deliverer base URL (metrics, health); empty when not started.
    pub deliverer: String,
    /// An HTTP client.
    pub http: reqwest::Client,
    vhost: String,
    database: String,
    shutdown: Shutdown,
}

fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Settings for tests: short ladder, loopback allowed, classic queues (the
/// quorum type is exercised by its own test, not created and deleted per test).
pub fn test_settings() -> Settings {
    let mut s = Settings::default();
    s.amqp.queue_type = QueueType::Classic;
    s.amqp.reconnect_delay = Duration::from_millis(200);
    s.amqp.publish_timeout = Duration::from_secs(3);
    s.delivery.retry_delays = vec![Duration::from_secs(1), Duration::from_secs(2)];
    s.delivery.timeout = Duration::from_secs(5);
    s.delivery.allowed_networks = vec!["127.0.0.0/8".parse().expect("cidr")];
    s.api.allow_insecure_urls = true;
    s.api.admin_token = Secret::new(ADMIN_TOKEN);
    s.fanout.refresh_interval = Duration::from_secs(5);
    s.shutdown.grace_period = Duration::from_secs(5);
    s
}

impl TestEnv {
    /// Starts everything with the default test settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A vhost and a database only, no service: for tests that run the
    /// services themselves (as processes) or need nothing migrated yet.
    pub async fn bare() -> Self {
        Self::start_with(|o| {
            o.api = false;
            o.ingest = false;
            o.fanout = false;
            o.deliverer = false;
        })
        .await
    }

    /// Starts everything after `tweak` adjusted the options.
    pub async fn start_with(tweak: impl FnOnce(&mut TestOptions)) -> Self {
        crate::init_tracing();
        let http = reqwest::Client::new();
        let vhost = unique("hl");
        let database = unique("hl");
        create_vhost(&http, &vhost).await;
        create_database(&database).await;
        let mut options = TestOptions {
            settings: test_settings(),
            api: true,
            ingest: true,
            fanout: true,
            deliverer: true,
        };
        tweak(&mut options);
        let mut settings = options.settings;
        settings.amqp.url = Secret::new(format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"));
        settings.database.url = Secret::new(format!("{POSTGRES}/{database}"));

        // All at once, then wait for each to be ready.
        let shutdown = Shutdown::new();
        let mut bases: [String; 4] = Default::default();
        for (service, wanted) in [
            (Service::Api, options.api),
            (Service::Ingest, options.ingest),
            (Service::Fanout, options.fanout),
            (Service::Deliverer, options.deliverer),
        ] {
            if wanted {
                let base = spawn_in_process(service, &settings, &shutdown).await;
                if service == Service::Api {
                    // Ingest reads the catalogue from this api.
                    settings.ingest.api_url.clone_from(&base);
                }
                bases[service as usize] = base;
            }
        }
        for base in bases.iter().filter(|base| !base.is_empty()) {
            wait_ready(base, Duration::from_secs(30)).await;
        }
        let [api, ingest, fanout, deliverer] = bases;
        Self {
            settings,
            admin: ApiClient::new(http.clone(), &api),
            ingest,
            api,
            fanout,
            deliverer,
            http,
            vhost,
            database,
            shutdown,
        }
    }

    /// `POST` JSON to the api as admin; returns status and body. Creating a
    /// subscription returns once fanout has loaded it (the contract gives a
    /// change up to 1 s), so an event sent next is matched.
    pub async fn api_post(&self, path: &str, body: Value) -> (u16, Value) {
        let creates_subscription = path.ends_with("/subscriptions");
        let loaded_before = if creates_subscription {
            self.fanout_loaded().await
        } else {
            0
        };
        let (status, body) = self.admin.post(path, &body).await;
        if creates_subscription && status == 201 {
            self.wait_fanout_loaded_over(loaded_before).await;
        }
        (status, body)
    }

    /// `hookline_fanout_subscriptions_loaded` of the in-process fanout.
    pub async fn fanout_loaded(&self) -> i64 {
        if self.fanout.is_empty() {
            return 0;
        }
        self.metrics(&self.fanout)
            .await
            .lines()
            .find_map(|line| line.strip_prefix("hookline_fanout_subscriptions_loaded "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until the in-process fanout (if any) holds more than `before`
    /// subscriptions.
    pub async fn wait_fanout_loaded_over(&self, before: i64) {
        if self.fanout.is_empty() {
            return;
        }
        eventually(
            Duration::from_secs(30),
            "fanout to load the new subscription",
            || async { (self.fanout_loaded().await > before).then_some(()) },
        )
        .await;
    }

    /// `GET` from the api as admin.
    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        self.admin.get(path).await
    }

    /// Creates a subscription and returns it (with its secret), once fanout
    /// has loaded it.
    pub async fn subscribe(&self, tenant: &str, url: &str, event_types: &[&str]) -> Value {
        let loaded_before = self.fanout_loaded().await;
        let created = self.admin.subscribe(tenant, "test", url, event_types).await;
        self.wait_fanout_loaded_over(loaded_before).await;
        created
    }

    /// `POST /v1/events` to ingest.
    pub async fn post_event(&self, event: Value) -> (u16, Value) {
        self.ingest_post("/v1/events", &event).await
    }

    /// `POST` JSON to ingest at `path`; returns status and body.
    pub async fn ingest_post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.ingest))
            .json(body)
            .send()
            .await
            .expect("ingest reachable");
        answer(response).await
    }

    /// Publishes raw bytes to `hookline.events` like any AMQP producer would.
    pub async fn publish_amqp(&self, routing_key: &str, body: &[u8]) {
        let properties = BasicProperties::default()
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        publish(
            self.amqp_url(),
            EVENTS_EXCHANGE,
            routing_key,
            body,
            properties,
        )
        .await;
    }

    /// The AMQP URL of this env's vhost.
    pub fn amqp_url(&self) -> &str {
        self.settings.amqp.url.expose()
    }

    /// Text of a service's `/metrics`.
    pub async fn metrics(&self, base: &str) -> String {
        self.http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics reachable")
            .text()
            .await
            .unwrap_or_default()
    }

    /// Waits until nothing more can arrive at a receiver: no message waits
    /// in any queue of the pipeline (events, first attempts, the ladder,
    /// retries, attempt records) and no send is in flight. Tests assert that
    /// something did *not* happen after this, instead of after a sleep:
    /// a stray retry or duplicate would still be in a queue or on the wire.
    pub async fn wait_nothing_pending(&self, timeout: Duration) {
        let deliverers: Vec<&str> = [self.deliverer.as_str()]
            .into_iter()
            .filter(|base| !base.is_empty())
            .collect();
        self.wait_nothing_pending_on(&deliverers, timeout).await
    }

    /// [`Self::wait_nothing_pending`] with deliverers started by the test
    /// (their base URLs) instead of the env's own.
    pub async fn wait_nothing_pending_on(&self, deliverers: &[&str], timeout: Duration) {
        use hookline_amqp::names::{
            wait_queue, ATTEMPTS_QUEUE, DELIVERIES_QUEUE, EVENTS_QUEUE, RETRY_QUEUE,
        };
        let mut queues = vec![
            EVENTS_QUEUE.to_string(),
            DELIVERIES_QUEUE.to_string(),
            RETRY_QUEUE.to_string(),
            ATTEMPTS_QUEUE.to_string(),
        ];
        queues.extend(
            self.settings
                .delivery
                .retry_delays
                .iter()
                .map(|d| wait_queue(*d)),
        );
        eventually(timeout, "nothing pending in the pipeline", || async {
            // Slow lanes come and go; their names (unlike their counts) are
            // current in the management API.
            let listed: Value = self
                .http
                .get(format!("{MANAGEMENT}/queues/{}?columns=name", self.vhost))
                .basic_auth("guest", Some("guest"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let lanes = listed
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|q| q["name"].as_str())
                .filter(|name| name.starts_with("hookline.lane."))
                .map(str::to_string);
            let names: Vec<String> = queues.iter().cloned().chain(lanes).collect();
            if ready_in_any(self.amqp_url(), &names).await {
                return None;
            }
            for base in deliverers {
                let text = self.metrics(base).await;
                let inflight =
                    crate::faults::probe::metric_sum(&text, "hookline_inflight_deliveries", &[]);
                if inflight > 0.0 {
                    return None;
                }
            }
            Some(())
        })
        .await
    }

    /// The newest dead letter of `tenant`, once there is one.
    pub async fn first_dead_letter(&self, tenant: &str, timeout: Duration) -> Value {
        eventually(timeout, "a dead letter", || async {
            let (_, page) = self
                .api_get(&format!("/v1/tenants/{tenant}/dead-letters"))
                .await;
            page["data"].as_array().and_then(|d| d.first().cloned())
        })
        .await
    }

    /// Replays the dead letter `dead` of `tenant`; returns the HTTP status.
    pub async fn replay(&self, tenant: &str, dead: &Value) -> u16 {
        let id = dead["id"].as_str().expect("a dead letter has an id");
        let path = format!("/v1/tenants/{tenant}/dead-letters/{id}/replay");
        self.api_post(&path, serde_json::json!({})).await.0
    }

    /// This env's RabbitMQ vhost.
    pub fn vhost(&self) -> &str {
        &self.vhost
    }

    /// This env's PostgreSQL database name.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// The bodies of the messages now in `queue`, read through the
    /// management API and put back (as an operator inspecting a queue would).
    pub async fn peek_queue(&self, queue: &str) -> Vec<Vec<u8>> {
        use base64::Engine as _;
        let response = self
            .http
            .post(format!("{MANAGEMENT}/queues/{}/{queue}/get", self.vhost))
            .basic_auth("guest", Some("guest"))
            .json(&serde_json::json!({
                "count": 100, "ackmode": "ack_requeue_true", "encoding": "base64"
            }))
            .send()
            .await
            .expect("management API");
        let messages: Vec<Value> = response.json().await.unwrap_or_default();
        messages
            .iter()
            .filter_map(|m| m["payload"].as_str())
            .filter_map(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
            .collect()
    }

    /// Stops the services and waits for them to drain.
    pub async fn stop(&self) {
        self.shutdown.drain(Duration::from_secs(10)).await;
    }
}

async fn create_vhost(http: &reqwest::Client, vhost: &str) {
    let status = http
        .put(format!("{MANAGEMENT}/vhosts/{vhost}"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .expect("RabbitMQ management API reachable (run scripts/services.sh)")
        .status();
    assert!(status.is_success(), "create vhost: {status}");
    let status = http
        .put(format!("{MANAGEMENT}/permissions/{vhost}/guest"))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({ "configure": ".*", "write": ".*", "read": ".*" }))
        .send()
        .await
        .expect("management API")
        .status();
    assert!(status.is_success(), "vhost permissions: {status}");
}

async fn create_database(name: &str) {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres"))
        .await
        .expect("PostgreSQL reachable (run scripts/services.sh)");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut connection)
        .await
        .expect("create database");
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        self.shutdown.token.cancel();
        let (vhost, database) = (self.vhost.clone(), self.database.clone());
        // Clean-up needs async clients; run it on a runtime of its own so it
        // also happens when a test panics.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let http = reqwest::Client::new();
                let _ = http
                    .delete(format!("{MANAGEMENT}/vhosts/{vhost}"))
                    .basic_auth("guest", Some("guest"))
                    .send()
                    .await;
                use sqlx::Connection;
                if let Ok(mut c) =
                    sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres")).await
                {
                    let _ = sqlx::query(&format!(
                        "DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)"
                    ))
                    .execute(&mut c)
                    .await;
                }
            });
        })
        .join();
    }
}

/// Whether any of `queues` holds a ready message; a queue that is gone
/// (a lane deleted meanwhile) holds none.
async fn ready_in_any(url: &str, queues: &[String]) -> bool {
    use lapin::options::QueueDeclareOptions;
    let connection = hookline_amqp::connect(url, "test-drain-probe")
        .await
        .expect("connect");
    let mut any = false;
    for queue in queues {
        // A refused passive declare closes its channel: one per queue.
        let channel = connection.create_channel().await.expect("channel");
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        if let Ok(declared) = channel
            .queue_declare(
                queue.as_str().into(),
                passive,
                lapin::types::FieldTable::default(),
            )
            .await
        {
            any |= declared.message_count() > 0;
        }
    }
    let _ = connection.close(200, "done".into()).await;
    any
}
