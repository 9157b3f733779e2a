//! Layering and parsing: defaults, then the TOML file, then the environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use config::{Environment, File, FileFormat, Source, Value, ValueKind};

use crate::settings::{LogFormat, QueueType, Secret, Settings};
use crate::{parse_duration, parse_duration_list};

/// Why the configuration could not be loaded; always names the key or file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or is not valid TOML.
    #[error("configuration file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A value is malformed or out of range.
    #[error("{key}: {message}")]
    Invalid {
        /// Dotted key, e.g. `delivery.retry_delays`.
        key: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// A key Hookline does not know (most often a typo).
    #[error("{key}: unknown configuration key")]
    Unknown {
        /// The dotted key.
        key: String,
    },
}

/// Loads from `HOOKLINE_CONFIG` or the given file, then the process
/// environment.
pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
    let from_env = std::env::var("HOOKLINE_CONFIG").ok();
    let file = file.map(Path::to_path_buf).or(from_env.map(Into::into));
    let env: BTreeMap<String, String> = std::env::vars().collect();
    load_from(file.as_deref(), &env)
}

/// Loads from an optional file and an explicit environment map; tests pass
/// their own map instead of mutating the process environment.
pub fn load_from(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Settings, ConfigError> {
    let mut values = BTreeMap::new();
    if let Some(path) = file {
        let source = File::from(path.to_path_buf()).format(FileFormat::Toml);
        let map = source.collect().map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        flatten("", map, &mut values);
    }
    let env_source = Environment::with_prefix("HOOKLINE")
        .prefix_separator("__")
        .separator("__")
        .source(Some(env.clone().into_iter().collect()));
    let map = env_source.collect().map_err(|e| ConfigError::Invalid {
        key: "environment".into(),
        message: e.to_string(),
    })?;
    flatten("", map, &mut values);

    let mut settings = Settings::default();
    for (key, value) in values {
        apply(&mut settings, &key, &value)?;
    }
    validate(&settings)?;
    Ok(settings)
}

/// Turns nested tables into dotted keys with string values (arrays joined by
/// commas, as the environment writes them).
fn flatten(prefix: &str, map: config::Map<String, Value>, out: &mut BTreeMap<String, String>) {
    for (key, value) in map {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value.kind {
            ValueKind::Table(table) => flatten(&key, table, out),
            ValueKind::Array(items) => {
                let joined: Vec<String> = items
                    .into_iter()
                    .filter_map(|v| v.into_string().ok())
                    .collect();
                out.insert(key, joined.join(","));
            }
            _ => {
                out.insert(key, value.into_string().unwrap_or_default());
            }
        }
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

fn parsed<T: FromStr>(key: &str, value: &str, expected: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(key, format!("`{value}` is not {expected}")))
}

fn duration(key: &str, value: &str) -> Result<std::time::Duration, ConfigError> {
    parse_duration(value).map_err(|m| invalid(key, m))
}

fn boolean(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(key, format!("`{value}` is not true or false"))),
    }
}

/// A comma-separated list of secrets, blanks dropped.
fn secret_list(value: &str) -> Vec<Secret> {
    value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .collect()
}

fn apply(s: &mut Settings, key: &str, v: &str) -> Result<(), ConfigError> {
    const ADDR: &str = "a socket address such as 127.0.0.1:8080";
    const COUNT: &str = "a whole number";
    match key {
        "amqp.url" => s.amqp.url = Secret::new(v),
        "amqp.queue_type" => {
            s.amqp.queue_type = match v.trim() {
                "quorum" => QueueType::Quorum,
                "classic" => QueueType::Classic,
                _ => return Err(invalid(key, format!("`{v}` is not quorum or classic"))),
            }
        }
        "amqp.publish_timeout" => s.amqp.publish_timeout = duration(key, v)?,
        "amqp.confirm_window" => s.amqp.confirm_window = parsed(key, v, COUNT)?,
        "amqp.reconnect_delay" => s.amqp.reconnect_delay = duration(key, v)?,
        "amqp.ca_file" => {
            let path = v.trim();
            s.amqp.ca_file = (!path.is_empty()).then(|| path.into());
        }
        "database.url" => s.database.url = Secret::new(v),
        "database.max_connections" => s.database.max_connections = parsed(key, v, COUNT)?,
        "ingest.listen" => s.ingest.listen = parsed(key, v, ADDR)?,
        "ingest.max_event_bytes" => s.ingest.max_event_bytes = parsed(key, v, COUNT)?,
        "ingest.max_batch_events" => s.ingest.max_batch_events = parsed(key, v, COUNT)?,
        "ingest.tokens" => s.ingest.tokens = secret_list(v),
        "ingest.allow_anonymous" => s.ingest.allow_anonymous = boolean(key, v)?,
        "fanout.listen" => s.fanout.listen = parsed(key, v, ADDR)?,
        "fanout.prefetch" => s.fanout.prefetch = parsed(key, v, "a number from 1 to 65535")?,
        "fanout.refresh_interval" => s.fanout.refresh_interval = duration(key, v)?,
        "deliverer.listen" => s.deliverer.listen = parsed(key, v, ADDR)?,
        "delivery.retry_delays" => {
            s.delivery.retry_delays = parse_duration_list(v).map_err(|m| invalid(key, m))?
        }
        "delivery.timeout" => s.delivery.timeout = duration(key, v)?,
        "delivery.allowed_networks" => {
            s.delivery.allowed_networks = v
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| {
                    n.parse().map_err(|_| {
                        invalid(key, format!("`{n}` is not a CIDR such as 127.0.0.0/8"))
                    })
                })
                .collect::<Result<_, _>>()?
        }
        "delivery.publish_successes" => s.delivery.publish_successes = boolean(key, v)?,
        "delivery.concurrency" => s.delivery.concurrency = parsed(key, v, COUNT)?,
        "delivery.retry_share_percent" => {
            s.delivery.retry_share_percent = parsed(key, v, "a percentage from 1 to 100")?
        }
        "delivery.max_inflight_per_subscription" => {
            s.delivery.max_inflight_per_subscription = parsed(key, v, COUNT)?
        }
        "delivery.max_lanes" => s.delivery.max_lanes = parsed(key, v, COUNT)?,
        "delivery.response_excerpt_bytes" => {
            s.delivery.response_excerpt_bytes = parsed(key, v, COUNT)?
        }
        "api.listen" => s.api.listen = parsed(key, v, ADDR)?,
        "api.admin_token" => s.api.admin_token = Secret::new(v),
        "api.allow_insecure_urls" => s.api.allow_insecure_urls = boolean(key, v)?,
        "api.max_subscriptions_per_tenant" => {
            s.api.max_subscriptions_per_tenant = parsed(key, v, COUNT)?
        }
        "api.secret_rotation_overlap" => s.api.secret_rotation_overlap = duration(key, v)?,
        "api.attempt_retention" => s.api.attempt_retention = duration(key, v)?,
        "api.dead_letter_retention" => s.api.dead_letter_retention = duration(key, v)?,
        "api.parked_retention" => s.api.parked_retention = duration(key, v)?,
        "api.secret_key" => s.api.secret_key = Secret::new(v),
        "api.previous_secret_keys" => s.api.previous_secret_keys = secret_list(v),
        "api.max_body_bytes" => s.api.max_body_bytes = parsed(key, v, COUNT)?,
        "api.max_headers" => s.api.max_headers = parsed(key, v, COUNT)?,
        "api.manual_sends_per_minute" => s.api.manual_sends_per_minute = parsed(key, v, COUNT)?,
        "log.format" => {
            s.log.format = match v.trim() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                _ => return Err(invalid(key, format!("`{v}` is not json or pretty"))),
            }
        }
        "log.level" => s.log.level = v.to_string(),
        "shutdown.grace_period" => s.shutdown.grace_period = duration(key, v)?,
        "http.header_read_timeout" => s.http.header_read_timeout = duration(key, v)?,
        "http.request_timeout" => s.http.request_timeout = duration(key, v)?,
        "http.max_connections" => s.http.max_connections = parsed(key, v, COUNT)?,
        _ => return Err(ConfigError::Unknown { key: key.into() }),
    }
    Ok(())
}

/// Cross-field and range checks that parsing alone cannot make.
fn validate(s: &Settings) -> Result<(), ConfigError> {
    let nodes: Vec<&str> = s
        .amqp
        .url
        .expose()
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if nodes.is_empty()
        || nodes
            .iter()
            .any(|n| !(n.starts_with("amqp://") || n.starts_with("amqps://")))
    {
        return Err(invalid(
            "amqp.url",
            "every comma-separated node must start with amqp:// or amqps://",
        ));
    }
    if let Some(path) = &s.amqp.ca_file {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            invalid(
                "amqp.ca_file",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(invalid(
                "amqp.ca_file",
                format!("{} holds no PEM certificate", path.display()),
            ));
        }
    }
    let db = s.database.url.expose();
    if !(db.starts_with("postgres://") || db.starts_with("postgresql://")) {
        return Err(invalid("database.url", "must start with postgres://"));
    }
    if s.delivery.retry_delays.iter().any(|d| d.is_zero()) {
        return Err(invalid(
            "delivery.retry_delays",
            "every delay must be above zero",
        ));
    }
    // Deliverers learn of deletes and PATCHes made while they were down from
    // the control log (hookline.control.log), which keeps 7 days: a task
    // must finish its ladder well within that.
    let ladder: Duration = s.delivery.retry_delays.iter().sum();
    if ladder > Duration::from_secs(6 * 86_400) {
        return Err(invalid(
            "delivery.retry_delays",
            "the whole ladder must be at most 6 days (the control log keeps changes for 7)",
        ));
    }
    if s.delivery.timeout.is_zero() {
        return Err(invalid("delivery.timeout", "must be above zero"));
    }
    if s.delivery.concurrency == 0 {
        return Err(invalid("delivery.concurrency", "must be at least 1"));
    }
    if !(1..=100).contains(&s.delivery.retry_share_percent) {
        return Err(invalid(
            "delivery.retry_share_percent",
            "must be from 1 to 100",
        ));
    }
    if s.delivery.max_inflight_per_subscription == 0 {
        return Err(invalid(
            "delivery.max_inflight_per_subscription",
            "must be at least 1",
        ));
    }
    if s.delivery.max_lanes == 0 {
        return Err(invalid("delivery.max_lanes", "must be at least 1"));
    }
    if s.api.manual_sends_per_minute == 0 {
        return Err(invalid("api.manual_sends_per_minute", "must be at least 1"));
    }
    if s.http.max_connections == 0 {
        return Err(invalid("http.max_connections", "must be at least 1"));
    }
    for (key, value) in [
        ("http.header_read_timeout", s.http.header_read_timeout),
        ("http.request_timeout", s.http.request_timeout),
    ] {
        if value.is_zero() {
            return Err(invalid(key, "must be above zero"));
        }
    }
    if s.fanout.prefetch == 0 {
        return Err(invalid("fanout.prefetch", "must be at least 1"));
    }
    if s.amqp.confirm_window == 0 {
        return Err(invalid("amqp.confirm_window", "must be at least 1"));
    }
    if s.api.admin_token.expose().len() < 16 {
        return Err(invalid("api.admin_token", "must be at least 16 characters"));
    }
    if s.api.secret_key.expose().len() < 16 {
        return Err(invalid("api.secret_key", "must be at least 16 characters"));
    }
    for (i, key) in s.api.previous_secret_keys.iter().enumerate() {
        if key.expose().len() < 16 {
            return Err(invalid(
                "api.previous_secret_keys",
                format!("key {} must be at least 16 characters", i + 1),
            ));
        }
    }
    if let Some(short) = s.ingest.tokens.iter().position(|t| t.expose().len() < 16) {
        return Err(invalid(
            "ingest.tokens",
            format!("token {} must be at least 16 characters", short + 1),
        ));
    }
    if s.ingest.max_batch_events == 0 {
        return Err(invalid("ingest.max_batch_events", "must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load_with_an_empty_environment() {
        let s = load_from(None, &env(&[])).unwrap();
        assert_eq!(s.ingest.listen.port(), 8080);
        assert_eq!(s.delivery.retry_delays.len(), 6);
        assert_eq!(s.amqp.queue_type, QueueType::Quorum);
    }

    #[test]
    fn environment_variables_override_defaults() {
        let s = load_from(
            None,
            &env(&[
                ("HOOKLINE__DELIVERY__RETRY_DELAYS", "1s,2s,3s"),
                ("HOOKLINE__DELIVERY__ALLOWED_NETWORKS", "127.0.0.0/8"),
                ("HOOKLINE__API__ALLOW_INSECURE_URLS", "true"),
                ("HOOKLINE__AMQP__QUEUE_TYPE", "classic"),
                ("UNRELATED", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(
            s.delivery.retry_delays,
            vec![
                Duration::from_secs(1),
                Duration::from_secs(2),
                Duration::from_secs(3)
            ]
        );
        assert_eq!(s.delivery.allowed_networks.len(), 1);
        assert!(s.api.allow_insecure_urls);
        assert_eq!(s.amqp.queue_type, QueueType::Classic);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = load_from(None, &env(&[("HOOKLINE__DELIVERY__TIMEOUT", "soon")])).unwrap_err();
        assert!(err.to_string().starts_with("delivery.timeout:"), "{err}");
        let err = load_from(None, &env(&[("HOOKLINE__INGEST__LISTEN", "nowhere")])).unwrap_err();
        assert!(err.to_string().starts_with("ingest.listen:"), "{err}");
    }

    #[test]
    fn amqp_url_may_list_cluster_nodes_and_each_is_checked() {
        let two = "amqp://a:5672/%2f,amqp://b:5672/%2f";
        let s = load_from(None, &env(&[("HOOKLINE__AMQP__URL", two)])).unwrap();
        assert_eq!(s.amqp.url.expose(), two);
        let err = load_from(
            None,
            &env(&[("HOOKLINE__AMQP__URL", "amqp://a:5672/%2f,http://b")]),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("amqp.url:"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_refused_by_name() {
        let err = load_from(None, &env(&[("HOOKLINE__DELIVERY__TIMEOTU", "5s")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "delivery.timeotu: unknown configuration key"
        );
    }

    #[test]
    fn a_toml_file_is_read_and_the_environment_wins_over_it() {
        let dir = std::env::temp_dir().join(format!("hookline-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hookline.toml");
        std::fs::write(
            &path,
            "[delivery]\nretry_delays = [\"1s\", \"2s\"]\ntimeout = \"3s\"\n[api]\nmax_subscriptions_per_tenant = 3\n",
        )
        .unwrap();
        let s = load_from(Some(&path), &env(&[("HOOKLINE__DELIVERY__TIMEOUT", "4s")])).unwrap();
        assert_eq!(s.delivery.retry_delays.len(), 2);
        assert_eq!(s.delivery.timeout, Duration::from_secs(4));
        assert_eq!(s.api.max_subscriptions_per_tenant, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::default();
        assert!(!format!("{:?}", s).contains("guest:guest"));
    }
}
