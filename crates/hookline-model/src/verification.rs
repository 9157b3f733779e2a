//! The rules of a verification challenge (`verification: "challenge"`),
//! shared by the api, which makes tokens and checks typed-in ones, and the
//! deliverers, which check what an endpoint answered.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The event type of a challenge delivery, as history shows it.
pub const EVENT_TYPE: &str = "webhook.verification";

/// Marks a Hookline verification token wherever it is pasted.
pub const TOKEN_PREFIX: &str = "hlvt_";

/// Bytes of an answer read to find the token: the longest answer the
/// contract allows (`{"token": "…"}` with some whitespace) fits easily.
pub const ANSWER_BYTES: usize = 512;

/// A fresh token: the prefix and 32 random bytes (256 bits) in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// What is stored of a token: its SHA-256 in hex. The token is
/// unguessable, so an unsalted digest cannot be reversed.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether an endpoint's answer body holds `token`: the token alone (as
/// plain text, surrounding whitespace allowed, or as a JSON string), or a
/// JSON object whose `token` is it. Anything else, an echo of the whole
/// challenge included, does not: the endpoint must have read the token.
pub fn answer_holds(body: &[u8], token: &str) -> bool {
    if token.is_empty() {
        return false;
    }
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let text = text.trim();
    if text == token {
        return true;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(serde_json::Value::String(s)) => s == token,
        Ok(serde_json::Value::Object(map)) => {
            map.get("token").and_then(|t| t.as_str()) == Some(token)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_prefixed_256_bits_of_hex_and_never_repeats() {
        let a = new_token();
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_ne!(a, new_token());
        assert_eq!(token_digest(&a).len(), 64);
        assert_ne!(token_digest(&a), a);
    }

    #[test]
    fn the_token_alone_or_in_a_token_field_is_an_answer() {
        let t = "hlvt_abc";
        assert!(answer_holds(b"hlvt_abc", t));
        assert!(answer_holds(b"  hlvt_abc\n", t));
        assert!(answer_holds(b"\"hlvt_abc\"", t));
        assert!(answer_holds(br#"{"token": "hlvt_abc"}"#, t));
        assert!(answer_holds(br#"{"ok": true, "token":"hlvt_abc"}"#, t));
    }

    #[test]
    fn anything_else_is_not() {
        let t = "hlvt_abc";
        assert!(!answer_holds(b"", t));
        assert!(!answer_holds(b"ok", t));
        assert!(!answer_holds(b"hlvt_abcd", t));
        assert!(!answer_holds(br#"{"token": "hlvt_other"}"#, t));
        assert!(!answer_holds(br#"{"data": {"token": "hlvt_abc"}}"#, t));
        assert!(!answer_holds(br#"{"token": 1}"#, t));
        assert!(!answer_holds(&[0xff, 0xfe], t));
        assert!(!answer_holds(b"", ""));
    }
}
