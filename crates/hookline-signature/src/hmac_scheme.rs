//! The vendor-style `hmac` scheme: one configurable header holding prefix + encoded MAC.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use crate::mac::{check_tolerance, hmac_sha256, macs_match, parse_timestamp, required_header};
use crate::scheme::{Encoding, HmacScheme, SignedContent};
use crate::secret::{Secret, LENIENT_BASE64};
use crate::verify::VerifyError;

/// The raw MAC over the content `scheme` says is signed; `timestamp` is already in the
/// scheme's unit and is ignored for `signed = "body"`.
fn mac(scheme: &HmacScheme, key: &[u8], timestamp: &str, body: &[u8]) -> [u8; 32] {
    match scheme.signed {
        SignedContent::Body => hmac_sha256(key, &[body]),
        SignedContent::TimestampDotBody => hmac_sha256(key, &[timestamp.as_bytes(), b".", body]),
    }
}

fn encode(encoding: Encoding, mac: &[u8]) -> String {
    match encoding {
        Encoding::Hex => hex::encode(mac),
        Encoding::Base64 => STANDARD.encode(mac),
    }
}

fn decode(encoding: Encoding, text: &str) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex::decode(text).ok(),
        Encoding::Base64 => LENIENT_BASE64.decode(text).ok(),
    }
}

/// The scheme's headers for one attempt: the signature header (keyed by the newest
/// secret only, as vendors send one signature), then the timestamp header if configured.
pub(crate) fn headers(
    scheme: &HmacScheme,
    newest: &Secret,
    unix_millis: i64,
    body: &[u8],
) -> Vec<(String, String)> {
    let timestamp = scheme
        .timestamp_unit
        .of_unix_millis(unix_millis)
        .to_string();
    let signature = encode(
        scheme.encoding,
        &mac(scheme, newest.key(), &timestamp, body),
    );
    let mut headers = vec![(
        scheme.header.clone(),
        format!("{}{signature}", scheme.prefix),
    )];
    if let Some(name) = &scheme.timestamp_header {
        headers.push((name.clone(), timestamp));
    }
    headers
}

/// Checks a delivery signed with a vendor-style HMAC scheme.
pub(crate) fn verify(
    scheme: &HmacScheme,
    secret: &Secret,
    lookup: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now_unix_millis: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    let value = required_header(lookup, &scheme.header)?;
    let encoded = value
        .trim()
        .strip_prefix(scheme.prefix.as_str())
        .ok_or_else(|| {
            VerifyError::BadFormat(format!(
                "{} does not start with \"{}\"",
                scheme.header, scheme.prefix
            ))
        })?;
    let received = decode(scheme.encoding, encoded).ok_or_else(|| {
        VerifyError::BadFormat(format!(
            "{} is not {}",
            scheme.header,
            encoding_name(scheme.encoding)
        ))
    })?;

    let timestamp = match scheme.signed {
        SignedContent::Body => String::new(),
        SignedContent::TimestampDotBody => {
            let name = scheme.timestamp_header.as_deref().ok_or_else(|| {
                VerifyError::BadFormat(
                    "the scheme signs a timestamp but names no timestamp_header".into(),
                )
            })?;
            let text = required_header(lookup, name)?.trim().to_owned();
            let value = parse_timestamp(&text, name)?;
            let millis = i128::from(value) * scheme.timestamp_unit.millis_per_unit();
            check_tolerance(millis, now_unix_millis, tolerance)?;
            text
        }
    };

    if macs_match(&mac(scheme, secret.key(), &timestamp, body), &received) {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Hex => "hex",
        Encoding::Base64 => "base64",
    }
}

#[cfg(test)]
mod tests;
