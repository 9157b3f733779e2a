//! The Standard Webhooks scheme: `v1,<base64>` signatures over `{id}.{timestamp}.{body}`.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::mac::{check_tolerance, hmac_sha256, macs_match, parse_timestamp, required_header};
use crate::secret::{Secret, LENIENT_BASE64};
use crate::sign::{ID_HEADER, TIMESTAMP_HEADER};
use crate::verify::VerifyError;

/// Header carrying the space-separated signatures.
pub(crate) const SIGNATURE_HEADER: &str = "webhook-signature";
/// The only signature version this scheme produces and checks.
const VERSION: &str = "v1";

/// The raw MAC of one delivery under one key.
fn mac(key: &[u8], webhook_id: &str, timestamp: &str, body: &[u8]) -> [u8; 32] {
    hmac_sha256(
        key,
        &[
            webhook_id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            body,
        ],
    )
}

/// The `webhook-signature` value: one `v1,<base64>` entry per secret, newest first,
/// space-separated, so receivers holding either the old or the new secret accept it
/// during a rotation.
pub(crate) fn signature_value(
    secrets: &[Secret],
    webhook_id: &str,
    timestamp_secs: i64,
    body: &[u8],
) -> String {
    let timestamp = timestamp_secs.to_string();
    secrets
        .iter()
        .map(|secret| {
            let mac = mac(secret.key(), webhook_id, &timestamp, body);
            format!("{VERSION},{}", STANDARD.encode(mac))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a delivery signed with the Standard Webhooks scheme.
pub(crate) fn verify(
    secret: &Secret,
    lookup: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now_unix_millis: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let webhook_id = required_header(lookup, ID_HEADER)?;
    let timestamp = required_header(lookup, TIMESTAMP_HEADER)?;
    let signatures = required_header(lookup, SIGNATURE_HEADER)?;

    let timestamp = timestamp.trim();
    let secs = parse_timestamp(timestamp, TIMESTAMP_HEADER)?;
    check_tolerance(i128::from(secs) * 1000, now_unix_millis, tolerance)?;

    let candidates: Vec<&str> = signatures
        .split_ascii_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .collect();
    if candidates.is_empty() {
        return Err(VerifyError::BadFormat(format!(
            "{SIGNATURE_HEADER} holds no \"{VERSION},\" signature"
        )));
    }

    let expected = mac(secret.key(), &webhook_id, timestamp, body);
    // Every candidate is compared, so the time taken does not reveal which one matched.
    let mut matched = false;
    for candidate in candidates {
        if let Ok(received) = LENIENT_BASE64.decode(candidate) {
            matched |= macs_match(&expected, &received);
        }
    }
    if matched {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

#[cfg(test)]
mod tests;
