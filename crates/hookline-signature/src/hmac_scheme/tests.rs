//! Tests of the vendor-style hmac scheme against independently computed MACs.

use super::*;
use crate::scheme::{SignatureScheme, TimestampUnit};
use crate::{sign, verify, DEFAULT_TOLERANCE};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;

const KEY: &str = "hookline-test-secret-0123";
const BODY: &[u8] = br#"{"type":"lead.created","id":"evt_01"}"#;
const AT_MILLIS: i64 = 1_700_000_000_123;

fn scheme(header: &str) -> HmacScheme {
    HmacScheme {
        header: header.into(),
        encoding: Encoding::Hex,
        prefix: String::new(),
        signed: SignedContent::Body,
        timestamp_header: None,
        timestamp_unit: TimestampUnit::Seconds,
    }
}

fn acme() -> HmacScheme {
    HmacScheme {
        signed: SignedContent::TimestampDotBody,
        timestamp_header: Some("X-Acme-Timestamp".into()),
        timestamp_unit: TimestampUnit::Millis,
        ..scheme("X-Acme-Signature")
    }
}

fn secret(scheme: &HmacScheme) -> Secret {
    Secret::parse(&SignatureScheme::Hmac(scheme.clone()), KEY).unwrap()
}

fn sign_with(scheme: &HmacScheme) -> Vec<(String, String)> {
    sign(
        &SignatureScheme::Hmac(scheme.clone()),
        &[secret(scheme)],
        "msg_1",
        AT_MILLIS,
        BODY,
    )
    .unwrap()
}

/// The MAC computed straight with the `hmac` crate, independent of this crate's code.
fn reference_hex(content: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(content);
    hex::encode(mac.finalize().into_bytes())
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

fn check(
    scheme: &HmacScheme,
    sent: &[(String, String)],
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let map: HashMap<String, String> = sent
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let lookup = |name: &str| map.get(&name.to_ascii_lowercase()).cloned();
    verify(
        &SignatureScheme::Hmac(scheme.clone()),
        &secret(scheme),
        &lookup,
        body,
        now,
        DEFAULT_TOLERANCE,
    )
}

#[test]
fn plain_hex_of_the_body_goes_in_x_signature() {
    // printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$KEY"
    let expected = "ec4196ad3de44f899c45f8cbebc76f37a9822709413f73c1f7dc8453b7ec3987";
    assert_eq!(reference_hex(BODY), expected);
    let sent = sign_with(&scheme("X-Signature"));
    assert_eq!(
        sent,
        pairs(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("X-Signature", expected)
        ])
    );
    check(&scheme("X-Signature"), &sent, BODY, AT_MILLIS).unwrap();
}

#[test]
fn a_sha256_prefixed_hex_of_the_body_goes_in_x_webhook_signature() {
    let github = HmacScheme {
        prefix: "sha256=".into(),
        ..scheme("X-Webhook-Signature")
    };
    let sent = sign_with(&github);
    let expected = format!("sha256={}", reference_hex(BODY));
    assert_eq!(sent[2], ("X-Webhook-Signature".to_owned(), expected));
    assert_eq!(sent.len(), 3);
    check(&github, &sent, BODY, AT_MILLIS).unwrap();
}

#[test]
fn hex_of_timestamp_dot_body_is_sent_with_a_millisecond_timestamp_header() {
    // printf '%s' "1700000000123.$BODY" | openssl dgst -sha256 -hmac "$KEY"
    let expected = "4365976a2afc593d00f434f3570bfa74963e331380e6421ed9f6b1be1d24ef25";
    let content = [b"1700000000123.".as_slice(), BODY].concat();
    assert_eq!(reference_hex(&content), expected);
    let sent = sign_with(&acme());
    assert_eq!(
        sent,
        pairs(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", "1700000000"),
            ("X-Acme-Signature", expected),
            ("X-Acme-Timestamp", "1700000000123"),
        ])
    );
    check(&acme(), &sent, BODY, AT_MILLIS).unwrap();
}

#[test]
fn base64_of_timestamp_dot_body_in_seconds_matches_openssl() {
    let shopify = HmacScheme {
        encoding: Encoding::Base64,
        signed: SignedContent::TimestampDotBody,
        timestamp_header: Some("X-Timestamp".into()),
        ..scheme("X-Signature")
    };
    // printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac "$KEY" -binary | base64
    let expected = "ioudU3ilYF8DUbLnjduozwmHEUiNpnuqxDDOJTOXXaI=";
    let sent = sign_with(&shopify);
    assert_eq!(
        sent[2..],
        pairs(&[("X-Signature", expected), ("X-Timestamp", "1700000000")])
    );
    check(&shopify, &sent, BODY, AT_MILLIS).unwrap();
}

#[test]
fn the_timestamp_header_is_sent_even_when_only_the_body_is_signed() {
    let both = HmacScheme {
        timestamp_header: Some("X-Timestamp".into()),
        ..scheme("X-Signature")
    };
    let sent = sign_with(&both);
    assert_eq!(sent[3], ("X-Timestamp".to_owned(), "1700000000".to_owned()));
    assert_eq!(sent[2].1, reference_hex(BODY));
}

#[test]
fn only_the_newest_secret_signs() {
    let plain = scheme("X-Signature");
    let older = Secret::parse(
        &SignatureScheme::Hmac(plain.clone()),
        "an-older-secret-value",
    )
    .unwrap();
    let sent = sign(
        &SignatureScheme::Hmac(plain.clone()),
        &[secret(&plain), older],
        "msg_1",
        AT_MILLIS,
        BODY,
    )
    .unwrap();
    assert_eq!(sent[2].1, reference_hex(BODY));
    assert_eq!(sent.len(), 3);
}

#[test]
fn a_missing_prefix_is_a_bad_format() {
    let github = HmacScheme {
        prefix: "sha256=".into(),
        ..scheme("X-Webhook-Signature")
    };
    let sent = pairs(&[("X-Webhook-Signature", &reference_hex(BODY))]);
    assert!(matches!(
        check(&github, &sent, BODY, AT_MILLIS),
        Err(VerifyError::BadFormat(_))
    ));
}

#[test]
fn a_signature_in_the_wrong_encoding_is_a_bad_format() {
    let sent = pairs(&[("X-Signature", "not hex at all")]);
    assert!(matches!(
        check(&scheme("X-Signature"), &sent, BODY, AT_MILLIS),
        Err(VerifyError::BadFormat(_))
    ));
}

#[test]
fn uppercase_hex_is_accepted_but_a_wrong_mac_is_not() {
    let plain = scheme("X-Signature");
    let upper = pairs(&[("X-Signature", &reference_hex(BODY).to_uppercase())]);
    check(&plain, &upper, BODY, AT_MILLIS).unwrap();
    let other = pairs(&[("X-Signature", &reference_hex(b"other body"))]);
    assert_eq!(
        check(&plain, &other, BODY, AT_MILLIS),
        Err(VerifyError::NoMatch)
    );
}

#[test]
fn missing_signature_or_timestamp_headers_are_named() {
    assert_eq!(
        check(&acme(), &[], BODY, AT_MILLIS),
        Err(VerifyError::MissingHeader("X-Acme-Signature".into()))
    );
    let mut sent = sign_with(&acme());
    sent.retain(|(name, _)| name != "X-Acme-Timestamp");
    assert_eq!(
        check(&acme(), &sent, BODY, AT_MILLIS),
        Err(VerifyError::MissingHeader("X-Acme-Timestamp".into()))
    );
}

#[test]
fn a_millisecond_timestamp_is_checked_against_the_tolerance_in_milliseconds() {
    let sent = sign_with(&acme());
    let five_minutes = 300_000;
    check(&acme(), &sent, BODY, AT_MILLIS + five_minutes).unwrap();
    check(&acme(), &sent, BODY, AT_MILLIS - five_minutes).unwrap();
    for now in [AT_MILLIS + five_minutes + 1, AT_MILLIS - five_minutes - 1] {
        assert_eq!(
            check(&acme(), &sent, BODY, now),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }
}

#[test]
fn a_body_only_signature_does_not_expire() {
    let sent = sign_with(&scheme("X-Signature"));
    check(&scheme("X-Signature"), &sent, BODY, AT_MILLIS + 86_400_000).unwrap();
}
