//! Subscription secrets at rest: sealed with ChaCha20-Poly1305 under a key
//! derived from `api.secret_key`, so a database dump alone does not reveal
//! them. The api seals; the api and fanout open.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

/// Why a sealed value could not be opened: wrong key or corrupted data.
#[derive(Debug, thiserror::Error)]
#[error("cannot open a sealed secret: wrong api.secret_key or corrupted data")]
pub struct OpenError;

fn cipher(secret_key: &str) -> ChaCha20Poly1305 {
    let key = Sha256::digest(secret_key.as_bytes());
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

/// Encrypts `plaintext`; the output is nonce followed by ciphertext and tag.
pub fn seal(secret_key: &str, plaintext: &str) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let mut out = nonce.to_vec();
    let sealed = cipher(secret_key)
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_bytes())
        .unwrap_or_default();
    out.extend(sealed);
    out
}

/// Decrypts what [`seal`] produced.
pub fn open(secret_key: &str, sealed: &[u8]) -> Result<String, OpenError> {
    if sealed.len() < NONCE_LEN {
        return Err(OpenError);
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let plain = cipher(secret_key)
        .decrypt(Nonce::from_slice(nonce), body)
        .map_err(|_| OpenError)?;
    String::from_utf8(plain).map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_only() {
        let sealed = seal("key-one-0123456789", "whsec_abc");
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(open("key-one-0123456789", &sealed).unwrap(), "whsec_abc");
        assert!(open("key-two-0123456789", &sealed).is_err());
        assert!(open("key-one-0123456789", &sealed[..5]).is_err());
    }
}
