//! Signing secrets and static header values at rest and in flight: sealed
//! with ChaCha20-Poly1305 by the api, stored sealed in PostgreSQL, carried
//! sealed in delivery tasks through RabbitMQ, and opened only by the
//! deliverer (and the api) just before use.
//!
//! A sealed value is `"H1"`, a 4-byte key id, a 12-byte nonce, then the
//! ciphertext and tag. The key and its id are derived with HKDF-SHA256 from
//! `api.secret_key`, so any passphrase of 16+ characters gives a full-strength
//! key, and the id lets `api.previous_secret_keys` keep opening values sealed
//! before a rotation. Every value is bound to where it belongs (associated
//! data such as `subscription/sub_1/secret`), so a sealed secret copied into
//! another row does not open there.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 2] = b"H1";
const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;
const HKDF_SALT: &[u8] = b"hookline/sealing/v1";

/// Why a sealed value could not be opened; says which key to configure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Sealed under a key this process does not have.
    #[error(
        "sealed under key id {0}, which is neither api.secret_key nor one of api.previous_secret_keys"
    )]
    UnknownKey(String),
    /// The key is known but the value does not authenticate: corrupted, or
    /// moved from another row.
    #[error("a sealed value does not authenticate (corrupted, or copied from another row)")]
    Corrupt,
}

/// Why a value could not be sealed (only for absurdly large input).
#[derive(Debug, thiserror::Error)]
#[error("cannot seal a value of {0} bytes")]
pub struct SealError(usize);

/// Where a sealed value belongs: its associated data.
pub fn subscription_secret(subscription_id: &str) -> String {
    format!("subscription/{subscription_id}/secret")
}

/// Where a subscription's sealed static headers belong.
pub fn subscription_headers(subscription_id: &str) -> String {
    format!("subscription/{subscription_id}/headers")
}

/// Where an inbound source's sealed verification secret belongs.
pub fn source_secret(source_id: &str) -> String {
    format!("source/{source_id}/secret")
}

struct SealingKey {
    id: [u8; KEY_ID_LEN],
    cipher: ChaCha20Poly1305,
    /// The pre-HKDF derivation (SHA-256 of the passphrase, no associated
    /// data, no header), so values written before key ids still open.
    legacy: ChaCha20Poly1305,
}

impl SealingKey {
    fn derive(passphrase: &str) -> Self {
        let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), passphrase.as_bytes());
        let mut key = [0u8; 32];
        let mut id = [0u8; KEY_ID_LEN];
        hkdf.expand(b"chacha20poly1305 key", &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        hkdf.expand(b"key id", &mut id)
            .expect("4 bytes is a valid HKDF-SHA256 output length");
        let legacy = Sha256::digest(passphrase.as_bytes());
        Self {
            id,
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            legacy: ChaCha20Poly1305::new(Key::from_slice(&legacy)),
        }
    }
}

/// The current sealing key and the rotated-out ones that still open.
pub struct Keyring {
    keys: Vec<SealingKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current_key_id())
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Keyring {
    /// `current` seals; it and every one of `previous` open.
    pub fn new<'a>(current: &str, previous: impl IntoIterator<Item = &'a str>) -> Self {
        let mut keys = vec![SealingKey::derive(current)];
        keys.extend(previous.into_iter().map(SealingKey::derive));
        Self { keys }
    }

    /// The id of the key new values are sealed with, in hex: operators see
    /// it in logs and errors, never the key.
    pub fn current_key_id(&self) -> String {
        hex::encode(self.keys[0].id)
    }

    /// Seals `plaintext` for the place named by `aad`.
    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let key = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: aad.as_bytes(),
        };
        let sealed = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| SealError(plaintext.len()))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&key.id);
        out.extend_from_slice(&nonce);
        out.extend(sealed);
        Ok(out)
    }

    /// Opens what [`Keyring::seal`] produced for the same `aad`, with
    /// whichever configured key sealed it.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        match sealed.strip_prefix(MAGIC.as_slice()) {
            // One legacy value in 65,536 has a nonce that starts like the
            // header: it opens on the second try.
            Some(rest) => self
                .open_current(aad, rest)
                .or_else(|error| self.open_legacy(sealed).map_err(|_| error)),
            None => self.open_legacy(sealed),
        }
    }

    fn open_current(&self, aad: &str, rest: &[u8]) -> Result<Vec<u8>, OpenError> {
        if rest.len() < KEY_ID_LEN + NONCE_LEN {
            return Err(OpenError::Corrupt);
        }
        let (id, rest) = rest.split_at(KEY_ID_LEN);
        let (nonce, body) = rest.split_at(NONCE_LEN);
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::UnknownKey(hex::encode(id)))?;
        let payload = Payload {
            msg: body,
            aad: aad.as_bytes(),
        };
        key.cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| OpenError::Corrupt)
    }

    /// [`Keyring::open`] for text.
    pub fn open_string(&self, aad: &str, sealed: &[u8]) -> Result<String, OpenError> {
        String::from_utf8(self.open(aad, sealed)?).map_err(|_| OpenError::Corrupt)
    }

    /// Whether `sealed` was written by another key (or the old format), so
    /// the api re-seals it under the current key.
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        match sealed.strip_prefix(MAGIC.as_slice()) {
            Some(rest) => rest.get(..KEY_ID_LEN) != Some(&self.keys[0].id[..]),
            None => true,
        }
    }

    /// Values sealed before key ids existed: nonce then ciphertext, under
    /// SHA-256 of the passphrase, with no associated data.
    fn open_legacy(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError::Corrupt);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        self.keys
            .iter()
            .find_map(|k| k.legacy.decrypt(Nonce::from_slice(nonce), body).ok())
            .ok_or(OpenError::Corrupt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AAD: &str = "subscription/sub_1/secret";

    #[test]
    fn a_sealed_value_opens_with_the_same_key_and_place_only() {
        let ring = Keyring::new("key-one-0123456789", []);
        let sealed = ring.seal(AAD, b"whsec_abc").unwrap();
        assert!(!sealed.windows(9).any(|w| w == b"whsec_abc"));
        assert_eq!(ring.open(AAD, &sealed).unwrap(), b"whsec_abc");
        assert_eq!(
            ring.open("subscription/sub_2/secret", &sealed),
            Err(OpenError::Corrupt)
        );
        let other = Keyring::new("key-two-0123456789", []);
        assert!(matches!(
            other.open(AAD, &sealed),
            Err(OpenError::UnknownKey(id)) if id == ring.current_key_id()
        ));
        assert!(ring.open(AAD, &sealed[..5]).is_err());
        let mut flipped = sealed.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(ring.open(AAD, &flipped), Err(OpenError::Corrupt));
    }

    #[test]
    fn after_a_rotation_old_values_open_and_new_ones_use_the_new_key() {
        let old = Keyring::new("key-one-0123456789", []);
        let sealed_before = old.seal(AAD, b"whsec_old").unwrap();
        let rotated = Keyring::new("key-two-0123456789", ["key-one-0123456789"]);
        assert_eq!(rotated.open(AAD, &sealed_before).unwrap(), b"whsec_old");
        assert!(rotated.needs_reseal(&sealed_before));
        let sealed_after = rotated.seal(AAD, b"whsec_old").unwrap();
        assert!(!rotated.needs_reseal(&sealed_after));
        assert_ne!(old.current_key_id(), rotated.current_key_id());
    }

    #[test]
    fn values_sealed_before_key_ids_still_open() {
        let passphrase = "key-one-0123456789";
        let cipher = ChaCha20Poly1305::new(Key::from_slice(&Sha256::digest(passphrase)));
        let nonce = [7u8; NONCE_LEN];
        let mut legacy = nonce.to_vec();
        legacy.extend(
            cipher
                .encrypt(Nonce::from_slice(&nonce), b"whsec_legacy".as_slice())
                .unwrap(),
        );
        let ring = Keyring::new("key-two-0123456789", [passphrase]);
        assert_eq!(ring.open(AAD, &legacy).unwrap(), b"whsec_legacy");
        assert!(ring.needs_reseal(&legacy));
    }

    #[test]
    fn the_key_id_does_not_reveal_the_key() {
        let ring = Keyring::new("key-one-0123456789", []);
        assert_eq!(ring.current_key_id().len(), 8);
        assert!(!format!("{ring:?}").contains("key-one"));
    }
}
