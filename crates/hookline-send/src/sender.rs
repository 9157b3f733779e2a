//! One HTTP attempt: sign, POST with a total deadline, read a bounded
//! excerpt, classify. Shared by the deliverer and the api's test send.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hookline_config::DeliverySettings;
use hookline_model::retry::{classify_status, parse_retry_after, Classification, StatusClass};
use hookline_model::sealed::Keyring;
use hookline_model::ssrf::Guard;
use hookline_model::trace::TraceParent;
use hookline_proto::DeliveryTask;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::request::{prepare, PrepareError};
use hookline_render::Method;

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = concat!("Hookline/", env!("CARGO_PKG_VERSION"));

/// What one attempt produced.
#[derive(Debug, Clone)]
pub struct SendResult {
    /// Success, failure or gone.
    pub classification: Classification,
    /// The metric label class.
    pub status_class: StatusClass,
    /// The HTTP status, when an answer arrived.
    pub response_status: Option<u16>,
    /// Wall time of the attempt.
    pub duration: Duration,
    /// Short error text: a response body excerpt or the connection error.
    pub error: Option<String>,
    /// The receiver's `Retry-After`, parsed.
    pub retry_after: Option<Duration>,
    /// The first bytes of the answer's body (`delivery.response_excerpt_bytes`,
    /// and at least enough to hold a verification token for a challenge).
    pub answer: Vec<u8>,
}

/// A pooled, keep-alive HTTP client behind the SSRF guard.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    guard: Guard,
    timeout: Duration,
    excerpt_bytes: usize,
    keyring: Arc<Keyring>,
}

/// Resolves names, then drops every address the guard refuses; checking at
/// connect time is what defeats DNS rebinding.
struct GuardedResolver {
    guard: Guard,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|a| guard.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                return Err(
                    format!("{host} resolves only to addresses the SSRF guard refuses").into(),
                );
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Why a sender could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct SenderError(String);

impl Sender {
    /// A client configured from `delivery.*`.
    pub fn new(settings: &DeliverySettings, keyring: Arc<Keyring>) -> Result<Self, SenderError> {
        let guard = Guard::new(settings.allowed_networks.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the SSRF guard.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                guard: guard.clone(),
            }))
            .connect_timeout(settings.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            // Many subscriptions often share one host (a SaaS's webhook
            // intake): keep a connection for every slot, or sends above the
            // idle limit would reconnect each time.
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .tcp_nodelay(true)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| SenderError(e.to_string()))?;
        Ok(Self {
            client,
            guard,
            timeout: settings.timeout,
            excerpt_bytes: settings.response_excerpt_bytes,
            keyring,
        })
    }

    /// Makes one attempt of `task`; `trace` is the attempt's span, sent as
    /// the request's `traceparent`.
    pub async fn send(&self, task: &DeliveryTask, trace: TraceParent) -> SendResult {
        let started = Instant::now();
        let failed = |class: StatusClass, error: String| SendResult {
            classification: Classification::Failed,
            status_class: class,
            response_status: None,
            duration: started.elapsed(),
            error: Some(error),
            retry_after: None,
            answer: Vec::new(),
        };
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let prepared = match prepare(&self.keyring, task, now_ms, trace) {
            Ok(prepared) => prepared,
            Err(e) => {
                let classification = match e {
                    PrepareError::Unrenderable(_) => Classification::Unrenderable,
                    PrepareError::Credentials(_) => Classification::Unsendable,
                    PrepareError::InvalidUrl(_) | PrepareError::Sign(_) => Classification::Failed,
                };
                return SendResult {
                    classification,
                    ..failed(StatusClass::Connect, e.to_string())
                };
            }
        };
        if let Some(host) = prepared.url.host_str() {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = literal.parse::<IpAddr>() {
                if !self.guard.permits(ip) {
                    return failed(
                        StatusClass::Connect,
                        format!("{ip} is refused by the SSRF guard"),
                    );
                }
            }
        }
        let method = match prepared.method {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
            Method::Delete => reqwest::Method::DELETE,
            Method::Get => reqwest::Method::GET,
        };
        let mut request = self
            .client
            .request(method, prepared.url)
            .timeout(self.timeout);
        for (name, value) in &prepared.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.body(prepared.body).send().await;
        let mut response = match response {
            Ok(r) => r,
            Err(e) => {
                let class = if e.is_timeout() {
                    StatusClass::Timeout
                } else {
                    StatusClass::Connect
                };
                return failed(class, error_text(&e));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let (classification, status_class) = classify_status(status);
        let mut excerpt = Vec::new();
        let mut body_error = None;
        let keep = if task.challenge_token.is_empty() {
            self.excerpt_bytes
        } else {
            self.excerpt_bytes
                .max(hookline_model::verification::ANSWER_BYTES)
        };
        // The request timeout also bounds this read: a body that trickles
        // forever ends at the deadline, and only `keep` bytes are kept.
        while excerpt.len() < keep {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = keep - excerpt.len();
                    excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                Err(e) => {
                    body_error = Some(error_text(&e));
                    break;
                }
            }
        }
        let error = if classification == Classification::Succeeded {
            None
        } else if excerpt.is_empty() {
            Some(body_error.unwrap_or_else(|| format!("HTTP {status}")))
        } else {
            let shown = &excerpt[..excerpt.len().min(self.excerpt_bytes)];
            Some(String::from_utf8_lossy(shown).into_owned())
        };
        SendResult {
            classification,
            status_class,
            response_status: Some(status),
            duration: started.elapsed(),
            error,
            retry_after,
            answer: excerpt,
        }
    }
}

/// The error and its causes in one short line.
fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text.chars().take(500).collect()
}
