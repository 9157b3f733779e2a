//! Layering and reading: defaults, then the TOML file, then the environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use config::{Config, Environment, File, FileFormat};

use crate::settings::Settings;

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
    let mut layers = Config::builder();
    if let Some(path) = file {
        // Read on its own first, so that only its own failure is reported
        // as the file's.
        let toml = Config::builder()
            .add_source(File::from(path).format(FileFormat::Toml))
            .build()
            .map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        layers = layers.add_source(toml);
    }
    // Values stay strings here: parsing every value that looks like a number
    // or splitting every value on commas would change secrets and the
    // comma-separated `amqp.url`. Each field parses its own text (see `de`).
    let layers = layers
        .add_source(
            Environment::with_prefix("HOOKLINE")
                .prefix_separator("__")
                .separator("__")
                .source(Some(env.clone().into_iter().collect())),
        )
        .build()
        .map_err(|e| ConfigError::Invalid {
            key: "environment".into(),
            message: e.to_string(),
        })?;

    // Keys missing from both layers keep the defaults of `Settings`.
    let settings: Settings =
        serde_path_to_error::deserialize(layers.clone()).map_err(|error| keyed(error, &layers))?;
    validate(&settings)?;
    Ok(settings)
}

/// Names the dotted key that failed to read.
fn keyed(error: serde_path_to_error::Error<config::ConfigError>, layers: &Config) -> ConfigError {
    let key = error.path().to_string();
    let message = innermost(error.into_inner());
    // `deny_unknown_fields` reports through serde's `unknown_field`, which
    // the config crate's error turns into this text; there is no variant to
    // match instead.
    if message.starts_with("unknown field") {
        return ConfigError::Unknown {
            key: first_leaf(layers, key),
        };
    }
    ConfigError::Invalid { key, message }
}

/// The config crate wraps an error in the key it was read from, which the
/// path already names; the message is what is inside.
fn innermost(error: config::ConfigError) -> String {
    match error {
        config::ConfigError::At { error, .. } => innermost(*error),
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("invalid type: {unexpected}, expected {expected}"),
        other => other.to_string(),
    }
}

/// An unknown section is named by its first key, as the operator wrote it:
/// `HOOKLINE__DELIVERI__TIMEOUT` names `deliveri.timeout`, not `deliveri`.
fn first_leaf(layers: &Config, mut key: String) -> String {
    while let Some(first) = layers
        .get_table(&key)
        .ok()
        .and_then(|table| table.keys().next().cloned())
    {
        key = format!("{key}.{first}");
    }
    key
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
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
    let api_url = s.ingest.api_url.trim();
    if !(api_url.is_empty() || api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(invalid(
            "ingest.api_url",
            "must be empty (the api's listener) or start with http:// or https://",
        ));
    }
    let public_url = s.ingest.public_url.trim();
    if !(public_url.is_empty()
        || public_url.starts_with("http://")
        || public_url.starts_with("https://"))
    {
        return Err(invalid(
            "ingest.public_url",
            "must be empty (ingest's listener) or start with http:// or https://",
        ));
    }
    if s.ingest.catalogue_refresh.is_zero() {
        return Err(invalid("ingest.catalogue_refresh", "must be above zero"));
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
    if s.delivery.max_batch_bytes < 1024 {
        return Err(invalid(
            "delivery.max_batch_bytes",
            "must be at least 1024 (one event's body goes alone when it is larger)",
        ));
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
        ("api.verification_ttl", s.api.verification_ttl),
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
    use crate::settings::QueueType;
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
    fn the_otlp_endpoint_is_off_by_default_and_checked_when_set() {
        let s = load_from(None, &env(&[])).unwrap();
        assert_eq!(s.telemetry.otlp_endpoint, None);
        let set = env(&[("HOOKLINE__TELEMETRY__OTLP_ENDPOINT", "http://jaeger:4318")]);
        let s = load_from(None, &set).unwrap();
        assert_eq!(
            s.telemetry.otlp_endpoint.as_deref(),
            Some("http://jaeger:4318")
        );
        let bad = env(&[("HOOKLINE__TELEMETRY__OTLP_ENDPOINT", "jaeger:4318")]);
        let err = load_from(None, &bad).unwrap_err();
        assert!(
            err.to_string().starts_with("telemetry.otlp_endpoint:"),
            "{err}"
        );
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

    /// A TOML file of its own per test: tests run in parallel in one process.
    fn toml_file(test: &str, text: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("hookline-config-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hookline.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn an_unknown_key_in_a_section_is_refused_naming_section_and_key() {
        let path = toml_file(
            "unknown",
            "[api]\nadmin_tokn = \"a-real-admin-token-0123456789\"\n",
        );
        let err = load_from(Some(&path), &env(&[])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Unknown { key } if key == "api.admin_tokn"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "api.admin_tokn: unknown configuration key");
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn an_unknown_section_is_refused_naming_the_key_as_written() {
        let err = load_from(None, &env(&[("HOOKLINE__DELIVERI__TIMEOUT", "5s")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "deliveri.timeout: unknown configuration key"
        );
    }

    #[test]
    fn a_bad_duration_in_the_environment_names_its_key() {
        let err = load_from(
            None,
            &env(&[("HOOKLINE__DELIVERY__RETRY_DELAYS", "5s,soon,2m")]),
        )
        .unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { key, message }
                if key == "delivery.retry_delays" && message.contains("`soon`")),
            "{err:?}"
        );
        let err = load_from(
            None,
            &env(&[("HOOKLINE__HTTP__REQUEST_TIMEOUT", "5 weeks")]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("http.request_timeout: unknown unit"),
            "{err}"
        );
    }

    #[test]
    fn a_toml_file_and_the_environment_layer_over_the_defaults_and_the_environment_wins() {
        let path = toml_file(
            "layers",
            "[delivery]\nretry_delays = [\"1s\", \"2s\"]\ntimeout = 3\nconcurrency = 8\npublish_successes = true\n\
             [api]\nallow_insecure_urls = true\nmax_subscriptions_per_tenant = 3\n\
             [ingest]\ntokens = [\"producer-token-0123456789\"]\n",
        );
        let s = load_from(
            Some(&path),
            &env(&[
                ("HOOKLINE__DELIVERY__RETRY_DELAYS", "7s, 1.5s ,2m"),
                ("HOOKLINE__DELIVERY__TIMEOUT", "4s"),
                ("HOOKLINE__API__ALLOW_INSECURE_URLS", "off"),
                ("HOOKLINE__FANOUT__PREFETCH", " 16 "),
            ]),
        )
        .unwrap();
        // The environment wins where both set a key ...
        assert_eq!(
            s.delivery.retry_delays,
            vec![
                Duration::from_secs(7),
                Duration::from_millis(1500),
                Duration::from_secs(120)
            ]
        );
        assert_eq!(s.delivery.timeout, Duration::from_secs(4));
        assert!(!s.api.allow_insecure_urls);
        // ... the file's other keys of the same sections stay ...
        assert_eq!(s.delivery.concurrency, 8);
        assert!(s.delivery.publish_successes);
        assert_eq!(s.api.max_subscriptions_per_tenant, 3);
        assert_eq!(s.ingest.tokens.len(), 1);
        assert_eq!(s.fanout.prefetch, 16);
        // ... and keys neither sets keep their defaults.
        assert_eq!(s.delivery.max_lanes, 64);
        assert_eq!(s.delivery.max_batch_bytes, 1 << 20);
        assert_eq!(s.fanout.refresh_interval, Duration::from_secs(30));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn comma_separated_environment_lists_drop_blanks_and_may_be_empty() {
        let s = load_from(
            None,
            &env(&[
                (
                    "HOOKLINE__INGEST__TOKENS",
                    "producer-token-0123456789, ,other-producer-token-0123,",
                ),
                ("HOOKLINE__DELIVERY__ALLOWED_NETWORKS", ""),
                ("HOOKLINE__API__PREVIOUS_SECRET_KEYS", ""),
            ]),
        )
        .unwrap();
        assert_eq!(s.ingest.tokens.len(), 2);
        assert_eq!(s.ingest.tokens[1].expose(), "other-producer-token-0123");
        assert!(s.delivery.allowed_networks.is_empty());
        assert!(s.api.previous_secret_keys.is_empty());
    }

    #[test]
    fn a_missing_file_is_reported_as_the_file() {
        let path = std::env::temp_dir().join("hookline-config-no-such-dir/hookline.toml");
        let err = load_from(Some(&path), &env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }), "{err:?}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Settings::default();
        assert!(!format!("{:?}", s).contains("guest:guest"));
    }
}
