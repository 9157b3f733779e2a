//! Random templates and filters against the validators the api runs at
//! create: whatever a customer types, compiling answers `Ok` or an error
//! naming its field, and whatever compiles renders or evaluates within its
//! limits without panicking.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{BodyFormat, BodyOption, DeliveryOptions, DeliveryPlan, FilterInput, Limits};

/// Pieces of Jinja and of what customers paste into merge fields, so that
/// random strings reach the parser's deeper states rather than plain text.
const TEMPLATE_PIECES: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    " ",
    "data",
    ".",
    "contact",
    "email",
    "type",
    "id",
    "tenant",
    "timestamp",
    "|",
    "upper",
    "tojson",
    "default([])",
    "join(',')",
    "length",
    "for x in data.tags",
    "endfor",
    "if",
    "endif",
    "else",
    "range(1000000000)",
    "(",
    ")",
    "[",
    "]",
    "'",
    "\"",
    "~",
    "+",
    "*",
    "9999999",
    "-1",
    "none",
    "true",
    "x",
    "loop.index",
    "é",
    "\\",
    "{{ data }}",
    "{{ data.contact.email }}",
    "{% for i in range(10) %}",
    "{% endfor %}",
];

/// Pieces of CEL: variables, operators, literals, macros and mistakes.
const FILTER_PIECES: &[&str] = &[
    "data",
    ".",
    "amount",
    "stage",
    "tags",
    "type",
    "tenant",
    "id",
    "timestamp",
    "date",
    " ",
    ">",
    "<",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "in",
    "100",
    "-5",
    "1.5",
    "'won'",
    "\"vip\"",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "?",
    "size(",
    "has(",
    "startsWith(",
    ".exists(x, x > 1)",
    ".all(t, t == 'a')",
    "true",
    "false",
    "null",
    "+",
    "*",
    "/",
    "%",
    "0",
    "b'x'",
    "'",
    "9223372036854775807",
    "u",
    "x",
];

fn joined(pieces: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(pieces).prop_map(str::to_string),
            1 => ".{0,6}",
        ],
        0..14,
    )
    .prop_map(|parts| parts.concat())
}

/// A JSON body template: strings from Jinja pieces inside objects and
/// arrays, with the odd non-string leaf.
fn json_template() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        6 => joined(TEMPLATE_PIECES).prop_map(Value::String),
        1 => any::<i64>().prop_map(|n| json!(n)),
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Envelopes of the standard body, with `data` of any shape.
fn envelope() -> impl Strategy<Value = Value> {
    let data = prop_oneof![
        Just(json!({})),
        Just(json!({"amount": 500, "stage": "won", "tags": ["vip", "spring"]})),
        Just(json!({"contact": {"email": "ana@example.com", "tags": []}})),
        Just(json!({"amount": "a string", "tags": null})),
        Just(json!([1, 2, 3])),
        Just(Value::Null),
    ];
    data.prop_map(|data| {
        json!({
            "type": "lead.created",
            "timestamp": "2026-12-06T12:00:00Z",
            "tenant": "acme",
            "id": "evt_1",
            "data": data,
        })
    })
}

fn small_limits() -> Limits {
    Limits {
        fuel: 20_000,
        max_bytes: 16 * 1024,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_random_json_template_compiles_or_names_the_body_and_renders_within_limits(
        template in json_template(),
        envelope in envelope(),
    ) {
        let options = DeliveryOptions {
            body: Some(BodyOption { format: BodyFormat::Json, template: Some(template) }),
            ..DeliveryOptions::default()
        };
        match DeliveryPlan::compile(&options, small_limits()) {
            Err(e) => {
                prop_assert_eq!(e.field, "body");
                prop_assert_eq!(e.code, "invalid_body");
                prop_assert!(e.message.starts_with("body.template"), "{}", e.message);
            }
            Ok(plan) => {
                if let Ok(request) = plan.request(&envelope, small_limits()) {
                    prop_assert!(request.body.len() <= small_limits().max_bytes);
                    // What a JSON template renders is JSON.
                    prop_assert!(serde_json::from_slice::<Value>(&request.body).is_ok());
                }
            }
        }
    }

    #[test]
    fn a_random_form_template_compiles_or_names_the_body_and_renders_within_limits(
        fields in prop::collection::btree_map("[a-z_]{1,8}", json_template(), 0..5),
        envelope in envelope(),
    ) {
        let options = DeliveryOptions {
            body: Some(BodyOption {
                format: BodyFormat::Form,
                template: Some(Value::Object(fields.into_iter().collect())),
            }),
            ..DeliveryOptions::default()
        };
        match DeliveryPlan::compile(&options, small_limits()) {
            Err(e) => prop_assert_eq!(e.field, "body"),
            Ok(plan) => {
                if let Ok(request) = plan.request(&envelope, small_limits()) {
                    prop_assert!(request.body.len() <= small_limits().max_bytes);
                    prop_assert!(std::str::from_utf8(&request.body).is_ok());
                }
            }
        }
    }

    #[test]
    fn a_random_filter_compiles_or_names_the_filter_and_evaluates_without_panicking(
        source in joined(FILTER_PIECES),
        envelope in envelope(),
    ) {
        let options = DeliveryOptions {
            filter: Some(source),
            ..DeliveryOptions::default()
        };
        match DeliveryPlan::compile(&options, small_limits()) {
            Err(e) => {
                prop_assert_eq!(e.field, "filter");
                prop_assert_eq!(e.code, "invalid_filter");
            }
            Ok(plan) => {
                // Ok(bool) or an evaluation error, which fanout counts as false.
                let _ = plan.admits(&FilterInput::new(&envelope));
            }
        }
    }

    #[test]
    fn random_stored_options_never_panic_the_loader(options in json_template()) {
        let _ = DeliveryPlan::from_stored(&options, small_limits());
    }
}
