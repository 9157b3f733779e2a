//! Tests of the Standard Webhooks scheme, including the published test vectors.

use super::*;
use crate::scheme::SignatureScheme;
use crate::{sign, verify, DEFAULT_TOLERANCE};
use std::collections::HashMap;

/// The vector published in the Standard Webhooks libraries' tests.
const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TIMESTAMP: i64 = 1_614_265_330;
const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
const SPEC_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// The vector published in Svix's (and Resend's) verification docs, same algorithm.
const SVIX_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SVIX_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const SVIX_TIMESTAMP: i64 = 1_649_367_553;
const SVIX_BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
const SVIX_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

fn secret(text: &str) -> Secret {
    Secret::parse(&SignatureScheme::Standard, text).unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), (*v).to_owned()))
        .collect()
}

fn check(
    secret: &Secret,
    map: &HashMap<String, String>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), VerifyError> {
    let lookup = |name: &str| map.get(&name.to_ascii_lowercase()).cloned();
    verify(
        &SignatureScheme::Standard,
        secret,
        &lookup,
        body,
        now_secs * 1000,
        DEFAULT_TOLERANCE,
    )
}

#[test]
fn the_standard_webhooks_test_vector_is_reproduced() {
    let value = signature_value(&[secret(SPEC_SECRET)], SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
    assert_eq!(value, SPEC_SIGNATURE);
}

#[test]
fn the_svix_published_test_vector_is_reproduced() {
    let value = signature_value(&[secret(SVIX_SECRET)], SVIX_ID, SVIX_TIMESTAMP, SVIX_BODY);
    assert_eq!(value, SVIX_SIGNATURE);
}

#[test]
fn sign_sends_id_timestamp_and_signature_headers_in_order() {
    let sent = sign(
        &SignatureScheme::Standard,
        &[secret(SPEC_SECRET)],
        SPEC_ID,
        SPEC_TIMESTAMP * 1000 + 999,
        SPEC_BODY,
    )
    .unwrap();
    let expected = [
        ("webhook-id", SPEC_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SPEC_SIGNATURE),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    assert_eq!(sent, expected);
}

#[test]
fn during_rotation_every_secret_signs_newest_first_in_one_header() {
    let secrets = [secret(SVIX_SECRET), secret(SPEC_SECRET)];
    let value = signature_value(&secrets, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY);
    let entries: Vec<&str> = value.split(' ').collect();
    assert_eq!(entries.len(), 2);
    assert_ne!(entries[0], SPEC_SIGNATURE);
    assert_eq!(entries[1], SPEC_SIGNATURE);
    // A receiver holding either secret accepts the delivery.
    let map = headers(&[
        ("webhook-id", SPEC_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", &value),
    ]);
    for held in &secrets {
        check(held, &map, SPEC_BODY, SPEC_TIMESTAMP).unwrap();
    }
}

#[test]
fn the_published_vectors_verify_at_their_timestamps() {
    let spec = headers(&[
        ("webhook-id", SPEC_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SPEC_SIGNATURE),
    ]);
    check(&secret(SPEC_SECRET), &spec, SPEC_BODY, SPEC_TIMESTAMP).unwrap();
    let svix = headers(&[
        ("Webhook-Id", SVIX_ID),
        ("Webhook-Timestamp", "1649367553"),
        ("Webhook-Signature", SVIX_SIGNATURE),
    ]);
    check(&secret(SVIX_SECRET), &svix, SVIX_BODY, SVIX_TIMESTAMP).unwrap();
    assert_eq!(
        check(&secret(SPEC_SECRET), &svix, SVIX_BODY, SVIX_TIMESTAMP),
        Err(VerifyError::NoMatch)
    );
}

#[test]
fn each_missing_header_is_named() {
    let all = [
        ("webhook-id", SPEC_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SPEC_SIGNATURE),
    ];
    for skip in 0..all.len() {
        let pairs: Vec<(&str, &str)> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, p)| *p)
            .collect();
        assert_eq!(
            check(
                &secret(SPEC_SECRET),
                &headers(&pairs),
                SPEC_BODY,
                SPEC_TIMESTAMP
            ),
            Err(VerifyError::MissingHeader(all[skip].0.to_owned()))
        );
    }
}

#[test]
fn a_timestamp_more_than_five_minutes_away_is_out_of_tolerance() {
    let map = headers(&[
        ("webhook-id", SPEC_ID),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", SPEC_SIGNATURE),
    ]);
    let key = secret(SPEC_SECRET);
    check(&key, &map, SPEC_BODY, SPEC_TIMESTAMP + 300).unwrap();
    check(&key, &map, SPEC_BODY, SPEC_TIMESTAMP - 300).unwrap();
    for now in [SPEC_TIMESTAMP + 301, SPEC_TIMESTAMP - 301] {
        assert_eq!(
            check(&key, &map, SPEC_BODY, now),
            Err(VerifyError::TimestampOutOfTolerance)
        );
    }
}

#[test]
fn a_non_numeric_timestamp_is_a_bad_format() {
    let map = headers(&[
        ("webhook-id", SPEC_ID),
        ("webhook-timestamp", "hello"),
        ("webhook-signature", SPEC_SIGNATURE),
    ]);
    assert!(matches!(
        check(&secret(SPEC_SECRET), &map, SPEC_BODY, SPEC_TIMESTAMP),
        Err(VerifyError::BadFormat(_))
    ));
}

#[test]
fn other_versions_are_ignored_and_any_matching_v1_entry_is_enough() {
    let wrong = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let v2 = "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
    let key = secret(SPEC_SECRET);
    let with = |value: &str| {
        headers(&[
            ("webhook-id", SPEC_ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", value),
        ])
    };
    let multi = format!("{wrong} {v2} {SPEC_SIGNATURE} {wrong}");
    check(&key, &with(&multi), SPEC_BODY, SPEC_TIMESTAMP).unwrap();
    let unpadded = SPEC_SIGNATURE.trim_end_matches('=');
    check(&key, &with(unpadded), SPEC_BODY, SPEC_TIMESTAMP).unwrap();
    assert_eq!(
        check(
            &key,
            &with(&format!("{wrong} {v2}")),
            SPEC_BODY,
            SPEC_TIMESTAMP
        ),
        Err(VerifyError::NoMatch)
    );
    let v2_only = SPEC_SIGNATURE.replacen("v1,", "v2,", 1);
    assert!(matches!(
        check(&key, &with(&v2_only), SPEC_BODY, SPEC_TIMESTAMP),
        Err(VerifyError::BadFormat(_))
    ));
}

#[test]
fn truncated_or_garbled_signatures_do_not_match() {
    let key = secret(SPEC_SECRET);
    for bad in [
        &SPEC_SIGNATURE[..8],
        "v1,",
        "v1,dawfeoifkpqwoekfpqoekf",
        "v1,!!!!",
    ] {
        let map = headers(&[
            ("webhook-id", SPEC_ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", bad),
        ]);
        assert_eq!(
            check(&key, &map, SPEC_BODY, SPEC_TIMESTAMP),
            Err(VerifyError::NoMatch),
            "{bad}"
        );
    }
}
