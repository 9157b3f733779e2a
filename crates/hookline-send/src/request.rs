//! The exact request of one attempt, built in one place so that what the
//! deliverer sends and what the api's preview shows cannot drift apart.

use hookline_model::sealed::Keyring;
use hookline_proto::signature::scheme_of;
use hookline_proto::DeliveryTask;
use hookline_render::Method;
use hookline_signature::Secret;

use hookline_model::trace::{TraceParent, TRACEPARENT};

use crate::sender::USER_AGENT;

/// Method, URL, headers and body as they go on the wire. The headers are in
/// the order they are sent; the static headers carry their clear values.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The HTTP method of the subscription's `method` option.
    pub method: Method,
    /// The subscription's URL, with a `GET`'s fields in its query.
    pub url: reqwest::Url,
    /// `User-Agent`, `Content-Type` (when there is a body), the static
    /// headers, then the signature headers.
    pub headers: Vec<(String, String)>,
    /// The bytes the signature covers.
    pub body: bytes::Bytes,
}

/// Why a task cannot become a request; each is decided before any byte is
/// sent.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// Fanout could not render the body: the task carries the reason.
    #[error("nothing was sent: the body template failed: {0}")]
    Unrenderable(String),
    /// The URL (with its query) does not parse.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The sealed secrets or headers do not open with the keys held here.
    #[error("nothing was sent: the subscription's credentials do not open: {0}")]
    Credentials(String),
    /// The signing secrets do not fit the scheme.
    #[error("cannot sign: {0}")]
    Sign(String),
}

/// Builds the request of `task`, signed at `now_ms` (Unix milliseconds),
/// with `trace` (the attempt's span) as its `traceparent`.
pub fn prepare(
    keyring: &Keyring,
    task: &DeliveryTask,
    now_ms: i64,
    trace: TraceParent,
) -> Result<Prepared, PrepareError> {
    if !task.render_error.is_empty() {
        return Err(PrepareError::Unrenderable(task.render_error.clone()));
    }
    let url = reqwest::Url::parse(&hookline_render::with_query(&task.url, &task.query))
        .map_err(|e| PrepareError::InvalidUrl(e.to_string()))?;
    let credentials = crate::credentials::open(keyring, task)
        .map_err(|e| PrepareError::Credentials(e.to_string()))?;
    let scheme = scheme_of(task);
    let secrets: Vec<Secret> = credentials
        .secrets
        .iter()
        .filter_map(|s| Secret::parse(&scheme, s).ok())
        .collect();
    let signed = hookline_signature::sign(&scheme, &secrets, &task.delivery_id, now_ms, &task.body)
        .map_err(|e| PrepareError::Sign(e.to_string()))?;
    let mut headers = vec![("User-Agent".to_string(), USER_AGENT.to_string())];
    if !task.body.is_empty() {
        let content_type = match task.content_type.as_str() {
            "" => "application/json",
            given => given,
        };
        headers.push(("Content-Type".to_string(), content_type.to_string()));
    }
    headers.extend(credentials.headers);
    headers.extend(signed);
    // Each attempt is a span of the event's trace, so a receiver's own trace
    // continues it; Hookline's context replaces a static header of that name.
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case(TRACEPARENT));
    headers.push((TRACEPARENT.to_string(), trace.to_string()));
    Ok(Prepared {
        method: Method::from_wire(&task.method),
        url,
        headers,
        body: task.body.clone(),
    })
}
