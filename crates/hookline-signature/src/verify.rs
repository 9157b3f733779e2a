//! Receiver-side verification of a delivery, with constant-time comparison.

use std::time::Duration;

use crate::scheme::SignatureScheme;
use crate::secret::Secret;
use crate::{hmac_scheme, standard};

/// How far a delivery's timestamp may be from the receiver's clock, either way, before it
/// is refused as a possible replay: 5 minutes, as in Standard Webhooks.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a delivery failed verification, so receivers can log a useful reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header the scheme needs is absent; holds its name.
    #[error("missing header {0}")]
    MissingHeader(String),
    /// A header is present but malformed; says which and how.
    #[error("malformed signature data: {0}")]
    BadFormat(String),
    /// The signed timestamp is further from now than the tolerance allows.
    #[error("the timestamp is outside the allowed tolerance")]
    TimestampOutOfTolerance,
    /// The signature is well formed but was not made with this secret over this content.
    #[error("no signature matches")]
    NoMatch,
}

/// Checks that a delivery was signed with `secret` under `scheme`.
///
/// `header` looks a request header up by name, case-insensitively (e.g.
/// `|name| headers.get(name).map(|v| v.to_str().unwrap_or_default().to_owned())`).
/// `body` must be the raw bytes received, before any JSON parsing. Timestamps that are
/// signed (always for `standard`, with `signed = "timestamp.body"` for `hmac`) must lie
/// within `tolerance` of `now_unix_millis`; use [`DEFAULT_TOLERANCE`] unless you have a
/// reason not to. MACs are compared in constant time.
pub fn verify(
    scheme: &SignatureScheme,
    secret: &Secret,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
    now_unix_millis: i64,
    tolerance: Duration,
) -> Result<(), VerifyError> {
    match scheme {
        SignatureScheme::Standard => {
            standard::verify(secret, header, body, now_unix_millis, tolerance)
        }
        SignatureScheme::Hmac(hmac) => {
            hmac_scheme::verify(hmac, secret, header, body, now_unix_millis, tolerance)
        }
    }
}
