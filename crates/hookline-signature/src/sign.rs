//! Signing one delivery attempt: the headers the deliverer adds to the request.

use crate::scheme::{unix_seconds, SignatureScheme};
use crate::secret::Secret;
use crate::{hmac_scheme, standard};

/// Header with the delivery's id, the same across every attempt (receivers deduplicate on it).
pub(crate) const ID_HEADER: &str = "webhook-id";
/// Header with the attempt time in Unix seconds, sent with every scheme.
pub(crate) const TIMESTAMP_HEADER: &str = "webhook-timestamp";

/// Why an attempt could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// No secret was given; a subscription always has at least one.
    #[error("no secret to sign with")]
    NoSecret,
}

/// The headers to send with one attempt, in order: `webhook-id`, `webhook-timestamp`
/// (Unix seconds), then the scheme's signature header(s).
///
/// `secrets` holds the subscription's secrets, newest first. The standard scheme signs
/// with all of them (space-separated `v1,` entries in one `webhook-signature` header), so
/// receivers keep working across a rotation; the hmac scheme signs with the newest only
/// and adds its `timestamp_header` whenever one is configured. `unix_millis` is the
/// attempt time.
pub fn sign(
    scheme: &SignatureScheme,
    secrets: &[Secret],
    webhook_id: &str,
    unix_millis: i64,
    body: &[u8],
) -> Result<Vec<(String, String)>, SignError> {
    let newest = secrets.first().ok_or(SignError::NoSecret)?;
    let seconds = unix_seconds(unix_millis);
    let mut headers = vec![
        (ID_HEADER.to_owned(), webhook_id.to_owned()),
        (TIMESTAMP_HEADER.to_owned(), seconds.to_string()),
    ];
    match scheme {
        SignatureScheme::Standard => headers.push((
            standard::SIGNATURE_HEADER.to_owned(),
            standard::signature_value(secrets, webhook_id, seconds, body),
        )),
        SignatureScheme::Hmac(hmac) => {
            headers.extend(hmac_scheme::headers(hmac, newest, unix_millis, body));
        }
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_without_a_secret_fails() {
        let result = sign(&SignatureScheme::Standard, &[], "msg_1", 0, b"{}");
        assert_eq!(result, Err(SignError::NoSecret));
    }
}
