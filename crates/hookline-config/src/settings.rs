//! The configuration sections and their defaults.
//!
//! Every section refuses keys it does not know (a typo must not pass for a
//! default) and takes its defaults for the keys it is not given.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::de;
use crate::secret::Secret;

/// Everything any service may read; each service takes the sections it needs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// RabbitMQ connection and topology.
    pub amqp: AmqpSettings,
    /// PostgreSQL (api and fanout only).
    pub database: DatabaseSettings,
    /// The ingest service.
    pub ingest: IngestSettings,
    /// The fanout service.
    pub fanout: FanoutSettings,
    /// The deliverer service's own listener.
    pub deliverer: DelivererSettings,
    /// How deliveries are sent and retried (deliverer, and the api's test sends).
    pub delivery: DeliverySettings,
    /// The control-plane api.
    pub api: ApiSettings,
    /// `log.*`: shared by every service so their lines look alike.
    pub log: LogSettings,
    /// `shutdown.*`: how long SIGTERM waits for in-flight work.
    pub shutdown: ShutdownSettings,
    /// Limits of every HTTP listener (ingest, the api, the ops ports).
    pub http: HttpSettings,
    /// `telemetry.*`: OpenTelemetry trace export, off unless an endpoint is set.
    pub telemetry: TelemetrySettings,
}

/// Where spans go. Off by default: a trace exporter that nobody reads
/// costs a thread and a connection per process.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The collector's OTLP/HTTP URL (`http://collector:4318`); `/v1/traces`
    /// is added when the URL has no path. Empty: no export.
    #[serde(deserialize_with = "de::optional_http_url")]
    pub otlp_endpoint: Option<String>,
}

/// What one client may hold of an HTTP listener: a slow or idle client
/// costs a connection slot for at most these times.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// A request's headers must arrive within this, and an idle keep-alive
    /// connection is closed after it.
    #[serde(deserialize_with = "de::duration")]
    pub header_read_timeout: Duration,
    /// A whole request, body read and handler included, must finish within
    /// this (`408` otherwise).
    #[serde(deserialize_with = "de::duration")]
    pub request_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    #[serde(deserialize_with = "de::count")]
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Which RabbitMQ queue type carries Hookline's queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueType {
    /// Replicated Raft queues; with at-least-once dead-lettering a task in a
    /// wait queue survives a broker restart and the move back to work.
    Quorum,
    /// Classic durable queues: persistent messages survive a restart, but
    /// dead-lettering out of a wait queue is at-most-once.
    Classic,
}

/// RabbitMQ settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpSettings {
    /// `amqp://user:pass@host:port/vhost`.
    pub url: Secret,
    /// Queue type for every queue Hookline declares.
    #[serde(deserialize_with = "de::trimmed")]
    pub queue_type: QueueType,
    /// How long a publish may wait for its confirm before the caller gives up
    /// (ingest answers 503): a broker under a memory alarm never confirms.
    #[serde(deserialize_with = "de::duration")]
    pub publish_timeout: Duration,
    /// Outstanding unconfirmed publishes per channel.
    #[serde(deserialize_with = "de::count")]
    pub confirm_window: usize,
    /// Delay between reconnection attempts.
    #[serde(deserialize_with = "de::duration")]
    pub reconnect_delay: Duration,
    /// A PEM file of CA certificates that `amqps://` nodes may be signed by,
    /// besides the system's roots (a private CA, a managed broker's own).
    #[serde(deserialize_with = "de::optional_path")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// PostgreSQL settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user@host:port/db`.
    pub url: Secret,
    /// Pool size per api replica; PostgreSQL's `max_connections` must cover
    /// every replica's pool.
    #[serde(deserialize_with = "de::count")]
    pub max_connections: u32,
}

/// `ingest.*`: the HTTP front door's limits and producer tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// HTTP API and `/metrics`.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// Largest accepted request body for one event.
    #[serde(deserialize_with = "de::count")]
    pub max_event_bytes: usize,
    /// Most events in one batch request.
    #[serde(deserialize_with = "de::count")]
    pub max_batch_events: usize,
    /// Bearer tokens producers must present on `/v1/events`; empty means no
    /// check, which is refused off loopback unless `allow_anonymous`.
    #[serde(deserialize_with = "de::secrets")]
    pub tokens: Vec<Secret>,
    /// Accept events without a token on a non-loopback listener (a private
    /// network that authenticates by other means).
    #[serde(deserialize_with = "de::flag")]
    pub allow_anonymous: bool,
    /// The api that ingest reads the event type catalogue from (with
    /// `api.admin_token`), so ingest needs no database; empty means
    /// `http://<api.listen>`, right when both run on one host.
    #[serde(deserialize_with = "de::text")]
    pub api_url: String,
    /// Full reload of the catalogue, a safety net behind the pushed change
    /// notifications.
    #[serde(deserialize_with = "de::duration")]
    pub catalogue_refresh: Duration,
    /// The address senders reach ingest at, from which the api builds each
    /// source's URL (`<public_url>/v1/in/<token>`); empty means
    /// `http://<ingest.listen>`, right for one machine only.
    #[serde(deserialize_with = "de::text")]
    pub public_url: String,
    /// Requests per second one source may make to one ingest (a token
    /// bucket with a burst of the same size); beyond it `429` with
    /// `Retry-After`. `0` turns the limit off.
    #[serde(deserialize_with = "de::count")]
    pub source_rate_limit: u32,
}

impl IngestSettings {
    /// `ingest.api_url`, or the api's own listener when it is empty.
    pub fn api_url(&self, api: &ApiSettings) -> String {
        let url = self.api_url.trim().trim_end_matches('/');
        if url.is_empty() {
            format!("http://{}", api.listen)
        } else {
            url.to_string()
        }
    }

    /// `ingest.public_url`, or this ingest's own listener when it is empty.
    pub fn public_url(&self) -> String {
        let url = self.public_url.trim().trim_end_matches('/');
        if url.is_empty() {
            format!("http://{}", self.listen)
        } else {
            url.to_string()
        }
    }
}

/// `fanout.*`: matching throughput and how subscriptions are reloaded.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FanoutSettings {
    /// `/metrics` and health.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// Unacked events one fanout holds; bounds memory and the confirm window.
    #[serde(deserialize_with = "de::prefetch")]
    pub prefetch: u16,
    /// Full reload of the subscription index, a safety net behind the pushed
    /// change notifications.
    #[serde(deserialize_with = "de::duration")]
    pub refresh_interval: Duration,
}

/// Deliverer listener settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DelivererSettings {
    /// `/metrics` and health.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
}

/// `delivery.*`: the deliverer's HTTP client, ladder and per-endpoint fairness.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Waits between attempts; `len + 1` attempts in all.
    #[serde(deserialize_with = "de::durations")]
    pub retry_delays: Vec<Duration>,
    /// Total deadline for one attempt, body included.
    #[serde(deserialize_with = "de::duration")]
    pub timeout: Duration,
    /// Networks the SSRF guard lets through although private or loopback.
    #[serde(deserialize_with = "de::networks")]
    pub allowed_networks: Vec<IpNet>,
    /// Also publish successes to `hookline.outcomes`.
    #[serde(deserialize_with = "de::flag")]
    pub publish_successes: bool,
    /// Concurrent sends per deliverer.
    #[serde(deserialize_with = "de::count")]
    pub concurrency: usize,
    /// Share of `concurrency` (percent) that retries may use, so a retry storm
    /// cannot starve first attempts.
    #[serde(deserialize_with = "de::percent")]
    pub retry_share_percent: u8,
    /// Concurrent sends to one subscription per deliverer; more wait in the
    /// retry ladder instead of holding a worker slot.
    #[serde(deserialize_with = "de::count")]
    pub max_inflight_per_subscription: usize,
    /// Bytes of a response body kept as the attempt's error excerpt.
    #[serde(deserialize_with = "de::count")]
    pub response_excerpt_bytes: usize,
    /// Slow lanes one deliverer consumes at once; bounds their memory.
    #[serde(deserialize_with = "de::count")]
    pub max_lanes: usize,
    /// Largest body of one batch (`batch` option): a batch that would pass
    /// it is sent earlier, so a receiver's body limit is never met.
    #[serde(deserialize_with = "de::count")]
    pub max_batch_bytes: usize,
}

/// `api.*`: the control plane's listener, tokens, keys and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// HTTP API and `/metrics`.
    #[serde(deserialize_with = "de::socket_addr")]
    pub listen: SocketAddr,
    /// Bearer token with access to every tenant.
    pub admin_token: Secret,
    /// Accept `http://` subscription URLs (tests, local development).
    #[serde(deserialize_with = "de::flag")]
    pub allow_insecure_urls: bool,
    /// Subscriptions one tenant may have.
    #[serde(deserialize_with = "de::count")]
    pub max_subscriptions_per_tenant: u32,
    /// Inbound sources a tenant may have; one more is `409`.
    #[serde(deserialize_with = "de::count")]
    pub max_sources_per_tenant: u32,
    /// How long a rotated-out secret keeps signing.
    #[serde(deserialize_with = "de::duration")]
    pub secret_rotation_overlap: Duration,
    /// How long a verification challenge's token stays good: long enough
    /// for a person to paste it by hand, short enough that an old token
    /// found in a log is worthless.
    #[serde(deserialize_with = "de::duration")]
    pub verification_ttl: Duration,
    /// Age after which attempt records are pruned.
    #[serde(deserialize_with = "de::duration")]
    pub attempt_retention: Duration,
    /// Age after which dead letters are pruned; they hold event bodies, so
    /// they must not outlive what the operator promised to keep.
    #[serde(deserialize_with = "de::duration")]
    pub dead_letter_retention: Duration,
    /// Age after which raw parked messages are pruned.
    #[serde(deserialize_with = "de::duration")]
    pub parked_retention: Duration,
    /// Root of the keys that seal signing secrets and static headers, in the
    /// database and in tasks on the broker (api and deliverer).
    pub secret_key: Secret,
    /// Keys rotated out of `secret_key`: they still open old sealed values
    /// but never seal new ones (see the README's key rotation steps).
    #[serde(deserialize_with = "de::secrets")]
    pub previous_secret_keys: Vec<Secret>,
    /// Largest JSON request body.
    #[serde(deserialize_with = "de::count")]
    pub max_body_bytes: usize,
    /// Most static headers on one subscription.
    #[serde(deserialize_with = "de::count")]
    pub max_headers: usize,
    /// Test sends and replays one tenant may make a minute: each is a real
    /// request to a customer's endpoint.
    #[serde(deserialize_with = "de::count")]
    pub manual_sends_per_minute: u32,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line, for log shippers.
    Json,
    /// Human-readable, for terminals.
    Pretty,
}

/// `log.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `json` for log shippers, `pretty` for a terminal.
    #[serde(deserialize_with = "de::trimmed")]
    pub format: LogFormat,
    /// Default filter when `RUST_LOG` is unset.
    #[serde(deserialize_with = "de::text")]
    pub level: String,
}

/// `shutdown.*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// How long in-flight work may take to drain after SIGTERM.
    #[serde(deserialize_with = "de::duration")]
    pub grace_period: Duration,
}

/// The built-in `api.admin_token`: fine on loopback, refused elsewhere.
pub const DEV_ADMIN_TOKEN: &str = "hookline-dev-admin-token";
/// The built-in `api.secret_key`: fine on loopback, refused elsewhere.
pub const DEV_SECRET_KEY: &str = "hookline-dev-secret-key-change-me";

fn addr(text: &str) -> SocketAddr {
    text.parse().expect("built-in listen address")
}

impl Default for AmqpSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("amqp://guest:guest@127.0.0.1:5672/%2f"),
            queue_type: QueueType::Quorum,
            publish_timeout: Duration::from_secs(5),
            confirm_window: 1024,
            reconnect_delay: Duration::from_secs(1),
            ca_file: None,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: Secret::new("postgres://postgres@127.0.0.1:5432/hookline"),
            max_connections: 10,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            listen: addr("127.0.0.1:8080"),
            max_event_bytes: 256 * 1024,
            max_batch_events: 1000,
            tokens: Vec::new(),
            allow_anonymous: false,
            api_url: String::new(),
            catalogue_refresh: Duration::from_secs(30),
            public_url: String::new(),
            source_rate_limit: 50,
        }
    }
}

impl Default for FanoutSettings {
    fn default() -> Self {
        Self {
            listen: addr("127.0.0.1:9101"),
            prefetch: 256,
            refresh_interval: Duration::from_secs(30),
        }
    }
}

impl Default for DelivererSettings {
    fn default() -> Self {
        Self {
            listen: addr("127.0.0.1:9102"),
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            retry_delays: ["5s", "30s", "2m", "10m", "1h", "6h"]
                .iter()
                .map(|d| crate::parse_duration(d).expect("built-in delay"))
                .collect(),
            timeout: Duration::from_secs(10),
            allowed_networks: Vec::new(),
            publish_successes: false,
            concurrency: 128,
            retry_share_percent: 25,
            max_inflight_per_subscription: 32,
            response_excerpt_bytes: 1024,
            max_lanes: 64,
            max_batch_bytes: 1 << 20,
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: addr("127.0.0.1:8081"),
            admin_token: Secret::new(DEV_ADMIN_TOKEN),
            allow_insecure_urls: false,
            max_subscriptions_per_tenant: 10,
            max_sources_per_tenant: 20,
            secret_rotation_overlap: Duration::from_secs(24 * 3600),
            verification_ttl: Duration::from_secs(24 * 3600),
            attempt_retention: Duration::from_secs(30 * 86400),
            dead_letter_retention: Duration::from_secs(30 * 86400),
            parked_retention: Duration::from_secs(30 * 86400),
            secret_key: Secret::new(DEV_SECRET_KEY),
            previous_secret_keys: Vec::new(),
            max_body_bytes: 64 * 1024,
            max_headers: 20,
            manual_sends_per_minute: 60,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(30),
        }
    }
}
