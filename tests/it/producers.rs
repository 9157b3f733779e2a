//! The Python (pika) and Node (amqplib) producers of `examples/producers`
//! against the real broker and pipeline: each publishes with confirms, and
//! its event is delivered. A runtime or library that is missing skips its
//! half, saying so (`scripts/tools.sh` installs them).

use std::path::PathBuf;
use std::time::Duration;

use hookline_tests::{eventually, Receiver, TestEnv};

fn producers_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/producers")
}

/// The first of `candidates` that runs `probe` successfully.
fn runtime(candidates: &[&str], probe: &[&str]) -> Option<String> {
    candidates.iter().find_map(|program| {
        std::process::Command::new(program)
            .args(probe)
            .current_dir(producers_dir())
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|_| program.to_string())
    })
}

/// Runs one producer script for `event_id` and checks that the event is
/// delivered with the script's data.
async fn run_producer(env: &TestEnv, receiver: &Receiver, program: &str, script: &str, id: &str) {
    let output = tokio::process::Command::new(program)
        .arg(script)
        .arg(id)
        .current_dir(producers_dir())
        .env("HOOKLINE_AMQP_URL", env.amqp_url())
        .output()
        .await
        .expect("run the producer");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script}: {stdout}{stderr}");
    assert!(stdout.contains(&format!("confirmed {id}")), "{stdout}");
    eventually(Duration::from_secs(20), "the producer's event", || async {
        receiver.requests("/producers").into_iter().find(|r| {
            let body = r.json();
            body["id"] == id
                && body["type"] == "lead.created"
                && body["data"]["contact"]["email"] == "ada@example.com"
        })
    })
    .await;
}

#[tokio::test]
async fn the_python_and_node_producers_publish_with_confirms_and_are_delivered() {
    let python = runtime(&["python3", "/usr/bin/python3"], &["-c", "import pika"]);
    let node = runtime(&["node"], &["-e", "require('amqplib')"]);
    if python.is_none() && node.is_none() {
        eprintln!("skipped: neither python3 with pika nor node with amqplib (scripts/tools.sh installs them)");
        return;
    }
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/producers"), &["lead.*"])
        .await;
    match &python {
        Some(python) => run_producer(&env, &receiver, python, "producer.py", "evt_py_1").await,
        None => eprintln!("skipped the Python producer: no python3 with pika"),
    }
    match &node {
        Some(node) => run_producer(&env, &receiver, node, "producer.js", "evt_node_1").await,
        None => eprintln!("skipped the Node producer: no node with amqplib"),
    }
    env.stop().await;
}
