//! The inbound run: events posted to a source URL with Standard Webhooks
//! verification on, against the same events posted to `POST /v1/events`,
//! interleaved on one ingest, each at fan-out 1 into the sink. Both count
//! the `202`s the client received per second, so the ratio is the cost of
//! the source path (lookup, rate limit, signature check, body to `data`,
//! the request note) over the plain one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use hookline_signature::{Secret, SignatureScheme};

use crate::report::Target;
use crate::services::ADMIN_TOKEN;

/// The tenant and type of both runs.
const TENANT: &str = "bench-in";
const EVENT_TYPE: &str = "bench.inbound";
/// The target: inbound events/s at least this share of plain.
const TARGET: f64 = 0.8;

/// Requests in flight at once, each client task posting one at a time.
const CONCURRENCY: usize = 64;

/// What the two runs measured.
pub struct Inbound {
    /// `POST /v1/events` accepted per second.
    pub plain_per_s: f64,
    /// Source URL requests accepted per second.
    pub inbound_per_s: f64,
    /// Answers other than `202`, in both runs.
    pub refused: u64,
}

impl Inbound {
    /// The target, met or missed.
    pub fn target(&self) -> Target {
        let ratio = self.inbound_per_s / self.plain_per_s.max(f64::MIN_POSITIVE);
        Target {
            name: format!(
                "inbound (source URL, Standard Webhooks verified) events/s ≥ {TARGET} × POST /v1/events"
            ),
            measured: format!(
                "{:.0}/s = {ratio:.2} × {:.0}/s; {} refused",
                self.inbound_per_s, self.plain_per_s, self.refused
            ),
            met: ratio >= TARGET && self.refused == 0,
        }
    }
}

/// The two runs of `secs` each, after a subscription to `sink_url` and a
/// verified source were made through the api at `api`.
pub async fn compare(
    http: &reqwest::Client,
    api: &str,
    ingest: &str,
    sink_url: &str,
    secs: u64,
) -> anyhow::Result<Inbound> {
    post_json(
        http,
        &format!("{api}/v1/tenants/{TENANT}/subscriptions"),
        serde_json::json!({"name": "bench inbound", "url": sink_url, "event_types": [EVENT_TYPE]}),
    )
    .await?;
    let source = post_json(
        http,
        &format!("{api}/v1/tenants/{TENANT}/sources"),
        serde_json::json!({"name": "bench", "event_type": EVENT_TYPE, "verify": {"scheme": "standard"}}),
    )
    .await?;
    let url = source["url"].as_str().context("a source URL")?;
    let path = &url[url.find("/v1/in/").context("an inbound path")?..];
    let inbound_url = format!("{ingest}{path}");
    let secret = source["verify"]["secret"]
        .as_str()
        .context("a generated secret")?;
    let secret = Secret::parse(&SignatureScheme::Standard, secret)?;
    wait_known(http, &inbound_url).await?;

    let plain_url = format!("{ingest}/v1/events");
    let client = http.clone();
    let plain = move |seq: u64| {
        let body = serde_json::json!({"tenant": TENANT, "type": EVENT_TYPE,
            "id": format!("plain-{seq}"), "data": {"n": seq, "email": "ana@example.com"}});
        client.post(&plain_url).json(&body)
    };
    let client = http.clone();
    let inbound = move |seq: u64| {
        let body = serde_json::json!({"n": seq, "email": "ana@example.com"}).to_string();
        let id = format!("in-{seq}");
        let now = chrono::Utc::now().timestamp_millis();
        let mut request = client
            .post(&inbound_url)
            .header("content-type", "application/json");
        if let Ok(headers) = hookline_signature::sign(
            &SignatureScheme::Standard,
            std::slice::from_ref(&secret),
            &id,
            now,
            body.as_bytes(),
        ) {
            for (name, value) in headers {
                request = request.header(name, value);
            }
        }
        request.body(body)
    };
    // Plain, inbound, inbound, plain: a machine that speeds up or slows
    // down during the runs (the pipeline draining an earlier run, another
    // user) weighs on both alike.
    let half = Duration::from_secs(secs).max(Duration::from_secs(2)) / 2;
    let mut counts = [(0u64, 0u64); 2];
    for (round, which) in [0usize, 1, 1, 0].into_iter().enumerate() {
        let first_seq = round as u64 * 10_000_000;
        let (accepted, refused) = if which == 0 {
            closed_loop(half, first_seq, plain.clone()).await
        } else {
            closed_loop(half, first_seq, inbound.clone()).await
        };
        counts[which].0 += accepted;
        counts[which].1 += refused;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let per_s = |accepted: u64| accepted as f64 / (2.0 * half.as_secs_f64());
    Ok(Inbound {
        plain_per_s: per_s(counts[0].0),
        inbound_per_s: per_s(counts[1].0),
        refused: counts[0].1 + counts[1].1,
    })
}

async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let response = http
        .post(url)
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .context("api reachable")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.as_u16() != 201 {
        bail!("POST {url}: {status} {body}");
    }
    Ok(body)
}

/// Until ingest has loaded the source (an unsigned probe is `401`, not
/// `404`).
async fn wait_known(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = http
            .post(url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if status == 401 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("ingest did not load the bench source within 10 s (last answer {status})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`CONCURRENCY`] tasks posting one request at a time for `length`,
/// numbering requests from `first_seq`; the `202`s and the other answers.
async fn closed_loop(
    length: Duration,
    first_seq: u64,
    request: impl Fn(u64) -> reqwest::RequestBuilder + Send + Sync + 'static + Clone,
) -> (u64, u64) {
    let accepted = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(first_seq));
    let deadline = Instant::now() + length;
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (accepted, refused, seq, request) = (
            accepted.clone(),
            refused.clone(),
            seq.clone(),
            request.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let n = seq.fetch_add(1, Ordering::Relaxed);
                match request(n).send().await.map(|r| r.status().as_u16()) {
                    Ok(202) => accepted.fetch_add(1, Ordering::Relaxed),
                    _ => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    (
        accepted.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    )
}
