//! Running the real `hookline` binary (end-to-end, signal and crash tests).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use hookline_config::{format_duration, Settings};

/// The `hookline` binary of the profile these tests were built with
/// (`make test` builds it first with `cargo build --release --workspace --bins`).
pub fn hookline_binary() -> PathBuf {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join(profile).join("hookline");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --{profile} --workspace --bins` (make build) first",
        path.display()
    );
    path
}

/// `settings` as `HOOKLINE__…` environment variables, so a child process
/// runs with exactly what an in-process service would.
pub fn settings_env(s: &Settings) -> Vec<(String, String)> {
    let delays: Vec<String> = s
        .delivery
        .retry_delays
        .iter()
        .map(|d| format_duration(*d))
        .collect();
    let networks: Vec<String> = s
        .delivery
        .allowed_networks
        .iter()
        .map(ToString::to_string)
        .collect();
    let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
    [
        ("AMQP__URL", s.amqp.url.expose().to_string()),
        (
            "AMQP__QUEUE_TYPE",
            match s.amqp.queue_type {
                hookline_config::QueueType::Quorum => "quorum".into(),
                hookline_config::QueueType::Classic => "classic".into(),
            },
        ),
        ("AMQP__PUBLISH_TIMEOUT", ms(s.amqp.publish_timeout)),
        ("AMQP__RECONNECT_DELAY", ms(s.amqp.reconnect_delay)),
        ("DATABASE__URL", s.database.url.expose().to_string()),
        ("INGEST__LISTEN", s.ingest.listen.to_string()),
        ("FANOUT__LISTEN", s.fanout.listen.to_string()),
        ("FANOUT__REFRESH_INTERVAL", ms(s.fanout.refresh_interval)),
        ("DELIVERER__LISTEN", s.deliverer.listen.to_string()),
        ("API__LISTEN", s.api.listen.to_string()),
        ("API__ADMIN_TOKEN", s.api.admin_token.expose().to_string()),
        ("API__SECRET_KEY", s.api.secret_key.expose().to_string()),
        (
            "API__PREVIOUS_SECRET_KEYS",
            joined(&s.api.previous_secret_keys),
        ),
        ("INGEST__TOKENS", joined(&s.ingest.tokens)),
        ("INGEST__API_URL", s.ingest.api_url.clone()),
        (
            "API__ALLOW_INSECURE_URLS",
            s.api.allow_insecure_urls.to_string(),
        ),
        ("DELIVERY__RETRY_DELAYS", delays.join(",")),
        ("DELIVERY__TIMEOUT", ms(s.delivery.timeout)),
        ("DELIVERY__ALLOWED_NETWORKS", networks.join(",")),
        ("DELIVERY__CONCURRENCY", s.delivery.concurrency.to_string()),
        (
            "DELIVERY__MAX_BATCH_BYTES",
            s.delivery.max_batch_bytes.to_string(),
        ),
        ("SHUTDOWN__GRACE_PERIOD", ms(s.shutdown.grace_period)),
    ]
    .into_iter()
    .map(|(k, v)| (format!("HOOKLINE__{k}"), v))
    .collect()
}

fn joined(secrets: &[hookline_config::Secret]) -> String {
    secrets
        .iter()
        .map(|s| s.expose())
        .collect::<Vec<_>>()
        .join(",")
}

/// Starts `hookline <service>` with `settings`; output goes to the test's
/// stderr. Kill it (or send SIGTERM) yourself.
pub fn spawn_service(service: &str, settings: &Settings) -> Child {
    Command::new(hookline_binary())
        .arg(service)
        .envs(settings_env(settings))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start hookline")
}

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}
