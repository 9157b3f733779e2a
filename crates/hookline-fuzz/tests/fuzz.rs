//! Nothing Hookline reads from outside may panic it.

use std::time::{Duration, SystemTime};

use chrono::Utc;
use hookline_model::Event;
use hookline_proto::{DeliveryTask, Message};
use hookline_signature::{Secret, SignatureScheme};
use proptest::prelude::*;

/// JSON values shaped like envelopes, with hostile field contents.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|n| serde_json::json!(n)),
        ".{0,40}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_string()),
                    Just("tenant".to_string()),
                    Just("type".to_string()),
                    Just("occurred_at".to_string()),
                    Just("data".to_string()),
                    ".{0,8}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn scheme() -> impl Strategy<Value = SignatureScheme> {
    prop_oneof![
        Just(SignatureScheme::Standard),
        Just(serde_json::from_str(r#"{"scheme":"hmac","header":"X-Sig","prefix":"sha256=","signed":"timestamp.body","timestamp_header":"X-Ts","timestamp_unit":"ms"}"#).expect("scheme")),
        Just(serde_json::from_str(r#"{"scheme":"hmac","header":"X-Sig","encoding":"base64"}"#).expect("scheme")),
    ]
}

proptest! {
    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn envelope_parsing_never_panics_on_bytes(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Event::parse(&raw, Utc::now(), || "evt_x".into());
    }

    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn envelope_parsing_never_panics_on_json_and_valid_events_round_trip(value in json_value()) {
        if let Ok(event) = Event::from_value(value, Utc::now(), || "evt_x".into()) {
            let again = Event::parse(&event.to_envelope_json(), Utc::now(), || "other".into());
            prop_assert_eq!(again.map(|e| e.id), Ok(event.id));
        }
    }

    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn task_decoding_never_panics(raw in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(task) = DeliveryTask::decode(raw.as_slice()) {
            let _ = hookline_proto::signature::scheme_of(&task);
        }
    }

    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn signature_header_parsing_never_panics_nor_accepts_garbage(
        scheme in scheme(),
        id in ".{0,40}",
        timestamp in ".{0,20}",
        signature in ".{0,120}",
        body in prop::collection::vec(any::<u8>(), 0..128),
    ) {
        let secret = Secret::parse(&scheme, match scheme {
            SignatureScheme::Standard => "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            _ => "a-secret-of-at-least-16",
        }).expect("secret");
        let lookup = |name: &str| match name.to_ascii_lowercase().as_str() {
            "webhook-id" => Some(id.clone()),
            "webhook-timestamp" | "x-ts" => Some(timestamp.clone()),
            "webhook-signature" | "x-sig" => Some(signature.clone()),
            _ => None,
        };
        let now = 1_700_000_000_000;
        let verdict = hookline_signature::verify(&scheme, &secret, &lookup, &body, now, Duration::from_secs(300));
        prop_assert!(verdict.is_err());
    }

    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn retry_after_parsing_never_panics(value in ".{0,64}") {
        let _ = hookline_model::retry::parse_retry_after(&value, SystemTime::now());
    }

    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn inbound_bodies_become_objects_or_a_clear_4xx(
        content_type in prop_oneof![
            Just("application/json".to_string()),
            Just("application/x-www-form-urlencoded".to_string()),
            Just("application/vnd.api+json; charset=utf-8".to_string()),
            "[ -~]{0,40}",
        ],
        body in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut headers = axum::http::HeaderMap::new();
        if let Ok(value) = axum::http::HeaderValue::from_str(&content_type) {
            headers.insert(axum::http::header::CONTENT_TYPE, value);
        }
        match hookline_ingest::inbound::data_of(&headers, &body) {
            // Whatever became data is an object an envelope accepts.
            Ok(data) => {
                let envelope = serde_json::json!({"tenant": "acme", "type": "form.submitted", "data": data});
                prop_assert!(Event::from_value(envelope, Utc::now(), || "evt_x".into()).is_ok());
            }
            Err(refusal) => prop_assert!(refusal.status().is_client_error()),
        }
    }

    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn inbound_event_ids_always_fit_the_envelope_and_are_stable(
        raw in prop::collection::vec(any::<u8>(), 1..300),
        header in prop_oneof![Just("webhook-id"), Just("idempotency-key")],
    ) {
        let Ok(value) = axum::http::HeaderValue::from_bytes(&raw) else {
            return Ok(());
        };
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(header, value);
        let id = hookline_ingest::inbound::event_id(&headers).expect("an id from the header");
        let envelope = serde_json::json!({"id": id, "tenant": "acme", "type": "a.b", "data": {}});
        let event = Event::from_value(envelope, Utc::now(), || "generated".into());
        prop_assert_eq!(event.map(|e| e.id), Ok(id.clone()));
        prop_assert_eq!(hookline_ingest::inbound::event_id(&headers), Some(id));
    }

    #[test]
    #[ignore = "fuzz target: make fuzz"]
    fn a_verification_answer_verifies_only_when_it_holds_the_token(
        body in prop::collection::vec(any::<u8>(), 0..600),
        wrapped in prop_oneof![Just(0u8), Just(1), Just(2), Just(3)],
    ) {
        use hookline_model::verification::{answer_holds, new_token};
        let token = new_token();
        // Arbitrary bytes never hold a fresh 256-bit token, and never panic.
        prop_assert!(!answer_holds(&body, &token));
        // The shapes the contract allows always do, whatever surrounds them.
        let answer = match wrapped {
            0 => token.clone(),
            1 => format!("  {token}\r\n"),
            2 => serde_json::json!({"token": token}).to_string(),
            _ => serde_json::json!({"status": "ok", "token": token, "extra": String::from_utf8_lossy(&body)}).to_string(),
        };
        prop_assert!(answer_holds(answer.as_bytes(), &token));
        // A token that is only part of the answer does not.
        let mut longer = answer.into_bytes();
        longer.extend_from_slice(b"x");
        if wrapped < 2 {
            prop_assert!(!answer_holds(&longer, &token));
        }
    }
}
