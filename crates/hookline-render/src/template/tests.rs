use serde_json::json;

use super::*;

/// A lead event as the seeds' CRMs send it.
fn envelope() -> Value {
    json!({
        "type": "lead.created",
        "timestamp": "2026-12-05T10:00:00.000Z",
        "tenant": "acme",
        "id": "evt_1",
        "data": {"contact": {"email": "ana@example.com", "name": "Ana"},
                 "tags": ["hot", "web"], "amount": 120, "won": true}
    })
}

fn render(format: Format, template: Value) -> Result<Rendered, RenderError> {
    let limits = Limits::default();
    BodyTemplate::compile(format, Some(&template), limits)
        .expect("compiles")
        .render(&envelope(), limits)
}

fn json_of(rendered: &Rendered) -> Value {
    serde_json::from_slice(&rendered.body).expect("JSON")
}

#[test]
fn a_json_template_keeps_types_of_single_fields_and_renders_other_strings_as_text() {
    let rendered = render(
        Format::Json,
        json!({"email": "{{ data.contact.email }}", "tags": "{{ data.tags }}",
               "amount": "{{ data.amount }}", "won": "{{data.won}}",
               "greeting": "Hi {{ data.contact.name }} ({{ type }})",
               "source": "crm", "nested": [{"id": "{{ id }}"}, 3, null],
               "missing": "{{ data.nope.deeper }}", "missing_text": "x{{ data.nope }}y",
               "defaulted": "{{ data.nope | default('none') }}"}),
    )
    .expect("renders");
    assert_eq!(rendered.content_type, "application/json");
    assert_eq!(
        json_of(&rendered),
        json!({"email": "ana@example.com", "tags": ["hot", "web"], "amount": 120, "won": true,
               "greeting": "Hi Ana (lead.created)", "source": "crm",
               "nested": [{"id": "evt_1"}, 3, null], "missing": null, "missing_text": "xy",
               "defaulted": "none"})
    );
}

#[test]
fn no_template_is_the_standard_body_or_its_flattened_form() {
    let limits = Limits::default();
    let json = BodyTemplate::compile(Format::Json, None, limits).unwrap();
    assert_eq!(
        json_of(&json.render(&envelope(), limits).unwrap()),
        envelope()
    );
    let form = BodyTemplate::compile(Format::Form, None, limits).unwrap();
    let rendered = form.render(&envelope(), limits).unwrap();
    assert_eq!(rendered.content_type, "application/x-www-form-urlencoded");
    let text = String::from_utf8(rendered.body).unwrap();
    assert!(
        text.contains("data%5Bcontact%5D%5Bemail%5D=ana%40example.com"),
        "{text}"
    );
    assert!(text.contains("data%5Btags%5D%5B1%5D=web"), "{text}");
}

#[test]
fn a_form_template_maps_fields_to_text() {
    let rendered = render(
        Format::Form,
        json!({"email": "{{ data.contact.email }}", "amount": "{{ data.amount }}", "src": "crm"}),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(rendered.body).unwrap(),
        "amount=120&email=ana%40example.com&src=crm"
    );
}

#[test]
fn a_missing_or_null_form_field_is_empty_not_the_word_null() {
    let rendered = render(
        Format::Form,
        json!({"phone": "{{ data.contact.phone }}", "gone": "{{ data.nothing.here }}"}),
    )
    .unwrap();
    assert_eq!(String::from_utf8(rendered.body).unwrap(), "gone=&phone=");
}

#[test]
fn a_template_that_does_not_parse_names_its_path() {
    let error = BodyTemplate::compile(
        Format::Json,
        Some(&json!({"contact": {"email": "{{ data.email "}})),
        Limits::default(),
    )
    .unwrap_err();
    assert_eq!(error.path, "body.template.contact.email");
    let error =
        BodyTemplate::compile(Format::Form, Some(&json!({"n": 1})), Limits::default()).unwrap_err();
    assert_eq!(error.path, "body.template.n");
    assert!(BodyTemplate::compile(Format::Form, Some(&json!("x")), Limits::default()).is_err());
}

#[test]
fn a_loop_runs_out_of_fuel_and_an_explosion_hits_the_output_limit() {
    let limits = Limits {
        fuel: 10_000,
        max_bytes: 64 * 1024,
    };
    let looping = BodyTemplate::compile(
        Format::Json,
        Some(&json!({"x": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"})),
        limits,
    )
    .unwrap();
    let error = looping.render(&envelope(), limits).unwrap_err();
    assert!(
        matches!(&error, RenderError::Template { message, .. } if message.contains("fuel")),
        "{error}"
    );
    let exploding = BodyTemplate::compile(
        Format::Json,
        Some(&json!({"x": "{% for i in range(5000) %}{{ data.contact.email }}{{ data.tags }}{% endfor %}",
                     "y": "{% for i in range(5000) %}{{ data.contact.email }}{% endfor %}"})),
        Limits {
            fuel: 1_000_000,
            max_bytes: 64 * 1024,
        },
    )
    .unwrap();
    let error = exploding
        .render(
            &envelope(),
            Limits {
                fuel: 1_000_000,
                max_bytes: 64 * 1024,
            },
        )
        .unwrap_err();
    assert_eq!(error, RenderError::TooLarge { limit: 64 * 1024 });
}

#[test]
fn a_filter_on_the_wrong_type_fails_the_render_with_the_path() {
    let error = render(Format::Json, json!({"x": "{{ range(data.contact) }}"})).unwrap_err();
    match error {
        RenderError::Template { path, .. } => assert_eq!(path, "body.template.x"),
        other => panic!("{other}"),
    }
}
