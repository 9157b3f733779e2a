//! The operator commands over the api and ingest: `subscriptions`,
//! `dead-letters` and `events`, human tables by default and `--json` for
//! scripts, so a 3 a.m. replay needs no hand-written curl.

use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use serde_json::{json, Value};

use crate::remote::{Endpoint, Remote, RemoteError};
use crate::table::Table;

/// Options every operator command shares.
#[derive(clap::Args)]
pub struct Common {
    /// The tenant the command acts on.
    #[arg(long, env = "HOOKLINE_TENANT", global = true)]
    tenant: Option<String>,
    /// Print the api's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(flatten)]
    endpoint: Endpoint,
}

/// `hookline subscriptions …`.
#[derive(Subcommand)]
pub enum Subscriptions {
    /// A tenant's subscriptions.
    List,
    /// A new subscription; prints it with its secret.
    Create {
        /// Where deliveries go.
        #[arg(long)]
        url: String,
        /// An event type, `prefix.*` or `*`; repeat for several.
        #[arg(long = "event-type", short = 'e', required = true)]
        event_types: Vec<String>,
        /// A name for people.
        #[arg(long)]
        name: Option<String>,
        /// Further fields of the subscription as a JSON object (`method`,
        /// `body`, `filter`, `signature`, …).
        #[arg(long)]
        options: Option<String>,
    },
    /// Deletes one; no delivery starts for it afterwards.
    Delete {
        /// The subscription's id.
        id: String,
    },
}

/// `hookline dead-letters …`.
#[derive(Subcommand)]
pub enum DeadLetters {
    /// Parked deliveries, newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Sends parked deliveries again, as new first attempts.
    Replay {
        /// Dead letter ids; none with `--all`.
        ids: Vec<String>,
        /// Every dead letter of the tenant (up to `--limit`).
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// With `--all`, at most this many.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
}

/// `hookline events …`.
#[derive(Subcommand)]
pub enum Events {
    /// Publishes one event through ingest; prints its id once confirmed.
    Send {
        /// The event type, e.g. `lead.created`.
        #[arg(long = "type")]
        event_type: String,
        /// The event's `data`, a JSON object.
        #[arg(long, default_value = "{}")]
        data: String,
        /// The event's id; ingest generates one when absent. Give the same
        /// id again to retry safely.
        #[arg(long)]
        id: Option<String>,
    },
}

/// An operator command that failed: usage (exit 2) or the service's answer
/// (exit 1).
enum Failure {
    Usage(String),
    Remote(RemoteError),
}

impl From<RemoteError> for Failure {
    fn from(error: RemoteError) -> Failure {
        Failure::Remote(error)
    }
}

/// One operator command, as parsed.
pub enum Operation<'a> {
    /// `subscriptions …`
    Subscriptions(&'a Subscriptions),
    /// `dead-letters …`
    DeadLetters(&'a DeadLetters),
    /// `events …`
    Events(&'a Events),
}

/// Runs one operator command on a fresh runtime; exit 0, 1 when the
/// service refused, 2 on bad arguments.
pub fn run(operation: Operation<'_>, common: &Common) -> ExitCode {
    let name = match operation {
        Operation::Subscriptions(_) => "subscriptions",
        Operation::DeadLetters(_) => "dead-letters",
        Operation::Events(_) => "events",
    };
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Usage(format!("cannot start the runtime: {e}")))
        .and_then(|runtime| {
            runtime.block_on(async {
                let remote = Remote::new(&common.endpoint)?;
                match operation {
                    Operation::Subscriptions(c) => subscriptions(c, &remote, common).await,
                    Operation::DeadLetters(c) => dead_letters(c, &remote, common).await,
                    Operation::Events(c) => events(c, &remote, common).await,
                }
            })
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("hookline {name}: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Remote(error)) => {
            eprintln!("hookline {name}: {error}");
            ExitCode::FAILURE
        }
    }
}

fn tenant(common: &Common) -> Result<&str, Failure> {
    common
        .tenant
        .as_deref()
        .ok_or_else(|| Failure::Usage("--tenant (or HOOKLINE_TENANT) is required".into()))
}

fn object(flag: &str, text: &str) -> Result<serde_json::Map<String, Value>, Failure> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Failure::Usage(format!("{flag} must be a JSON object"))),
        Err(e) => Err(Failure::Usage(format!("{flag}: {e}"))),
    }
}

async fn subscriptions(
    command: &Subscriptions,
    remote: &Remote,
    common: &Common,
) -> Result<(), Failure> {
    let tenant = tenant(common)?;
    let base = format!("/v1/tenants/{tenant}/subscriptions");
    match command {
        Subscriptions::List => {
            let all = every_page(remote, &base, usize::MAX).await?;
            if common.json {
                return print_json(&Value::Array(all));
            }
            let mut table = Table::new(&["ID", "NAME", "URL", "EVENTS", "ENABLED", "LAST"]);
            for s in &all {
                table.row(vec![
                    text(&s["id"]),
                    text(&s["name"]),
                    text(&s["url"]),
                    s["event_types"]
                        .as_array()
                        .map(|types| types.iter().map(text).collect::<Vec<_>>().join(","))
                        .unwrap_or_default(),
                    text(&s["enabled"]),
                    text(&s["last_status"]),
                ]);
            }
            table.print();
        }
        Subscriptions::Create {
            url,
            event_types,
            name,
            options,
        } => {
            let mut body = match options {
                Some(text) => object("--options", text)?,
                None => serde_json::Map::new(),
            };
            body.insert("url".into(), json!(url));
            body.insert("event_types".into(), json!(event_types));
            if let Some(name) = name {
                body.insert("name".into(), json!(name));
            }
            let created = remote.post(&base, Value::Object(body)).await?;
            if common.json {
                return print_json(&created);
            }
            println!("created {}", text(&created["id"]));
            println!("secret  {}", text(&created["secret"]));
        }
        Subscriptions::Delete { id } => {
            remote.delete(&format!("{base}/{id}")).await?;
            if common.json {
                return print_json(&json!({"id": id, "deleted": true}));
            }
            println!("deleted {id}");
        }
    }
    Ok(())
}

async fn dead_letters(
    command: &DeadLetters,
    remote: &Remote,
    common: &Common,
) -> Result<(), Failure> {
    let tenant = tenant(common)?;
    let base = format!("/v1/tenants/{tenant}/dead-letters");
    match command {
        DeadLetters::List { limit } => {
            let all = every_page(remote, &base, *limit).await?;
            if common.json {
                return print_json(&Value::Array(all));
            }
            let mut table = Table::new(&[
                "ID",
                "EVENT",
                "TYPE",
                "SUBSCRIPTION",
                "ATTEMPTS",
                "STATUS",
                "ERROR",
                "DEAD AT",
            ]);
            for d in &all {
                table.row(vec![
                    text(&d["id"]),
                    text(&d["event_id"]),
                    text(&d["event_type"]),
                    text(&d["subscription_id"]),
                    text(&d["attempts"]),
                    text(&d["last_response_status"]),
                    text(&d["last_error"]),
                    text(&d["dead_at"]),
                ]);
            }
            table.print();
        }
        DeadLetters::Replay { ids, all, limit } => {
            let ids: Vec<String> = if *all {
                every_page(remote, &base, *limit)
                    .await?
                    .iter()
                    .map(|d| text(&d["id"]))
                    .collect()
            } else if ids.is_empty() {
                return Err(Failure::Usage("give dead letter ids, or --all".into()));
            } else {
                ids.clone()
            };
            let mut answers = Vec::new();
            for id in &ids {
                let answer = replay(remote, &format!("{base}/{id}/replay")).await?;
                if !common.json {
                    println!("replayed {id}: {}", text(&answer["status"]));
                }
                answers.push(answer);
            }
            if common.json {
                return print_json(&Value::Array(answers));
            }
            if ids.is_empty() {
                println!("no dead letters");
            }
        }
    }
    Ok(())
}

/// One replay, waiting out the api's per-tenant limit on manual sends
/// rather than giving up half-way through `--all`.
async fn replay(remote: &Remote, path: &str) -> Result<Value, RemoteError> {
    let mut waited = 0;
    loop {
        match remote.post(path, json!({})).await {
            Err(RemoteError::Api { status: 429, .. }) if waited < 120 => {
                if waited == 0 {
                    eprintln!("rate limited by api.manual_sends_per_minute; waiting");
                }
                waited += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            other => return other,
        }
    }
}

async fn events(command: &Events, remote: &Remote, common: &Common) -> Result<(), Failure> {
    let tenant = tenant(common)?;
    let Events::Send {
        event_type,
        data,
        id,
    } = command;
    let mut envelope = json!({
        "tenant": tenant,
        "type": event_type,
        "data": Value::Object(object("--data", data)?),
    });
    if let Some(id) = id {
        envelope["id"] = json!(id);
    }
    let accepted = remote.post_ingest("/v1/events", envelope).await?;
    if common.json {
        return print_json(&accepted);
    }
    println!("accepted {}", text(&accepted["id"]));
    Ok(())
}

/// Follows `next_cursor` until the end or `limit` items.
async fn every_page(remote: &Remote, base: &str, limit: usize) -> Result<Vec<Value>, RemoteError> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("{base}?limit=200&cursor={cursor}"),
            None => format!("{base}?limit=200"),
        };
        let page = remote.get(&path).await?;
        if let Some(items) = page["data"].as_array() {
            all.extend(items.iter().cloned());
        }
        cursor = page["next_cursor"].as_str().map(str::to_string);
        if cursor.is_none() || all.len() >= limit {
            all.truncate(limit);
            return Ok(all);
        }
    }
}

/// A field as a table cell: strings bare, null as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_json(value: &Value) -> Result<(), Failure> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
    Ok(())
}
