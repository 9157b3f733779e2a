//! Property tests: whatever is signed verifies, and any single-byte change breaks it.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::{
    sign, verify, Encoding, HmacScheme, Secret, SignatureScheme, SignedContent, TimestampUnit,
    VerifyError, DEFAULT_TOLERANCE,
};

fn hmac_scheme() -> impl Strategy<Value = SignatureScheme> {
    (
        prop_oneof![Just(Encoding::Hex), Just(Encoding::Base64)],
        prop_oneof![Just(""), Just("sha256="), Just("v1,"), Just("t=1 ")],
        prop_oneof![
            Just(SignedContent::Body),
            Just(SignedContent::TimestampDotBody)
        ],
        any::<bool>(),
        prop_oneof![Just(TimestampUnit::Seconds), Just(TimestampUnit::Millis)],
    )
        .prop_map(|(encoding, prefix, signed, with_ts, timestamp_unit)| {
            let needs_ts = with_ts || signed == SignedContent::TimestampDotBody;
            SignatureScheme::Hmac(HmacScheme {
                header: "X-Signature".into(),
                encoding,
                prefix: prefix.into(),
                signed,
                timestamp_header: needs_ts.then(|| "X-Timestamp".into()),
                timestamp_unit,
            })
        })
}

/// The standard scheme with one to three `whsec_` secrets, newest first.
fn standard_and_secrets() -> impl Strategy<Value = (SignatureScheme, Vec<String>)> {
    let whsec = prop::collection::vec(any::<u8>(), 24..=64)
        .prop_map(|bytes| format!("whsec_{}", STANDARD.encode(bytes)));
    (
        Just(SignatureScheme::Standard),
        prop::collection::vec(whsec, 1..=3),
    )
}

/// Any scheme together with one to three secret strings valid for it.
fn scheme_and_secrets() -> impl Strategy<Value = (SignatureScheme, Vec<String>)> {
    let hmac = (
        hmac_scheme(),
        prop::collection::vec("[ -~]{16,40}|\\PC{16,24}", 1..=3),
    );
    prop_oneof![standard_and_secrets(), hmac]
}

/// A delivery as signed: scheme, secrets, id, attempt time, body and the sent headers.
#[derive(Debug, Clone)]
struct Signed {
    scheme: SignatureScheme,
    secrets: Vec<Secret>,
    body: Vec<u8>,
    at: i64,
    headers: Vec<(String, String)>,
}

impl Signed {
    fn check(
        &self,
        secret: &Secret,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<(), VerifyError> {
        let map: HashMap<String, String> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let lookup = |name: &str| map.get(&name.to_ascii_lowercase()).cloned();
        verify(
            &self.scheme,
            secret,
            &lookup,
            body,
            self.at,
            DEFAULT_TOLERANCE,
        )
    }

    fn newest(&self) -> &Secret {
        &self.secrets[0]
    }

    /// Index of the header called `name`.
    fn position(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|(k, _)| k == name)
    }
}

fn signed() -> impl Strategy<Value = Signed> {
    signed_from(scheme_and_secrets())
}

fn signed_standard() -> impl Strategy<Value = Signed> {
    signed_from(standard_and_secrets())
}

fn signed_from(
    schemes: impl Strategy<Value = (SignatureScheme, Vec<String>)>,
) -> impl Strategy<Value = Signed> {
    (
        schemes,
        "[A-Za-z0-9_]{1,32}",
        1_000_000_000_000i64..4_000_000_000_000,
        prop::collection::vec(any::<u8>(), 1..256),
    )
        .prop_map(|((scheme, secret_texts), id, at, body)| {
            let secrets: Vec<Secret> = secret_texts
                .iter()
                .map(|text| Secret::parse(&scheme, text).expect("strategy makes valid secrets"))
                .collect();
            let headers = sign(&scheme, &secrets, &id, at, &body).expect("there is a secret");
            Signed {
                scheme,
                secrets,
                body,
                at,
                headers,
            }
        })
}

/// `text` with the byte at `index` replaced by a different printable ASCII character.
fn change_one_byte(text: &str, index: Index, replacement: u8) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let i = index.index(bytes.len());
    let mut new = b'!' + replacement % 94;
    if new == bytes[i] {
        new = if new == b'~' { b'!' } else { new + 1 };
    }
    bytes[i] = new;
    String::from_utf8(bytes).expect("ASCII headers stay ASCII")
}

proptest! {
    #[test]
    fn whatever_is_signed_verifies_with_the_newest_secret(delivery in signed(), skew in -299_000i64..=299_000) {
        let now = Signed { at: delivery.at + skew, ..delivery.clone() };
        prop_assert_eq!(now.check(delivery.newest(), &delivery.headers, &delivery.body), Ok(()));
    }

    #[test]
    fn a_standard_delivery_verifies_with_every_secret_it_was_signed_with(delivery in signed_standard()) {
        for secret in &delivery.secrets {
            prop_assert_eq!(delivery.check(secret, &delivery.headers, &delivery.body), Ok(()));
        }
    }

    #[test]
    fn changing_any_single_byte_of_the_body_fails_verification(delivery in signed(), index in any::<Index>(), delta in 1u8..=255) {
        let mut body = delivery.body.clone();
        let i = index.index(body.len());
        body[i] ^= delta;
        prop_assert!(delivery.check(delivery.newest(), &delivery.headers, &body).is_err());
    }

    #[test]
    fn changing_any_single_byte_of_the_id_fails_standard_verification(delivery in signed_standard(), index in any::<Index>(), replacement in any::<u8>()) {
        // Vendor-style hmac signatures do not cover the id, as in the styles they imitate.
        let at = delivery.position("webhook-id").expect("webhook-id is always sent");
        let mut headers = delivery.headers.clone();
        headers[at].1 = change_one_byte(&headers[at].1, index, replacement);
        prop_assert_eq!(delivery.check(delivery.newest(), &headers, &delivery.body), Err(VerifyError::NoMatch));
    }

    #[test]
    fn changing_any_single_byte_of_a_signed_timestamp_fails_verification(delivery in signed(), index in any::<Index>(), replacement in any::<u8>()) {
        let name = match &delivery.scheme {
            SignatureScheme::Standard => "webhook-timestamp",
            SignatureScheme::Hmac(h) if h.signed == SignedContent::TimestampDotBody => "X-Timestamp",
            SignatureScheme::Hmac(_) => return Ok(()),
        };
        let at = delivery.position(name).expect("the signed timestamp is sent");
        let mut headers = delivery.headers.clone();
        headers[at].1 = change_one_byte(&headers[at].1, index, replacement);
        prop_assert!(delivery.check(delivery.newest(), &headers, &delivery.body).is_err());
    }

    #[test]
    fn a_different_secret_does_not_verify(delivery in signed(), other in "[a-z]{24,40}") {
        let other = match &delivery.scheme {
            SignatureScheme::Standard => {
                Secret::parse(&delivery.scheme, &format!("whsec_{}", STANDARD.encode(other.as_bytes()))).unwrap()
            }
            SignatureScheme::Hmac(_) => Secret::parse(&delivery.scheme, &other).unwrap(),
        };
        prop_assume!(delivery.secrets.iter().all(|s| s.key() != other.key()));
        prop_assert_eq!(delivery.check(&other, &delivery.headers, &delivery.body), Err(VerifyError::NoMatch));
    }
}
