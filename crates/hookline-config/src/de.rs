//! Field deserializers that read a value the same way from either layer.
//!
//! The environment holds only text (`5s,30s,2m`, `true`, `128`), while a
//! TOML file holds typed values (`["5s", "30s"]`, `true`, `128`). Each field
//! is read as text first, TOML's numbers and booleans as they print and its
//! arrays joined by commas as the environment writes them, and then parsed
//! from that text. So a key accepts the same values wherever it is set, and
//! the error for a bad one is the same too.
//!
//! Only the fields typed as lists split on commas: `amqp.url` lists its nodes
//! in one string and reaches its caller unsplit.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use ipnet::IpNet;
use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use crate::secret::Secret;
use crate::{parse_duration, parse_duration_list};

/// A scalar as text, or a list of them joined by commas.
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor).map(Text)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text, a number, a boolean or a list of them")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<String, A::Error> {
        let mut items = Vec::new();
        while let Some(Text(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(items.join(","))
    }
}

/// The value exactly as written (`log.level`, and every [`Secret`]).
pub(crate) fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Text::deserialize(deserializer).map(|Text(text)| text)
}

/// The comma-separated items of a list, trimmed, blanks dropped.
fn items<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    let text = text(deserializer)?;
    Ok(text
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}

fn parsed<'de, D, T>(deserializer: D, expected: &str) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
{
    let text = text(deserializer)?;
    text.trim()
        .parse()
        .map_err(|_| de::Error::custom(format!("`{text}` is not {expected}")))
}

/// Sizes, limits and pool sizes.
pub(crate) fn count<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
{
    parsed(deserializer, "a whole number")
}

/// `fanout.prefetch`, which AMQP carries in 16 bits.
pub(crate) fn prefetch<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u16, D::Error> {
    parsed(deserializer, "a number from 1 to 65535")
}

/// `delivery.retry_share_percent`.
pub(crate) fn percent<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    parsed(deserializer, "a percentage from 1 to 100")
}

/// Every `listen` key.
pub(crate) fn socket_addr<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<SocketAddr, D::Error> {
    parsed(deserializer, "a socket address such as 127.0.0.1:8080")
}

/// The words a shell or a manifest may use for a switch.
pub(crate) fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let text = text(deserializer)?;
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(de::Error::custom(format!("`{text}` is not true or false"))),
    }
}

/// One duration in [`parse_duration`]'s syntax, which (unlike humantime's)
/// takes a bare number as seconds and fractions such as `1.5s`.
pub(crate) fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    parse_duration(&text(deserializer)?).map_err(de::Error::custom)
}

/// `delivery.retry_delays`: `5s,30s,2m` or `["5s", "30s", "2m"]`.
pub(crate) fn durations<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Duration>, D::Error> {
    parse_duration_list(&text(deserializer)?).map_err(de::Error::custom)
}

/// `delivery.allowed_networks`.
pub(crate) fn networks<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    items(deserializer)?
        .into_iter()
        .map(|network| {
            network.parse().map_err(|_| {
                de::Error::custom(format!("`{network}` is not a CIDR such as 127.0.0.0/8"))
            })
        })
        .collect()
}

/// Token and key lists; a trailing comma or a blank item is not a secret.
pub(crate) fn secrets<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Secret>, D::Error> {
    Ok(items(deserializer)?.into_iter().map(Secret::new).collect())
}

/// `amqp.ca_file`: an empty value means none, so a manifest can blank it.
pub(crate) fn optional_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<PathBuf>, D::Error> {
    let text = text(deserializer)?;
    let path = text.trim();
    Ok((!path.is_empty()).then(|| path.into()))
}

/// `telemetry.otlp_endpoint`: empty means off; anything else must be an
/// `http://` or `https://` URL, refused at start-up rather than at the
/// first export.
pub(crate) fn optional_http_url<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = text(deserializer)?;
    let url = text.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(Some(url.to_owned())),
        _ => Err(de::Error::custom(format!(
            "{url:?} is not an http:// or https:// URL"
        ))),
    }
}

/// An enum named by its variant, with the surrounding blanks that a shell
/// or a YAML manifest leaves ignored.
pub(crate) fn trimmed<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let text = text(deserializer)?;
    T::deserialize(StringDeserializer::<D::Error>::new(text.trim().to_owned()))
}
