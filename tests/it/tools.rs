//! The `hookline` developer and operator commands, run as the real binary
//! against the real services: `listen` receives and verifies real
//! deliveries; `subscriptions`, `dead-letters` and `events` change what the
//! api and ingest hold.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_tests::binary::{free_port, hookline_binary};
use hookline_tests::env::ADMIN_TOKEN;
use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A Standard Webhooks secret no subscription uses.
const STRANGER: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A running `hookline listen` and the lines it has printed so far.
struct Listen {
    /// Held so that the process is killed when the test drops it.
    _child: tokio::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    port: u16,
}

impl Listen {
    /// Starts `hookline listen --port <port> <args…>` and waits for its
    /// "listening on" line.
    async fn start(env: &TestEnv, port: u16, args: &[&str]) -> Listen {
        let mut child = tokio::process::Command::new(hookline_binary())
            .arg("listen")
            .arg("--port")
            .arg(port.to_string())
            .args(args)
            .env("HOOKLINE_API_URL", &env.api)
            .env("HOOKLINE_TOKEN", ADMIN_TOKEN)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start hookline listen");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                sink.lock().expect("lines").push(line);
            }
        });
        let listen = Listen {
            _child: child,
            lines,
            port,
        };
        listen
            .line("the listening line", |l| l.starts_with("listening on"))
            .await;
        listen
    }

    fn url(&self) -> String {
        url_of(self.port)
    }

    /// The first printed line for which `wanted` holds.
    async fn line(&self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        eventually(Duration::from_secs(20), what, || async {
            self.lines
                .lock()
                .expect("lines")
                .iter()
                .find(|l| wanted(l))
                .cloned()
        })
        .await
    }

    fn printed(&self) -> String {
        self.lines.lock().expect("lines").join("\n")
    }
}

/// Runs `hookline <args…>` against the env's api and ingest; returns the
/// exit code and standard output.
async fn hookline(env: &TestEnv, args: &[&str]) -> (i32, String) {
    let output = tokio::process::Command::new(hookline_binary())
        .args(args)
        .env("HOOKLINE_API_URL", &env.api)
        .env("HOOKLINE_INGEST_URL", &env.ingest)
        .env("HOOKLINE_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .expect("run hookline");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

fn url_of(port: u16) -> String {
    format!("http://127.0.0.1:{port}/hooks")
}

fn parsed(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test]
async fn listen_shows_a_delivery_verified_with_the_secret_it_looked_up() {
    let env = TestEnv::start().await;
    // The subscription comes first (the listener looks it up); nothing is
    // sent to its URL before an event.
    let port = free_port();
    let sub = env
        .subscribe("acme", &url_of(port), &["lead.created"])
        .await;
    let id = sub["id"].as_str().expect("id");
    let listen = Listen::start(
        &env,
        port,
        &["--subscription", id, "--tenant", "acme", "--body"],
    )
    .await;
    let (status, _) = env
        .post_event(
            json!({"id": "evt_listen_1", "tenant": "acme", "type": "lead.created",
                           "data": {"email": "ada@example.com"}}),
        )
        .await;
    assert_eq!(status, 202);
    let line = listen
        .line("a line for evt_listen_1", |l| l.contains("evt_listen_1"))
        .await;
    assert!(line.contains("lead.created"), "{line}");
    assert!(line.contains("✓ verified"), "{line}");
    assert!(line.contains("→ 200"), "{line}");
    // --body prints the pretty JSON after the line.
    listen
        .line("the pretty body", |l| {
            l.contains("\"email\": \"ada@example.com\"")
        })
        .await;
    // The attempt succeeded, as the listener answered 200.
    eventually(Duration::from_secs(10), "a succeeded attempt", || async {
        let (_, page) = env
            .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
            .await;
        (page["data"][0]["status"] == "succeeded").then_some(())
    })
    .await;
    drop(listen);
    env.stop().await;
}

#[tokio::test]
async fn listen_flags_a_wrong_secret_and_answers_the_status_asked_for() {
    let env = TestEnv::start().await;
    let listen = Listen::start(
        &env,
        free_port(),
        &["--secret", STRANGER, "--status", "500"],
    )
    .await;
    let sub = env
        .subscribe("acme", &listen.url(), &["lead.created"])
        .await;
    let id = sub["id"].as_str().expect("id");
    let (status, _) = env
        .post_event(
            json!({"id": "evt_listen_2", "tenant": "acme", "type": "lead.created",
                           "data": {}}),
        )
        .await;
    assert_eq!(status, 202);
    let line = listen
        .line("a line for evt_listen_2", |l| l.contains("evt_listen_2"))
        .await;
    assert!(line.contains('✗'), "{line}");
    assert!(!line.contains('✓'), "{line}");
    assert!(line.contains("→ 500"), "{line}");
    // A 500 is a failed attempt, retried: the second attempt reaches the
    // listener too, with the same webhook-id.
    eventually(
        Duration::from_secs(15),
        "two lines for evt_listen_2",
        || async {
            let text = listen.printed();
            (text.matches("evt_listen_2").count() >= 2).then_some(())
        },
    )
    .await;
    let (_, page) = env
        .api_get(&format!("/v1/tenants/acme/subscriptions/{id}/attempts"))
        .await;
    let last = page["data"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .expect("an attempt");
    assert_eq!(last["status"], "failed", "{page}");
    assert_eq!(last["response_status"], 500, "{page}");
    drop(listen);
    env.stop().await;
}

#[tokio::test]
async fn listen_refuses_an_unknown_subscription_with_the_apis_reason() {
    let env = TestEnv::start().await;
    let (code, out) = hookline(
        &env,
        &[
            "listen",
            "--port",
            &free_port().to_string(),
            "--subscription",
            "sub_missing",
            "--tenant",
            "acme",
        ],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("404 not_found"), "{out}");
    env.stop().await;
}

#[tokio::test]
async fn operator_commands_create_list_send_replay_and_delete() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    // Every attempt fails until the replay.
    receiver.set_default("/ops", Reply::status(503));
    let url = receiver.url("/ops");

    let (code, out) = hookline(
        &env,
        &[
            "subscriptions",
            "create",
            "--tenant",
            "acme",
            "--url",
            &url,
            "-e",
            "lead.created",
            "--name",
            "Ops test",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let created = parsed(&out);
    let id = created["id"].as_str().expect("id").to_string();
    assert!(created["secret"]
        .as_str()
        .is_some_and(|s| s.starts_with("whsec_")));

    let (code, table) = hookline(&env, &["subscriptions", "list", "--tenant", "acme"]).await;
    assert_eq!(code, 0, "{table}");
    let header = table.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ID") && header.contains("URL"),
        "{table}"
    );
    assert!(table.contains(&id) && table.contains("Ops test"), "{table}");

    // Fanout learns the subscription within 1 s.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, out) = hookline(
        &env,
        &[
            "events",
            "send",
            "--tenant",
            "acme",
            "--type",
            "lead.created",
            "--data",
            r#"{"email":"ops@example.com"}"#,
            "--id",
            "evt_ops_1",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("accepted evt_ops_1"), "{out}");

    let dead = env.first_dead_letter("acme", Duration::from_secs(20)).await;
    assert_eq!(dead["event_id"], "evt_ops_1");
    let (code, listed) = hookline(&env, &["dead-letters", "list", "--tenant", "acme"]).await;
    assert_eq!(code, 0, "{listed}");
    assert!(
        listed.contains("evt_ops_1") && listed.contains("503"),
        "{listed}"
    );

    receiver.set_default("/ops", Reply::status(200));
    let before = receiver.requests("/ops").len();
    let (code, out) = hookline(
        &env,
        &[
            "dead-letters",
            "replay",
            "--all",
            "--tenant",
            "acme",
            "--json",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(parsed(&out).as_array().map(Vec::len), Some(1), "{out}");
    eventually(Duration::from_secs(10), "the replayed delivery", || async {
        let requests = receiver.requests("/ops");
        requests[before..]
            .iter()
            .any(|r| r.json()["id"] == "evt_ops_1")
            .then_some(())
    })
    .await;

    let (code, out) = hookline(&env, &["subscriptions", "delete", "--tenant", "acme", &id]).await;
    assert_eq!(code, 0, "{out}");
    let (status, _) = env
        .api_get(&format!("/v1/tenants/acme/subscriptions/{id}"))
        .await;
    assert_eq!(status, 404);

    // A refusal shows the api's code and exits 1.
    let (code, out) = hookline(
        &env,
        &[
            "subscriptions",
            "create",
            "--tenant",
            "acme",
            "--url",
            "ftp://x",
            "-e",
            "a.b",
        ],
    )
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("422"), "{out}");
    env.stop().await;
}
