//! `hookline listen`: a receiver on the developer's own machine, so the
//! first subscription has somewhere to go and shows, one line per delivery,
//! whether its signature verifies.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use hookline_signature::{Secret, SignatureScheme};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::remote::{Endpoint, Remote};

/// Arguments of `hookline listen`.
#[derive(clap::Args)]
pub struct Args {
    /// Port on 127.0.0.1 to serve.
    #[arg(long, default_value_t = 9999)]
    port: u16,
    /// The subscription's secret; without it (and without
    /// `--subscription`), deliveries are shown unverified.
    #[arg(long, env = "HOOKLINE_LISTEN_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// The subscription's `signature` object as JSON; standard when absent.
    #[arg(long, requires = "secret")]
    scheme: Option<String>,
    /// Look the secret and scheme up through the api (needs `--tenant` and
    /// a token that may read the subscription).
    #[arg(long, conflicts_with = "secret", requires = "tenant")]
    subscription: Option<String>,
    /// The tenant of `--subscription`.
    #[arg(long, env = "HOOKLINE_TENANT")]
    tenant: Option<String>,
    /// Also print each body, as pretty JSON when it is JSON.
    #[arg(long)]
    body: bool,
    /// Status to answer every delivery with (e.g. 500 to watch retries).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(100..=599))]
    status: u16,
    /// Accepted clock difference in seconds (0 skips the timestamp check).
    #[arg(long, default_value_t = 300)]
    tolerance: u64,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// What a delivery is checked against.
enum Keys {
    /// Nothing to check with: every delivery is shown as unverified.
    None,
    /// Fixed on the command line.
    Given(SignatureScheme, Secret),
    /// Read from the api, and read again once when a check fails, so a
    /// rotation or a scheme change made meanwhile is picked up.
    Subscription {
        remote: Remote,
        path: String,
        current: (SignatureScheme, Secret),
        fetched: Instant,
    },
}

struct Listener {
    keys: Mutex<Keys>,
    show_body: bool,
    status: StatusCode,
    tolerance: Duration,
}

/// Serves until Ctrl-C; exit 2 on bad arguments or a port in use.
pub fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hookline listen: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookline listen: {error}");
            ExitCode::from(2)
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let (keys, describe) = keys(&args).await?;
    let status = StatusCode::from_u16(args.status).map_err(|e| format!("--status: {e}"))?;
    let tolerance = if args.tolerance == 0 {
        Duration::from_secs(u64::from(u32::MAX))
    } else {
        Duration::from_secs(args.tolerance)
    };
    let state = Arc::new(Listener {
        keys: Mutex::new(keys),
        show_body: args.body,
        status,
        tolerance,
    });
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let socket = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| format!("cannot listen on {address}: {e}"))?;
    let app = Router::new().fallback(receive).with_state(state);
    println!(
        "listening on http://{address}/ ({describe}); answering {}; Ctrl-C stops",
        status.as_u16()
    );
    axum::serve(socket, app)
        .with_graceful_shutdown(async {
            hookline_runtime::shutdown::signal().await;
        })
        .await
        .map_err(|e| e.to_string())
}

async fn keys(args: &Args) -> Result<(Keys, String), String> {
    if let Some(secret) = &args.secret {
        let scheme: SignatureScheme = match &args.scheme {
            Some(json) => serde_json::from_str(json).map_err(|e| format!("--scheme: {e}"))?,
            None => SignatureScheme::Standard,
        };
        let secret = Secret::parse(&scheme, secret).map_err(|e| format!("--secret: {e}"))?;
        return Ok((
            Keys::Given(scheme, secret),
            "verifying with --secret".into(),
        ));
    }
    let (Some(id), Some(tenant)) = (&args.subscription, &args.tenant) else {
        return Ok((
            Keys::None,
            "no secret given: deliveries are not verified".into(),
        ));
    };
    let remote = Remote::new(&args.endpoint).map_err(|e| e.to_string())?;
    let path = format!("/v1/tenants/{tenant}/subscriptions/{id}");
    let current = fetch(&remote, &path)
        .await
        .map_err(|e| format!("--subscription {id}: {e}"))?;
    Ok((
        Keys::Subscription {
            remote,
            path,
            current,
            fetched: Instant::now(),
        },
        format!("verifying with the secret of {id}"),
    ))
}

/// The scheme and secret the api shows for a subscription.
async fn fetch(remote: &Remote, path: &str) -> Result<(SignatureScheme, Secret), String> {
    let subscription = remote.get(path).await.map_err(|e| e.to_string())?;
    let scheme: SignatureScheme = serde_json::from_value(subscription["signature"].clone())
        .map_err(|e| format!("its signature object: {e}"))?;
    let secret = subscription["secret"]
        .as_str()
        .ok_or("the api did not show its secret")?;
    let secret = Secret::parse(&scheme, secret).map_err(|e| format!("its secret: {e}"))?;
    Ok((scheme, secret))
}

async fn receive(
    State(listener): State<Arc<Listener>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let verdict = listener.verify(&headers, &body).await;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    let event = json.as_ref().map(first_event);
    let field = |name: &str| {
        event
            .and_then(|e| e.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let event_type = field("type").unwrap_or_else(|| "-".to_string());
    // The event's own id when the body shows it (a template may not), else
    // the delivery's `webhook-id`.
    let id = field("id").unwrap_or_else(|| header("webhook-id"));
    let mark = match &verdict {
        Verdict::Valid => "✓ verified".to_string(),
        Verdict::Invalid(reason) => format!("✗ {reason}"),
        Verdict::Unchecked => "? not verified".to_string(),
    };
    let time = chrono::Utc::now().format("%H:%M:%S%.3f");
    println!(
        "{time}  {method} {uri}  {event_type}  {id}  {mark}  {size} B  → {status}",
        size = body.len(),
        status = listener.status.as_u16(),
    );
    if listener.show_body {
        match &json {
            Some(value) => println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            ),
            None => println!("{}", String::from_utf8_lossy(&body)),
        }
    }
    listener.status
}

/// The event a body carries: the body itself, or the first of a batch.
fn first_event(body: &Value) -> &Value {
    body.get("payload").and_then(|p| p.get(0)).unwrap_or(body)
}

enum Verdict {
    Valid,
    Invalid(String),
    Unchecked,
}

impl Listener {
    async fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Verdict {
        let lookup = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let check = |scheme: &SignatureScheme, secret: &Secret| {
            hookline_signature::verify(scheme, secret, &lookup, body, now_ms(), self.tolerance)
                .map_err(|e| e.to_string())
        };
        let mut keys = self.keys.lock().await;
        match &mut *keys {
            Keys::None => Verdict::Unchecked,
            Keys::Given(scheme, secret) => match check(scheme, secret) {
                Ok(()) => Verdict::Valid,
                Err(reason) => Verdict::Invalid(reason),
            },
            Keys::Subscription {
                remote,
                path,
                current,
                fetched,
            } => {
                let Err(reason) = check(&current.0, &current.1) else {
                    return Verdict::Valid;
                };
                // Read the subscription again, at most once a second, in
                // case its secret was rotated or its scheme changed.
                if fetched.elapsed() < Duration::from_secs(1) {
                    return Verdict::Invalid(reason);
                }
                *fetched = Instant::now();
                match fetch(remote, path).await {
                    Ok(fresh) => {
                        let again = check(&fresh.0, &fresh.1);
                        *current = fresh;
                        match again {
                            Ok(()) => Verdict::Valid,
                            Err(reason) => Verdict::Invalid(reason),
                        }
                    }
                    Err(error) => {
                        Verdict::Invalid(format!("{reason} (re-reading failed: {error})"))
                    }
                }
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
