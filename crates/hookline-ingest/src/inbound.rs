//! `POST /v1/in/{token}`: a third party's webhook, turned into an event of
//! the source's tenant and type.
//!
//! Nothing of the request is trusted or copied but the body, the signature
//! headers the source's scheme reads, and `webhook-id` or
//! `Idempotency-Key` for the event id. Checks run cheapest and least
//! revealing first: the token, the rate limit, the signature (so an
//! unauthenticated sender learns nothing about the body rules), then the
//! body.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use hookline_model::envelope::is_valid_event_id;
use hookline_model::{ids, Event};
use hookline_signature::{VerifyError, DEFAULT_TOLERANCE};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::handlers::{error, publish, Accepted};
use crate::openapi::INBOUND;
use crate::sources::{Lookup, Source, Verify};
use crate::AppState;

/// The headers an event id is taken from, in order of preference.
const ID_HEADERS: [&str; 2] = ["webhook-id", "idempotency-key"];

/// The label values of `hookline_ingest_source_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Published and confirmed: `202`.
    Accepted,
    /// The signature did not verify: `401`.
    Unverified,
    /// Refused for another reason (body, type, rate, broker).
    Rejected,
    /// No such source: `404`.
    Unknown,
}

impl Outcome {
    /// Every value, to export zeros from the start.
    pub const ALL: [Outcome; 4] = [
        Outcome::Accepted,
        Outcome::Unverified,
        Outcome::Rejected,
        Outcome::Unknown,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Unverified => "unverified",
            Outcome::Rejected => "rejected",
            Outcome::Unknown => "unknown",
        }
    }
}

/// Turns a request into an event; `202 {"id"}` after the broker's confirm.
#[utoipa::path(post, path = INBOUND, operation_id = "receiveInbound",
    summary = "Receive a third party's webhook at a source URL; it becomes an event of the source's tenant and type",
    params(("token" = String, Path, description = "The source URL's secret token")),
    request_body(content = Object, description = "A JSON object, or an application/x-www-form-urlencoded body (an object of strings)"),
    responses(
        (status = 202, description = "Published and confirmed", body = Accepted),
        (status = 400, description = "The JSON body is not an object, or `data` fails the type's schema", body = hookline_model::error_body::ErrorBody),
        (status = 401, description = "The signature does not verify (`code` says why)", body = hookline_model::error_body::ErrorBody),
        (status = 404, description = "No such source (or deleted)", body = hookline_model::error_body::ErrorBody),
        (status = 413, description = "Body over ingest.max_event_bytes", body = hookline_model::error_body::ErrorBody),
        (status = 415, description = "Neither JSON nor a form", body = hookline_model::error_body::ErrorBody),
        (status = 429, description = "Over ingest.source_rate_limit; see Retry-After", body = hookline_model::error_body::ErrorBody),
        (status = 503, description = "Broker unreachable, sources not loaded yet, or shutting down; nothing was published", body = hookline_model::error_body::ErrorBody),
    ))]
pub async fn receive(
    State(state): State<Arc<AppState>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let (source, result) = handle(&state, &token, &headers, body).await;
    let (outcome, response) = match result {
        Ok(id) => {
            if let Some(source) = &source {
                state
                    .request_log
                    .note(&source.id, &source.tenant, 202, "", &id);
            }
            let accepted = Json(Accepted { id });
            (
                Outcome::Accepted,
                (StatusCode::ACCEPTED, accepted).into_response(),
            )
        }
        Err(refusal) => {
            if let Some(source) = &source {
                let status = refusal.status.as_u16();
                state
                    .request_log
                    .note(&source.id, &source.tenant, status, refusal.code, "");
            }
            (refusal.outcome, refusal.into_response())
        }
    };
    state
        .metrics
        .source_requests
        .with_label_values(&[outcome.as_str()])
        .inc();
    state
        .metrics
        .request_seconds
        .with_label_values(&[INBOUND])
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Why a request published nothing: the answer, and what is counted and
/// noted of it.
#[derive(Debug)]
pub struct Refusal {
    outcome: Outcome,
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl Refusal {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Rejected,
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A `503` with `Retry-After: 1`, which senders' retry logic understands.
    fn retry_later(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    fn counted_as(self, outcome: Outcome) -> Self {
        Self { outcome, ..self }
    }

    /// The status code, for tests and fuzzing.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = error(self.status, self.code, self.message);
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The event id published, or why not; with the source when the token
/// named one (only those requests are noted for the tenant).
async fn handle(
    state: &AppState,
    token: &str,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> (Option<Arc<Source>>, Result<String, Refusal>) {
    if state.draining.is_cancelled() {
        let refusal = Refusal::retry_later("shutting_down", "this ingest is shutting down; retry");
        return (None, Err(refusal));
    }
    let source = match state.sources.lookup(token) {
        Lookup::Found(source) => source,
        Lookup::Unknown => {
            let refusal = Refusal::new(
                StatusCode::NOT_FOUND,
                "unknown_source",
                "no source has this URL",
            );
            return (None, Err(refusal.counted_as(Outcome::Unknown)));
        }
        Lookup::NotLoaded => {
            let refusal = Refusal::retry_later(
                "sources_loading",
                "this ingest has not read the sources from the api yet; retry",
            );
            return (None, Err(refusal));
        }
    };
    let result = accept(state, &source, headers, body).await;
    (Some(source), result)
}

/// The checks and the publish for a known source.
async fn accept(
    state: &AppState,
    source: &Source,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<String, Refusal> {
    let limited = state.source_limits.as_ref().map(|l| l.take(&source.id));
    if let Some(Err(wait)) = limited {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Err(Refusal {
            retry_after: Some(seconds),
            ..Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this source may make {} requests a second (ingest.source_rate_limit); retry in {seconds} s",
                    state.config.source_rate_limit
                ),
            )
        });
    }
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "the request body is over the limit of {} bytes",
                    state.config.max_event_bytes
                ),
            )
        } else {
            Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                rejection.body_text(),
            )
        }
    })?;
    check_signature(source, headers, &body)?;
    let data = data_of(headers, &body)?;
    let event = event_of(state, source, headers, data)?;
    match publish(state, &event, None).await {
        Ok(()) => Ok(event.id),
        Err(e) => {
            tracing::warn!(error = %e, source_id = %source.id, "inbound publish failed; answered 503");
            Err(Refusal::retry_later(
                "unavailable",
                format!("the event was not accepted: {e}; nothing was published, retry later"),
            ))
        }
    }
}

/// The source's signature check over the raw body; `401` with a reason
/// code on failure.
fn check_signature(source: &Source, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let (scheme, secret) = match &source.verify {
        Verify::None => return Ok(()),
        Verify::Signed(scheme, secret) => (scheme, secret),
        Verify::Broken(_) => {
            return Err(Refusal::retry_later(
                "verification_unavailable",
                "this source's verification secret cannot be opened here; retry later",
            ))
        }
    };
    let lookup = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let now = Utc::now().timestamp_millis();
    hookline_signature::verify(scheme, secret, &lookup, body, now, DEFAULT_TOLERANCE).map_err(|e| {
        let code = match &e {
            VerifyError::MissingHeader(_) => "signature_missing",
            VerifyError::BadFormat(_) => "signature_malformed",
            VerifyError::TimestampOutOfTolerance => "signature_stale",
            VerifyError::NoMatch => "signature_mismatch",
        };
        Refusal::new(
            StatusCode::UNAUTHORIZED,
            code,
            format!("the request is not signed for this source: {e}"),
        )
        .counted_as(Outcome::Unverified)
    })
}

/// The media type of `Content-Type`, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The body as the event's `data`: a JSON object as is, a form as an
/// object of strings (a repeated field keeps its last value).
pub fn data_of(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, Refusal> {
    let media = media_type(headers);
    if media == "application/json" || media.ends_with("+json") {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(data)) => Ok(data),
            Ok(_) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_data",
                "a JSON body must be an object; it becomes the event's data",
            )),
            Err(e) => Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            )),
        };
    }
    if media == "application/x-www-form-urlencoded" {
        return Ok(form_urlencoded::parse(body)
            .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
            .collect());
    }
    Err(Refusal::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send application/json (an object) or application/x-www-form-urlencoded",
    ))
}

/// The sender's idempotency id, when it sent one. A value outside the
/// event id rules is not refused (the sender cannot be changed): it is
/// replaced by a digest of itself, so a retry still makes the same id.
pub fn event_id(headers: &HeaderMap) -> Option<String> {
    let given = ID_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))?
        .as_bytes();
    Some(match std::str::from_utf8(given) {
        Ok(id) if is_valid_event_id(id) => id.to_string(),
        _ => format!("in_{}", &hex::encode(Sha256::digest(given))[..32]),
    })
}

/// The event, validated like any other (the envelope's rules, then the
/// catalogue's schema of the source's type).
fn event_of(
    state: &AppState,
    source: &Source,
    headers: &HeaderMap,
    data: Map<String, Value>,
) -> Result<Event, Refusal> {
    let invalid =
        |code: &'static str, message: String| Refusal::new(StatusCode::BAD_REQUEST, code, message);
    let mut envelope = Map::new();
    envelope.insert("tenant".into(), Value::String(source.tenant.clone()));
    envelope.insert("type".into(), Value::String(source.event_type.clone()));
    envelope.insert("data".into(), Value::Object(data));
    if let Some(id) = event_id(headers) {
        envelope.insert("id".into(), Value::String(id));
    }
    let mut event = Event::from_value(Value::Object(envelope), Utc::now(), || ids::new_id("evt"))
        .map_err(|e| invalid(e.code, e.message))?;
    state
        .catalogue
        .current()
        .check(&event.event_type, &mut event.data)
        .map_err(|violation| {
            invalid(
                hookline_catalogue::SchemaViolation::CODE,
                violation.to_string(),
            )
        })?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn json_objects_and_forms_become_data_and_nothing_else_does() {
        let json = headers(&[("content-type", "application/json; charset=utf-8")]);
        assert_eq!(
            data_of(&json, br#"{"email":"ana@example.com"}"#).unwrap()["email"],
            "ana@example.com"
        );
        assert_eq!(
            data_of(&json, b"[1]").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            data_of(&json, b"{").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let data = data_of(&form, b"name=Ana+Lima&email=ana%40example.com&n=1&n=2").unwrap();
        assert_eq!(data["name"], "Ana Lima");
        assert_eq!(data["email"], "ana@example.com");
        assert_eq!(data["n"], "2");
        for other in ["text/plain", "application/xml", ""] {
            let h = headers(&[("content-type", other)]);
            assert_eq!(
                data_of(&h, b"x").unwrap_err().status(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{other}"
            );
        }
    }

    #[test]
    fn the_event_id_comes_from_the_sender_and_odd_ones_are_digested() {
        assert_eq!(event_id(&HeaderMap::new()), None);
        assert_eq!(
            event_id(&headers(&[("webhook-id", "msg_2KWPBgLlAf")])).as_deref(),
            Some("msg_2KWPBgLlAf")
        );
        assert_eq!(
            event_id(&headers(&[("idempotency-key", "order-17")])).as_deref(),
            Some("order-17")
        );
        let odd = event_id(&headers(&[("idempotency-key", "a key with spaces")])).unwrap();
        assert!(odd.starts_with("in_") && odd.len() == 35, "{odd}");
        assert_eq!(
            event_id(&headers(&[("idempotency-key", "a key with spaces")])).unwrap(),
            odd,
            "a retry makes the same id"
        );
    }
}
