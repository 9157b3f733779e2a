//! A real HTTP receiver on loopback that records every request and answers
//! from a per-path script.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Request path.
    pub path: String,
    /// The HTTP method.
    pub method: String,
    /// The query string, without `?`; empty when there is none.
    pub query: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// Exact body bytes.
    pub body: Bytes,
    /// Arrival time.
    pub at: Instant,
}

impl Captured {
    /// A header value by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Wait before answering.
    pub delay: Duration,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// Answer `status` at once.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Captured>,
    scripts: HashMap<String, VecDeque<Reply>>,
    defaults: HashMap<String, Reply>,
    echoing: HashSet<String>,
}

/// The receiver; dropping it does not stop the server (the test ends first).
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    /// Starts on an ephemeral loopback port.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr: SocketAddr = listener.local_addr().expect("receiver address");
        let app = Router::new().fallback(capture).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{addr}"),
            inner,
        }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answers the next requests to `path` with `replies`, in order; then the
    /// default (200 unless set).
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.inner
            .lock()
            .expect("lock")
            .scripts
            .insert(path.to_string(), replies.into());
    }

    /// Answers every request to `path` with `reply` once the script is used up.
    pub fn set_default(&self, path: &str, reply: Reply) {
        self.inner
            .lock()
            .expect("lock")
            .defaults
            .insert(path.to_string(), reply);
    }

    /// Answers every verification challenge to `path` as an endpoint that
    /// wants the deliveries does: `200 {"token": <data.token>}`. Other
    /// requests are answered as before.
    pub fn echo_challenges(&self, path: &str) {
        self.inner
            .lock()
            .expect("lock")
            .echoing
            .insert(path.to_string());
    }

    /// Requests received on `path`, in arrival order.
    pub fn requests(&self, path: &str) -> Vec<Captured> {
        self.inner
            .lock()
            .expect("lock")
            .requests
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Every request received.
    pub fn all(&self) -> Vec<Captured> {
        self.inner.lock().expect("lock").requests.clone()
    }
}

async fn capture(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let challenge = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .filter(|v| v["type"] == "webhook.verification")
        .map(|v| serde_json::json!({"token": v["data"]["token"]}));
    let (reply, echo) = {
        let mut inner = inner.lock().expect("lock");
        let echo = challenge.filter(|_| inner.echoing.contains(&path));
        inner.requests.push(Captured {
            path: path.clone(),
            method: method.to_string(),
            query: uri.query().unwrap_or_default().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        v.to_str().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
            body,
            at: Instant::now(),
        });
        let scripted = inner.scripts.get_mut(&path).and_then(VecDeque::pop_front);
        let reply = scripted
            .or_else(|| inner.defaults.get(&path).cloned())
            .unwrap_or(Reply::status(200));
        (reply, echo)
    };
    if let Some(echo) = echo {
        return axum::Json(echo).into_response();
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = StatusCode::from_u16(reply.status)
        .unwrap_or(StatusCode::OK)
        .into_response();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(name.as_str()),
            axum::http::HeaderValue::try_from(value.as_str()),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
