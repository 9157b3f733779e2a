//! Publishing through ingest's `POST /v1/events` and `/v1/events/batch`.
//! A `503` (the broker did not confirm in time) or a lost connection is
//! retried with the same event id, with a growing delay, until the deadline.

use std::time::Duration;

use serde_json::{json, Value};

use crate::retry::{self, Backoff, Failed};
use crate::{Event, PublishError, Published, Publisher, Publishing};

/// Ingest takes at most this many events per batch request.
const MAX_BATCH: usize = 1000;

/// How the HTTP publisher behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// One of ingest's `ingest.tokens`, when it requires one.
    pub token: Option<String>,
    /// Per request.
    pub timeout: Duration,
    /// How long one publish keeps retrying before it returns
    /// [`PublishError::Unavailable`].
    pub deadline: Duration,
    /// The first wait before a retry; doubled up to `backoff_max`.
    pub backoff_initial: Duration,
    /// The longest wait between retries.
    pub backoff_max: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            token: None,
            timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// A publisher to ingest; cheap to share, it pools its connections.
pub struct HttpPublisher {
    base: String,
    http: reqwest::Client,
    options: HttpOptions,
}

impl HttpPublisher {
    /// A publisher for ingest at `base` (`http://127.0.0.1:8080`).
    pub fn new(
        base: impl Into<String>,
        options: HttpOptions,
    ) -> Result<HttpPublisher, PublishError> {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .build()
            .map_err(|e| PublishError::Config(e.to_string()))?;
        Ok(HttpPublisher {
            base: base.into().trim_end_matches('/').to_string(),
            http,
            options,
        })
    }

    async fn post_once(
        &self,
        path: &str,
        body: &[u8],
        traceparent: Option<&str>,
    ) -> Result<Value, Failed> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_vec());
        if let Some(token) = &self.options.token {
            request = request.bearer_auth(token);
        }
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failed::Retry(format!("ingest: {e}")))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match status {
            200..=299 => Ok(value),
            // Not confirmed in time, or a proxy in front of ingest that is
            // briefly unavailable: the same request again is safe.
            502..=504 | 429 => Err(Failed::Retry(format!("ingest answered {status}"))),
            _ => Err(Failed::Refused(PublishError::Refused {
                status,
                code: value["error"]["code"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_string(),
                message: value["error"]["message"]
                    .as_str()
                    .map_or_else(|| text.chars().take(200).collect(), str::to_string),
            })),
        }
    }

    /// Posts until accepted, refused, or past the deadline. A retry carries
    /// the same body, so the same event ids: at least once, deduplicated
    /// by receivers on the id.
    async fn post(
        &self,
        path: &str,
        body: &[u8],
        traceparent: Option<&str>,
    ) -> Result<Value, PublishError> {
        let backoff = Backoff {
            initial: self.options.backoff_initial,
            max: self.options.backoff_max,
            deadline: self.options.deadline,
        };
        retry::until_deadline(backoff, || self.post_once(path, body, traceparent)).await
    }
}

impl Publisher for HttpPublisher {
    fn publish<'a>(&'a self, event: &'a Event) -> Publishing<'a, Published> {
        Box::pin(async move {
            let answer = self
                .post("/v1/events", &event.to_json(), event.traceparent())
                .await?;
            Ok(Published {
                id: answer["id"].as_str().unwrap_or(event.id()).to_string(),
            })
        })
    }

    fn publish_batch<'a>(
        &'a self,
        events: &'a [Event],
    ) -> Publishing<'a, Vec<Result<Published, PublishError>>> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(events.len());
            for chunk in events.chunks(MAX_BATCH) {
                let body = json!({ "events": chunk });
                let body = serde_json::to_vec(&body).unwrap_or_default();
                // One request, one trace context: the first event's.
                let traceparent = chunk.first().and_then(Event::traceparent);
                let answer = self.post("/v1/events/batch", &body, traceparent).await?;
                let answers = answer["results"].as_array().cloned().unwrap_or_default();
                for i in 0..chunk.len() {
                    let one = answers.get(i).cloned().unwrap_or(Value::Null);
                    results.push(match one.get("id").and_then(Value::as_str) {
                        Some(id) => Ok(Published { id: id.to_string() }),
                        None => Err(PublishError::Refused {
                            status: 400,
                            code: one["error"]["code"].as_str().unwrap_or("unknown").into(),
                            message: one["error"]["message"]
                                .as_str()
                                .unwrap_or("ingest gave no result for this event")
                                .into(),
                        }),
                    });
                }
            }
            Ok(results)
        })
    }
}
