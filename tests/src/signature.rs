//! An independent Standard Webhooks verifier written from the specification
//! (HMAC-SHA256 over `{id}.{timestamp}.{body}`, keyed by the base64-decoded
//! `whsec_` secret), so that the signing code is not checking itself.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Captured;

/// Whether any `v1,` signature of the captured request matches `secret`.
pub fn standard_signature_valid(request: &Captured, secret: &str) -> bool {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        request.header("webhook-id"),
        request.header("webhook-timestamp"),
        request.header("webhook-signature"),
    ) else {
        return false;
    };
    let Some(encoded) = secret.strip_prefix("whsec_") else {
        return false;
    };
    let Ok(key) = STANDARD.decode(encoded) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return false;
    };
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    signatures.split(' ').any(|s| s == expected)
}
