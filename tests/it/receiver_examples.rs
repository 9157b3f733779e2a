//! The receiver examples of `examples/receivers` check real deliveries:
//! each says "valid" for the subscription's secret and refuses another.
//! A language runtime (or Python's `standardwebhooks`) that is missing skips
//! its example, saying so; `scripts/tools.sh` installs what it can.

use std::path::PathBuf;
use std::time::Duration;

use hookline_tests::{eventually, Captured, Receiver, TestEnv};
use serde_json::json;

/// A Standard Webhooks secret no subscription uses.
const STRANGER: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const HMAC_SECRET: &str = "acme-shared-secret-0123456789";

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/receivers")
}

/// How to run one example: the program and its leading arguments.
fn available(program: &str, probe: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(probe)
        .current_dir(examples())
        .env("PYTHONPATH", examples().join(".pylib"))
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Runs `command… secret` with the captured request on stdin; returns
/// whether it said valid (exit 0 and "valid" first).
async fn says_valid(command: &[&str], secret: &str, request: &Captured) -> bool {
    let input = json!({
        "headers": request.headers,
        "body": String::from_utf8_lossy(&request.body),
    });
    let mut child = tokio::process::Command::new(command[0])
        .args(&command[1..])
        .arg(secret)
        .current_dir(examples())
        .env("PYTHONPATH", examples().join(".pylib"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the example");
    let mut stdin = child.stdin.take().expect("stdin");
    tokio::io::AsyncWriteExt::write_all(&mut stdin, input.to_string().as_bytes())
        .await
        .expect("write the request");
    drop(stdin);
    let output = child.wait_with_output().await.expect("run the example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let valid = output.status.success() && stdout.starts_with("valid");
    eprintln!(
        "{command:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    valid
}

/// One real delivery to `path` of a subscription created with `extra`.
async fn delivery(
    env: &TestEnv,
    receiver: &Receiver,
    path: &str,
    extra: serde_json::Value,
) -> (Captured, String) {
    let mut body = json!({"name": path, "url": receiver.url(path), "event_types": ["lead.*"]});
    for (key, value) in extra.as_object().expect("object") {
        body[key] = value.clone();
    }
    let (status, created) = env.api_post("/v1/tenants/acme/subscriptions", body).await;
    assert_eq!(status, 201, "{created}");
    let (status, _) = env
        .post_event(
            json!({"tenant": "acme", "type": "lead.created", "data": {"email": "ada@example.com"}}),
        )
        .await;
    assert_eq!(status, 202);
    let request = eventually(Duration::from_secs(20), "a delivery", || async {
        receiver.requests(path).first().cloned()
    })
    .await;
    (
        request,
        created["secret"].as_str().expect("secret").to_string(),
    )
}

#[tokio::test]
async fn the_receiver_examples_accept_real_deliveries_and_refuse_a_wrong_secret() {
    let standard: Vec<(&str, Vec<&str>, bool)> = vec![
        (
            "python3 standardwebhooks",
            vec!["python3", "standard_webhooks.py"],
            available("python3", &["-c", "import standardwebhooks"]),
        ),
        (
            "node",
            vec!["node", "verify.js"],
            available("node", &["--version"]),
        ),
        (
            "go",
            vec!["go", "run", "verify.go"],
            available("go", &["version"]),
        ),
    ];
    let hmac_ok = available("python3", &["--version"]);
    if !hmac_ok && standard.iter().all(|(_, _, ok)| !ok) {
        eprintln!("skipped: no python3, node or go here");
        return;
    }
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    let (request, secret) = delivery(&env, &receiver, "/standard", json!({})).await;
    for (name, command, ok) in &standard {
        if !ok {
            eprintln!("skipped {name}: not installed");
            continue;
        }
        assert!(
            says_valid(command, &secret, &request).await,
            "{name} refused a real delivery"
        );
        assert!(
            !says_valid(command, STRANGER, &request).await,
            "{name} accepted a wrong secret"
        );
    }
    if hmac_ok {
        let scheme = json!({"scheme": "hmac", "header": "X-Webhook-Signature", "encoding": "hex",
                            "prefix": "sha256=", "signed": "body"});
        let (request, secret) = delivery(
            &env,
            &receiver,
            "/hmac",
            json!({"signature": scheme, "secret": HMAC_SECRET}),
        )
        .await;
        let command = ["python3", "hmac_body.py"];
        assert!(
            says_valid(&command, &secret, &request).await,
            "hmac_body.py refused a real delivery"
        );
        assert!(!says_valid(&command, "another-secret-0123456789", &request).await);
    }
    env.stop().await;
}
