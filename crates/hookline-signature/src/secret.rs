//! Subscription secrets: checking a given one against its scheme, and generating new ones.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::scheme::SignatureScheme;

/// Text every Standard Webhooks secret starts with.
const WHSEC_PREFIX: &str = "whsec_";
/// Fewest characters an `hmac` secret may have.
const MIN_HMAC_CHARS: usize = 16;
/// Fewest key bytes a `standard` secret may decode to.
const MIN_STANDARD_BYTES: usize = 24;
/// Most key bytes a `standard` secret may decode to.
const MAX_STANDARD_BYTES: usize = 64;
/// Key bytes in a freshly generated secret.
const GENERATED_BYTES: usize = 24;

/// Standard-alphabet base64 that accepts input with or without `=` padding, since
/// secrets and signatures are copied around by hand.
pub(crate) const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A secret checked for a scheme, holding the HMAC key it stands for. Its `Debug` output
/// never shows the key, so it can sit in logged structs safely.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
}

/// Why a given secret does not fit its subscription's scheme (the API answers `422`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// An `hmac` secret has fewer than 16 characters.
    #[error("the secret must be at least {MIN_HMAC_CHARS} characters long")]
    TooShort,
    /// A `standard` secret does not start with `whsec_`.
    #[error("a secret for scheme \"standard\" must start with \"whsec_\"")]
    NotWhsec,
    /// The part after `whsec_` is not standard base64.
    #[error("the part after \"whsec_\" must be standard base64")]
    BadBase64,
    /// The part after `whsec_` decodes to too few or too many bytes.
    #[error(
        "the part after \"whsec_\" must decode to {MIN_STANDARD_BYTES} to {MAX_STANDARD_BYTES} bytes, not {len}"
    )]
    BadLength {
        /// How many bytes it decoded to.
        len: usize,
    },
}

impl Secret {
    /// Checks `secret` against the contract's rules for `scheme` and derives the key:
    /// `standard` takes `whsec_` + base64 of 24 to 64 bytes (padding optional) and keys
    /// with the decoded bytes; `hmac` takes any string of at least 16 characters and keys
    /// with its UTF-8 bytes.
    pub fn parse(scheme: &SignatureScheme, secret: &str) -> Result<Secret, SecretError> {
        match scheme {
            SignatureScheme::Standard => parse_whsec(secret),
            SignatureScheme::Hmac(_) => {
                if secret.chars().count() < MIN_HMAC_CHARS {
                    return Err(SecretError::TooShort);
                }
                Ok(Secret {
                    key: secret.as_bytes().to_vec(),
                })
            }
        }
    }

    /// The HMAC key bytes, for signing and verifying.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

fn parse_whsec(secret: &str) -> Result<Secret, SecretError> {
    let encoded = secret
        .strip_prefix(WHSEC_PREFIX)
        .ok_or(SecretError::NotWhsec)?;
    let key = LENIENT_BASE64
        .decode(encoded)
        .map_err(|_| SecretError::BadBase64)?;
    if !(MIN_STANDARD_BYTES..=MAX_STANDARD_BYTES).contains(&key.len()) {
        return Err(SecretError::BadLength { len: key.len() });
    }
    Ok(Secret { key })
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(**redacted**)")
    }
}

/// A fresh `whsec_` secret of 24 random bytes from the OS, for subscriptions created or
/// rotated without a given secret; it is valid for every scheme.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; GENERATED_BYTES];
    OsRng.fill_bytes(&mut bytes);
    format!("{WHSEC_PREFIX}{}", STANDARD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheme::HmacScheme;

    fn hmac_scheme() -> SignatureScheme {
        SignatureScheme::Hmac(HmacScheme {
            header: "X-Signature".into(),
            encoding: Default::default(),
            prefix: String::new(),
            signed: Default::default(),
            timestamp_header: None,
            timestamp_unit: Default::default(),
        })
    }

    fn standard(secret: &str) -> Result<Secret, SecretError> {
        Secret::parse(&SignatureScheme::Standard, secret)
    }

    fn whsec_of(len: usize) -> String {
        format!("whsec_{}", STANDARD.encode(vec![7u8; len]))
    }

    #[test]
    fn a_whsec_secret_keys_with_its_decoded_bytes() {
        let secret = standard("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.key(),
            STANDARD.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
        );
        assert_eq!(secret.key().len(), 24);
    }

    #[test]
    fn a_whsec_secret_of_24_to_64_bytes_is_accepted() {
        for len in [24, 25, 32, 63, 64] {
            assert_eq!(standard(&whsec_of(len)).unwrap().key().len(), len);
        }
    }

    #[test]
    fn a_whsec_secret_outside_24_to_64_bytes_is_rejected_with_its_length() {
        for len in [0, 1, 23, 65, 128] {
            assert_eq!(
                standard(&whsec_of(len)).unwrap_err(),
                SecretError::BadLength { len }
            );
        }
    }

    #[test]
    fn a_whsec_secret_is_accepted_with_or_without_padding() {
        let padded = whsec_of(25);
        assert!(padded.ends_with('='));
        let unpadded = padded.trim_end_matches('=');
        assert_eq!(
            standard(&padded).unwrap().key(),
            standard(unpadded).unwrap().key()
        );
    }

    #[test]
    fn a_standard_secret_without_the_whsec_prefix_is_rejected() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "",
        ] {
            assert_eq!(standard(bad).unwrap_err(), SecretError::NotWhsec, "{bad}");
        }
    }

    #[test]
    fn a_whsec_secret_that_is_not_standard_base64_is_rejected() {
        for bad in [
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa_w",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwA",
        ] {
            assert_eq!(standard(bad).unwrap_err(), SecretError::BadBase64, "{bad}");
        }
    }

    #[test]
    fn a_secret_shorter_than_16_characters_is_rejected_for_hmac() {
        let err = Secret::parse(&hmac_scheme(), "fifteen-chars!!").unwrap_err();
        assert_eq!(err, SecretError::TooShort);
        assert!(err.to_string().contains("16"), "{err}");
        // Characters, not bytes: 15 two-byte characters are still too short.
        assert!(Secret::parse(&hmac_scheme(), &"é".repeat(15)).is_err());
    }

    #[test]
    fn an_hmac_secret_of_16_characters_keys_with_its_bytes_as_written() {
        let secret = Secret::parse(&hmac_scheme(), "sixteen-chars-ok").unwrap();
        assert_eq!(secret.key(), b"sixteen-chars-ok");
        let whsec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert_eq!(
            Secret::parse(&hmac_scheme(), whsec).unwrap().key(),
            whsec.as_bytes()
        );
    }

    #[test]
    fn debug_output_redacts_the_key() {
        let secret = Secret::parse(&hmac_scheme(), "do-not-print-this-key").unwrap();
        let shown = format!("{secret:?} {:?}", Some(&secret));
        assert!(!shown.contains("do-not-print"), "{shown}");
        assert_eq!(format!("{secret:?}"), "Secret(**redacted**)");
    }

    #[test]
    fn generated_secrets_are_valid_for_both_schemes_and_differ() {
        let first = generate_secret();
        let second = generate_secret();
        assert_ne!(first, second);
        assert!(first.starts_with("whsec_"));
        assert_eq!(standard(&first).unwrap().key().len(), GENERATED_BYTES);
        Secret::parse(&hmac_scheme(), &first).unwrap();
    }
}
