//! The writable fields of a subscription, validated together: a create
//! starts from defaults, a PATCH from the stored values, and both overlay the
//! request body and check the result as a whole (a new signing scheme must
//! fit the secret, static headers must not shadow the signature header).

use std::collections::BTreeMap;

use hookline_render::{
    BatchOption, BodyFormat, BodyOption, DeliveryOptions, DeliveryPlan, Limits, Method, Ordering,
    RateLimit, Verification,
};
use hookline_signature::{Secret, SignatureScheme};
use serde_json::{Map, Value};

use hookline_model::sealed::Keyring;

use super::views;
use crate::error::ApiError;
use crate::store::subscriptions::SubscriptionRow;
use crate::validate::{self, Rules};

/// A subscription's writable fields.
#[derive(Debug, Clone, Default)]
pub(super) struct Draft {
    /// `name`.
    pub name: String,
    /// `url`.
    pub url: String,
    /// `event_types`.
    pub event_types: Vec<String>,
    /// `enabled`.
    pub enabled: bool,
    /// The current secret in clear; `None` on a create that gave none.
    pub secret: Option<String>,
    /// Whether the body set `secret`.
    pub secret_changed: bool,
    /// `signature`.
    pub signature: SignatureScheme,
    /// `headers`.
    pub headers: BTreeMap<String, String>,
    /// `method`, `body`, `filter` (and options of later versions, kept).
    pub options: DeliveryOptions,
}

/// The request body of a create or a PATCH, for the OpenAPI document only:
/// bodies are read field by field by [`Draft::apply`] so that each error
/// names its field, and this list of fields sits beside those rules so the
/// two change together. On a create `url` and `event_types` are required.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(as = SubscriptionFields)]
pub(crate) struct SubscriptionFields {
    /// A label for people, up to 200 characters.
    name: Option<String>,
    /// `https://` (or `http://` with `api.allow_insecure_urls`), public.
    url: Option<String>,
    /// Exact types, or patterns with `*` as the last segment.
    event_types: Option<Vec<String>>,
    /// `true` unless given.
    enabled: Option<bool>,
    /// `{"scheme": "standard"}` (the default) or an `hmac` style.
    #[schema(value_type = Option<Object>)]
    signature: Option<()>,
    /// A secret of your own; generated when absent.
    secret: Option<String>,
    /// Static headers for every delivery; not the signature's.
    #[schema(example = json!({"Authorization": "Bearer receivers-token"}))]
    headers: Option<BTreeMap<String, String>>,
    /// `POST` (the default), `PUT`, `PATCH`, `DELETE` or `GET` (no body: the
    /// form-encoded fields go in the query).
    #[schema(value_type = Option<String>, example = "PUT")]
    method: Option<()>,
    /// `{"format": "json" | "form", "template": …}`: Jinja merge fields over
    /// `type`, `id`, `tenant`, `timestamp` and `data`.
    #[schema(value_type = Option<Object>, example = json!({
        "format": "form",
        "template": {"email": "{{ data.contact.email }}", "event": "{{ type }}"}
    }))]
    body: Option<()>,
    /// A CEL expression over the same fields; only events for which it is
    /// `true` are delivered.
    #[schema(example = "data.amount > 100 && data.stage == 'won'")]
    filter: Option<String>,
    /// `none` (the default) or `challenge`: deliver nothing until the
    /// endpoint echoes the token of a `webhook.verification` delivery.
    #[schema(example = "challenge")]
    verification: Option<String>,
    /// `none` (the default) or `fifo`: one delivery at a time in match
    /// order; a failing one holds those behind it until it succeeds or is
    /// parked.
    #[schema(example = "fifo")]
    ordering: Option<String>,
    /// `{"per_second": n}` (1 to 10,000): at most n requests in any
    /// one-second window, across every deliverer; `"none"` removes it.
    #[schema(value_type = Option<Object>, example = json!({"per_second": 20}))]
    rate_limit: Option<()>,
}

/// `rate_limit`: `{"per_second": 1…10000}`, or `"none"` to remove it.
fn rate_limit(value: &Value) -> Result<Option<RateLimit>, ApiError> {
    if value.as_str() == Some("none") {
        return Ok(None);
    }
    let invalid = || {
        ApiError::invalid(
            "invalid_rate_limit",
            format!(
                "rate_limit.per_second must be an integer from 1 to {} (or rate_limit: \"none\" to \
                 remove the limit)",
                RateLimit::MAX_PER_SECOND
            ),
        )
    };
    let limit: RateLimit = serde_json::from_value(value.clone()).map_err(|_| invalid())?;
    if !(1..=RateLimit::MAX_PER_SECOND).contains(&limit.per_second) {
        return Err(invalid());
    }
    Ok(Some(limit))
}

/// `batch`, checked field by field so a wrong value names its field;
/// `"none"` removes it.
fn batch(value: &Value) -> Result<Option<BatchOption>, ApiError> {
    if value.as_str() == Some("none") {
        return Ok(None);
    }
    let invalid = |message: &str| ApiError::invalid("invalid_batch", message.to_string());
    let object = value
        .as_object()
        .ok_or_else(|| invalid("batch must be {\"max_events\": 1…1000, \"max_wait\": \"…\"}"))?;
    let max_events = match object.get("max_events").and_then(Value::as_u64) {
        Some(n @ 1..=1000) => n as u32,
        _ => {
            return Err(invalid(
                "batch.max_events must be an integer from 1 to 1000",
            ))
        }
    };
    let max_wait = object.get("max_wait").and_then(Value::as_str);
    match max_wait.map(hookline_config::parse_duration) {
        Some(Ok(wait)) if !wait.is_zero() && wait <= BatchOption::MAX_WAIT => {}
        _ => {
            return Err(invalid(
                "batch.max_wait must be a duration above 0 and up to 60s (\"500ms\", \"2s\")",
            ))
        }
    }
    if let Some(other) = object
        .keys()
        .find(|k| *k != "max_events" && *k != "max_wait")
    {
        return Err(invalid(&format!("batch.{other} is not a batch option")));
    }
    Ok(Some(BatchOption {
        max_events,
        max_wait: max_wait.unwrap_or_default().to_string(),
    }))
}

/// The body's value for `key`, treating `null` as absent.
fn field<'a>(body: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    body.get(key).filter(|v| !v.is_null())
}

impl Draft {
    /// The starting point of a create.
    pub fn new() -> Self {
        Draft {
            enabled: true,
            ..Draft::default()
        }
    }

    /// The starting point of a PATCH: the stored values and the opened
    /// secret. A stored scheme always deserializes (it was validated on the
    /// way in); should one not, it reads as `standard`.
    pub fn from_row(row: &SubscriptionRow, secret: String, headers: &Value) -> Self {
        let headers = headers
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Draft {
            name: row.name.clone(),
            url: row.url.clone(),
            event_types: row.event_types.clone(),
            enabled: row.enabled,
            secret: Some(secret),
            secret_changed: false,
            signature: serde_json::from_value(row.signature.clone()).unwrap_or_default(),
            headers,
            options: DeliveryOptions::from_stored(&row.options).unwrap_or_default(),
        }
    }

    /// Writes the fields back into a row; headers are sealed afresh, the
    /// secret only when the body changed it.
    pub fn write_to(&self, row: &mut SubscriptionRow, keyring: &Keyring) -> Result<(), ApiError> {
        row.name = self.name.clone();
        row.url = self.url.clone();
        row.event_types = self.event_types.clone();
        row.enabled = self.enabled;
        row.signature = self.signature_json();
        row.headers = Value::Object(Map::new());
        row.headers_sealed = views::seal_headers(keyring, &row.id, &self.headers)?;
        row.options = self.options.to_stored();
        if let (true, Some(secret)) = (self.secret_changed, &self.secret) {
            row.secret_sealed = views::seal_secret(keyring, &row.id, secret)?;
        }
        Ok(())
    }

    /// The `signature` column.
    pub fn signature_json(&self) -> Value {
        serde_json::to_value(&self.signature)
            .unwrap_or_else(|_| serde_json::json!({"scheme": "standard"}))
    }

    /// Overlays the fields present in `body` and validates the result.
    /// `creating` makes `url` and `event_types` required.
    pub fn apply(
        &mut self,
        body: &Map<String, Value>,
        rules: &Rules,
        creating: bool,
    ) -> Result<(), ApiError> {
        if let Some(value) = field(body, "name") {
            self.name = validate::name(value)?;
        }
        match field(body, "url") {
            Some(Value::String(url)) => {
                validate::url(url, rules)?;
                self.url = url.clone();
            }
            Some(_) => return Err(ApiError::invalid("invalid_url", "url must be a string")),
            None if creating => return Err(ApiError::invalid("invalid_url", "url is required")),
            None => {}
        }
        match field(body, "event_types") {
            Some(value) => self.event_types = validate::event_types(value)?,
            None if creating => {
                return Err(ApiError::invalid(
                    "invalid_event_types",
                    "event_types is required",
                ))
            }
            None => {}
        }
        match field(body, "enabled") {
            Some(Value::Bool(enabled)) => self.enabled = *enabled,
            Some(_) => {
                return Err(ApiError::invalid(
                    "invalid_enabled",
                    "enabled must be true or false",
                ))
            }
            None => {}
        }
        let new_scheme = field(body, "signature")
            .map(validate::signature)
            .transpose()?;
        let scheme_changed = new_scheme.as_ref().is_some_and(|s| *s != self.signature);
        if let Some(scheme) = new_scheme {
            self.signature = scheme;
        }
        if let Some(value) = field(body, "secret") {
            self.secret = Some(validate::secret(&self.signature, value)?);
            self.secret_changed = true;
        } else if scheme_changed {
            if let Some(current) = &self.secret {
                if Secret::parse(&self.signature, current).is_err() {
                    return Err(ApiError::invalid(
                        "invalid_secret",
                        "secret: the current secret does not fit the new signature scheme; give a new secret with it",
                    ));
                }
            }
        }
        if let Some(value) = field(body, "headers") {
            self.headers = validate::headers(value, rules, &self.signature_headers())?;
        } else if scheme_changed {
            let current = Value::Object(
                self.headers
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            );
            validate::headers(&current, rules, &self.signature_headers())?;
        }
        self.apply_options(body)
    }

    /// Overlays `method`, `body`, `filter`, `verification`, `ordering`,
    /// `rate_limit` and `batch` and compiles the result, so a
    /// template or filter that would fail in fanout is a `422` here. In a
    /// PATCH, `null` leaves an option unchanged, like any field; to remove
    /// one, send its default (`"POST"`, `{"format": "json"}`, `""`).
    fn apply_options(&mut self, body: &Map<String, Value>) -> Result<(), ApiError> {
        if let Some(value) = field(body, "method") {
            let method: Method = serde_json::from_value(value.clone()).map_err(|_| {
                ApiError::invalid(
                    "invalid_method",
                    "method must be one of POST, PUT, PATCH, DELETE, GET",
                )
            })?;
            self.options.method = (method != Method::Post).then_some(method);
        }
        if let Some(value) = field(body, "body") {
            let option: BodyOption = serde_json::from_value(value.clone()).map_err(|e| {
                ApiError::invalid(
                    "invalid_body",
                    format!(
                        "body: {e} (expected {{\"format\": \"json\" | \"form\", \"template\": …}})"
                    ),
                )
            })?;
            self.options.body = (option != BodyOption::default()).then_some(option);
        }
        match field(body, "filter") {
            Some(Value::String(filter)) if filter.trim().is_empty() => self.options.filter = None,
            Some(Value::String(filter)) => self.options.filter = Some(filter.clone()),
            Some(_) => {
                return Err(ApiError::invalid(
                    "invalid_filter",
                    "filter must be a string (a CEL expression)",
                ))
            }
            None => {}
        }
        if let Some(value) = field(body, "verification") {
            let verification: Verification =
                serde_json::from_value(value.clone()).map_err(|_| {
                    ApiError::invalid(
                        "invalid_verification",
                        "verification must be \"none\" or \"challenge\"",
                    )
                })?;
            self.options.verification =
                (verification != Verification::None).then_some(verification);
        }
        if let Some(value) = field(body, "ordering") {
            let ordering: Ordering = serde_json::from_value(value.clone()).map_err(|_| {
                ApiError::invalid("invalid_ordering", "ordering must be \"none\" or \"fifo\"")
            })?;
            self.options.ordering = (ordering != Ordering::None).then_some(ordering);
        }
        if let Some(value) = field(body, "rate_limit") {
            self.options.rate_limit = rate_limit(value)?;
        }
        if let Some(value) = field(body, "batch") {
            self.options.batch = batch(value)?;
        }
        // A batch body is a JSON array of the events' bodies: a form body
        // or a GET has no place for it.
        let json_body = self
            .options
            .body
            .as_ref()
            .is_none_or(|b| b.format == BodyFormat::Json);
        if self.options.batch.is_some() && (!json_body || self.options.method == Some(Method::Get))
        {
            return Err(ApiError::invalid(
                "invalid_batch",
                "batch needs a JSON body sent with a body-carrying method: it cannot be combined \
                 with body.format \"form\" or method GET",
            ));
        }
        DeliveryPlan::compile(&self.options, Limits::default())
            .map(drop)
            .map_err(|e| ApiError::invalid(e.code, e.message))
    }

    /// Header names the signing scheme writes besides the `webhook-*` ones.
    fn signature_headers(&self) -> Vec<&str> {
        match &self.signature {
            SignatureScheme::Standard => Vec::new(),
            SignatureScheme::Hmac(h) => std::iter::once(h.header.as_str())
                .chain(h.timestamp_header.as_deref())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use hookline_model::ssrf::Guard;
    use serde_json::json;

    use super::*;

    fn rules() -> Rules {
        Rules {
            allow_insecure_urls: false,
            guard: Guard::default(),
            max_headers: 20,
        }
    }

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn code(result: Result<(), ApiError>) -> &'static str {
        match result {
            Ok(()) => "ok",
            Err(ApiError::Invalid { code, .. }) => code,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_create_needs_a_url_and_event_types() {
        let mut draft = Draft::new();
        assert_eq!(
            code(draft.apply(&body(json!({"event_types": ["a"]})), &rules(), true)),
            "invalid_url"
        );
        let mut draft = Draft::new();
        assert_eq!(
            code(draft.apply(&body(json!({"url": "https://example.com"})), &rules(), true)),
            "invalid_event_types"
        );
    }

    #[test]
    fn a_minimal_create_gets_the_defaults() {
        let mut draft = Draft::new();
        draft
            .apply(
                &body(json!({"url": "https://example.com/h", "event_types": ["lead.*"]})),
                &rules(),
                true,
            )
            .unwrap();
        assert!(draft.enabled);
        assert_eq!(draft.signature, SignatureScheme::Standard);
        assert!(draft.secret.is_none());
        assert!(draft.headers.is_empty());
    }

    #[test]
    fn switching_to_standard_with_an_hmac_only_secret_needs_a_new_secret() {
        let mut draft = Draft::new();
        let hmac = json!({"url": "https://example.com/h", "event_types": ["*"],
            "signature": {"scheme": "hmac", "header": "X-Signature"}, "secret": "0123456789abcdef"});
        draft.apply(&body(hmac), &rules(), true).unwrap();
        let patch = body(json!({"signature": {"scheme": "standard"}}));
        assert_eq!(
            code(draft.clone().apply(&patch, &rules(), false)),
            "invalid_secret"
        );
        let mut with_secret = patch.clone();
        with_secret.insert(
            "secret".into(),
            json!(hookline_signature::generate_secret()),
        );
        assert_eq!(code(draft.apply(&with_secret, &rules(), false)), "ok");
    }

    #[test]
    fn a_static_header_may_not_shadow_a_newly_chosen_signature_header() {
        let mut draft = Draft::new();
        let create = json!({"url": "https://example.com/h", "event_types": ["*"], "headers": {"X-Sig": "1"}});
        draft.apply(&body(create), &rules(), true).unwrap();
        let patch = body(json!({"signature": {"scheme": "hmac", "header": "x-sig"}}));
        assert_eq!(
            code(draft.apply(&patch, &rules(), false)),
            "invalid_headers"
        );
    }

    #[test]
    fn null_leaves_a_field_unchanged_in_a_patch() {
        let mut draft = Draft::new();
        draft
            .apply(
                &body(json!({"url": "https://example.com/h", "event_types": ["*"], "name": "CRM"})),
                &rules(),
                true,
            )
            .unwrap();
        draft
            .apply(
                &body(json!({"name": null, "enabled": false})),
                &rules(),
                false,
            )
            .unwrap();
        assert_eq!(draft.name, "CRM");
        assert!(!draft.enabled);
    }

    #[test]
    fn enabled_must_be_a_boolean() {
        let mut draft = Draft::new();
        assert_eq!(
            code(draft.apply(&body(json!({"enabled": "yes"})), &rules(), false)),
            "invalid_enabled"
        );
    }
}
