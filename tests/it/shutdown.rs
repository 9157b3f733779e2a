//! Graceful shutdown of a deliverer binary: SIGTERM while sends are in
//! flight, exit 0 within the grace period, and no event lost.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use hookline_config::Settings;
use hookline_tests::binary::{free_port, spawn_service};
use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use serde_json::json;

/// A `hookline deliverer` process, killed when the test ends however it ends.
struct Deliverer {
    child: Child,
    base: String,
}

impl Deliverer {
    /// Starts one on a free port and waits until it is ready.
    async fn start(env: &TestEnv, settings: &Settings) -> Self {
        let mut settings = settings.clone();
        let addr = format!("127.0.0.1:{}", free_port());
        settings.deliverer.listen = addr.parse().expect("listen address");
        let deliverer = Self {
            child: spawn_service("deliverer", &settings),
            base: format!("http://{addr}"),
        };
        let url = format!("{}/readyz", deliverer.base);
        eventually(Duration::from_secs(30), "the deliverer ready", || async {
            let response = env.http.get(&url).send().await.ok()?;
            response.status().is_success().then_some(())
        })
        .await;
        deliverer
    }

    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits at most `timeout` for the process to exit.
    async fn exited_within(&mut self, timeout: Duration) -> ExitStatus {
        eventually(timeout, "the deliverer to exit", || {
            let exited = self.child.try_wait().expect("wait on the deliverer");
            async move { exited }
        })
        .await
    }
}

impl Drop for Deliverer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends one deliverer makes at a time.
const CONCURRENCY: usize = 4;

#[tokio::test]
async fn a_deliverer_sent_sigterm_mid_send_exits_0_within_the_grace_period_and_no_event_is_lost() {
    let grace = Duration::from_secs(8);
    let env = TestEnv::start_with(|o| {
        o.deliverer = false;
        o.settings.shutdown.grace_period = grace;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.set_default(
        "/slow",
        Reply {
            status: 200,
            delay: Duration::from_millis(1500),
            headers: Vec::new(),
        },
    );
    let subscription = env
        .subscribe("acme", &receiver.url("/slow"), &["lead.created"])
        .await;
    let subscription_id = subscription["id"].as_str().expect("id").to_string();
    // A few sends at a time: some events are in flight at SIGTERM, the rest
    // still wait in the queue for whichever deliverer comes next.
    let mut settings = env.settings.clone();
    settings.delivery.concurrency = CONCURRENCY;
    let mut first = Deliverer::start(&env, &settings).await;

    let mut posted = BTreeSet::new();
    for n in 0..10 {
        let id = format!("evt_shutdown_{n:02}");
        let (status, body) = env
            .post_event(json!({"id": id, "tenant": "acme", "type": "lead.created", "data": {}}))
            .await;
        assert_eq!(status, 202, "{body}");
        posted.insert(id);
    }
    eventually(Duration::from_secs(15), "a send in flight", || async {
        (!receiver.requests("/slow").is_empty()).then_some(())
    })
    .await;
    first.terminate();
    // The margin covers the process's own teardown after draining.
    let status = first.exited_within(grace + Duration::from_secs(3)).await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );

    let by_first: Vec<String> = receiver
        .requests("/slow")
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(
        !by_first.is_empty() && by_first.len() <= CONCURRENCY,
        "the first deliverer finished what it had started and took nothing new: {by_first:?}"
    );

    let second = Deliverer::start(&env, &settings).await;
    eventually(Duration::from_secs(30), "every event delivered", || async {
        let ids: BTreeSet<String> = receiver
            .requests("/slow")
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
            .collect();
        posted.is_subset(&ids).then_some(())
    })
    .await;
    // A redelivery of a send the first deliverer finished would still be
    // queued or on the wire.
    env.wait_nothing_pending_on(&[second.base.as_str()], Duration::from_secs(15))
        .await;
    drop(second);
    let requests = receiver.requests("/slow");

    let mut webhook_ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sends: BTreeMap<String, usize> = BTreeMap::new();
    for request in &requests {
        let id = request.json()["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let webhook_id = request.header("webhook-id").unwrap_or_default().to_string();
        webhook_ids
            .entry(id.clone())
            .or_default()
            .insert(webhook_id);
        *sends.entry(id).or_default() += 1;
    }
    let delivered: BTreeSet<String> = sends.keys().cloned().collect();
    assert_eq!(delivered, posted, "exactly the posted events arrived");
    for (id, ids) in &webhook_ids {
        assert_eq!(ids.len(), 1, "{id} kept one webhook-id: {ids:?}");
    }
    let duplicates = requests.len() - posted.len();
    // A send the first deliverer finished with a success was acked, so it is
    // never sent again. One that failed (a timeout on a loaded machine) is
    // rightly retried: history tells the two apart.
    let path = format!("/v1/tenants/acme/subscriptions/{subscription_id}/attempts?limit=200");
    let history = eventually(Duration::from_secs(15), "every send in history", || async {
        let (status, history) = env.api_get(&path).await;
        let recorded = history["data"].as_array().map_or(0, Vec::len);
        (status == 200 && recorded >= requests.len()).then_some(history)
    })
    .await;
    let failed: BTreeSet<&str> = history["data"]
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["status"] != "succeeded")
        .filter_map(|a| a["event_id"].as_str())
        .collect();
    for id in &by_first {
        if failed.contains(id.as_str()) {
            continue;
        }
        assert_eq!(
            sends[id], 1,
            "{id} was in flight at SIGTERM, finished and acked, so never sent again; history: {history}"
        );
    }
    eprintln!(
        "{} events, {} requests, {duplicates} duplicates",
        posted.len(),
        requests.len()
    );
}
