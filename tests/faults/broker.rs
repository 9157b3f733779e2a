//! The broker goes away under steady load: every connection dropped, the
//! application stopped and started, every definition wiped. Each service
//! must come back by itself, with its topology, prefetch and confirm mode,
//! and every event ingest confirmed must reach the receiver.

use std::collections::BTreeSet;
use std::time::Duration;

use hookline_config::QueueType;
use hookline_tests::api_client::{wait_not_ready, wait_ready};
use hookline_tests::faults::probe::{metric_sum, metrics_text};
use hookline_tests::faults::{FaultEnv, FaultOptions, Ledger, Load, Outcomes};
use hookline_tests::{eventually, Receiver};

/// The consumers on Hookline's work queues with their prefetch, sorted.
/// Control queues (exclusive, server-named) come and go with sessions and
/// are left out.
async fn work_consumers(env: &FaultEnv) -> Vec<(String, u64)> {
    let mut consumers: Vec<_> = env
        .broker
        .consumers()
        .await
        .into_iter()
        .filter(|(queue, _)| queue.starts_with("hookline."))
        .collect();
    consumers.sort();
    consumers
}

/// What a healthy pipeline looks like from the broker: one consumer on
/// each of the six work queues with an explicit prefetch, and how many
/// channels are in confirm mode.
struct Baseline {
    consumers: Vec<(String, u64)>,
    confirming: usize,
}

async fn healthy(env: &FaultEnv) -> Baseline {
    const WORK_QUEUES: [&str; 6] = [
        "hookline.attempts",
        "hookline.deliveries",
        "hookline.deliveries.dead",
        "hookline.deliveries.retry",
        "hookline.events.fanout",
        "hookline.source-requests",
    ];
    let consumers = eventually(
        Duration::from_secs(15),
        "one consumer on each work queue",
        || async {
            let consumers = work_consumers(env).await;
            let queues: Vec<&str> = consumers.iter().map(|(q, _)| q.as_str()).collect();
            (queues == WORK_QUEUES).then_some(consumers)
        },
    )
    .await;
    assert!(
        consumers.iter().all(|(_, prefetch)| *prefetch > 0),
        "{consumers:?}"
    );
    let confirming = env.broker.confirm_channels().await;
    // Ingest, fanout, the deliverer and the api each publish with confirms.
    assert!(confirming >= 4, "only {confirming} confirm-mode channels");
    Baseline {
        consumers,
        confirming,
    }
}

/// Every service is consuming again with the prefetch it had before the
/// fault (one consumer per queue: nothing left over from the dead
/// sessions), and as many channels as before are in confirm mode.
async fn assert_back_to(env: &FaultEnv, before: &Baseline) {
    let consumers = &before.consumers;
    eventually(
        Duration::from_secs(15),
        &format!("the consumers and prefetch of before the fault: {consumers:?}"),
        || async { (&work_consumers(env).await == consumers).then_some(()) },
    )
    .await;
    let confirming = env.broker.confirm_channels().await;
    assert!(
        confirming >= before.confirming,
        "{confirming} channels in confirm mode, {} before the fault",
        before.confirming
    );
}

/// The four services' `/readyz` all answer 200.
async fn wait_all_ready(env: &FaultEnv) {
    for base in [&env.api, &env.ingest, &env.fanout, &env.deliverer] {
        wait_ready(base, Duration::from_secs(30)).await;
    }
}

/// Waits until every confirmed event reached `path`, then checks what
/// arrived against what ingest answered: nothing confirmed is missing,
/// nothing arrived that was never posted, and anything beyond the
/// confirmed set is an event whose producer got no promise either way
/// (a 503 or no answer while the broker went away). Returns the ledger.
async fn assert_every_confirmed_event_arrived(
    receiver: &Receiver,
    path: &str,
    outcomes: &Outcomes,
) -> Ledger {
    assert!(
        outcomes.unexpected.is_empty(),
        "ingest answered neither 202 nor 503: {:?}",
        outcomes.unexpected
    );
    let ledger = eventually(
        Duration::from_secs(40),
        "every confirmed event delivered",
        || async {
            let ledger = Ledger::of(&receiver.all());
            outcomes
                .confirmed
                .is_subset(&ledger.event_ids(path))
                .then_some(ledger)
        },
    )
    .await;
    let delivered = ledger.event_ids(path);
    let extra: BTreeSet<_> = delivered.difference(&outcomes.confirmed).cloned().collect();
    let unpromised: BTreeSet<_> = outcomes
        .refused
        .union(&outcomes.unanswered)
        .cloned()
        .collect();
    assert!(
        extra.is_subset(&unpromised),
        "delivered but never posted: {:?}",
        extra.difference(&unpromised).collect::<Vec<_>>()
    );
    ledger.assert_one_webhook_id_per_delivery();
    eprintln!(
        "confirmed {}, refused {}, unanswered {}; delivered {} ({} of them refused or unanswered), duplicates {}",
        outcomes.confirmed.len(),
        outcomes.refused.len(),
        outcomes.unanswered.len(),
        delivered.len(),
        extra.len(),
        ledger.duplicates()
    );
    ledger
}

/// A Hookline on its own node (after `tweak`) with a receiver subscribed at
/// `path`, and the healthy baseline to compare against after the fault.
async fn subscribed(
    tweak: impl FnOnce(&mut FaultOptions),
    path: &str,
) -> (FaultEnv, Receiver, Baseline) {
    let env = FaultEnv::start_with(tweak).await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url(path), &["lead.*"])
        .await;
    let before = healthy(&env).await;
    (env, receiver, before)
}

/// Steady load on ingest, returned once deliveries arrive at `path`.
async fn load_arriving(env: &FaultEnv, receiver: &Receiver, path: &str) -> Load {
    let load = Load::start(
        &env.ingest,
        "acme",
        "lead.created",
        3,
        Duration::from_millis(30),
    );
    eventually(Duration::from_secs(15), "deliveries under load", || async {
        (receiver.requests(path).len() >= 20).then_some(())
    })
    .await;
    load
}

/// Waits until ingest has confirmed 30 more events than `since` confirmed
/// ones, `after` the fault.
async fn wait_confirming_again(load: &Load, since: usize, after: &str) {
    eventually(
        Duration::from_secs(20),
        &format!("ingest confirming again after {after}"),
        || async { (load.snapshot().confirmed.len() >= since + 30).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_event_is_delivered_when_the_broker_drops_every_connection_under_load() {
    let (env, receiver, before) =
        subscribed(|o| o.settings.amqp.queue_type = QueueType::Classic, "/drop").await;
    let load = load_arriving(&env, &receiver, "/drop").await;

    env.broker.close_all_connections().await;
    let after_close = load.snapshot().confirmed.len();
    wait_confirming_again(&load, after_close, "the drop").await;
    let outcomes = load.stop().await;
    wait_all_ready(&env).await;
    assert_every_confirmed_event_arrived(&receiver, "/drop", &outcomes).await;

    for base in [&env.fanout, &env.deliverer, &env.api] {
        let reconnects = metric_sum(
            &metrics_text(base).await,
            "hookline_amqp_reconnects_total",
            &[],
        );
        assert!(reconnects >= 1.0, "{base} counted no reconnect");
    }
    assert_back_to(&env, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_confirmed_event_is_delivered_across_a_broker_restart_and_readiness_is_red_meanwhile()
{
    let tweak = |o: &mut FaultOptions| {
        o.settings.amqp.queue_type = QueueType::Quorum;
        o.settings.amqp.publish_timeout = Duration::from_secs(2);
    };
    let (env, receiver, before) = subscribed(tweak, "/restart").await;
    let load = load_arriving(&env, &receiver, "/restart").await;

    env.broker.stop_app().await;
    let refused_before = load.snapshot().refused.len();
    for base in [&env.ingest, &env.fanout, &env.deliverer, &env.api] {
        wait_not_ready(base, Duration::from_secs(15)).await;
    }
    eventually(
        Duration::from_secs(15),
        "ingest answering 503 while the broker is down",
        || async { (load.snapshot().refused.len() >= refused_before + 3).then_some(()) },
    )
    .await;
    // From here until the restart nothing can be confirmed; a 202 now
    // would be a promise ingest cannot keep.
    let confirmed_while_down = load.snapshot().confirmed;
    // Ten more answers while the broker is still down, each of which could
    // have been a 202.
    let refused_now = load.snapshot().refused.len();
    eventually(
        Duration::from_secs(15),
        "more answers while the broker is down",
        || async { (load.snapshot().refused.len() >= refused_now + 10).then_some(()) },
    )
    .await;
    let confirmed_at_restart = load.snapshot().confirmed;
    assert_eq!(
        confirmed_while_down, confirmed_at_restart,
        "ingest answered 202 while the broker was stopped"
    );

    env.broker.start_app().await;
    wait_all_ready(&env).await;
    let back = load.snapshot().confirmed.len();
    wait_confirming_again(&load, back, "the restart").await;
    let outcomes = load.stop().await;
    assert_every_confirmed_event_arrived(&receiver, "/restart", &outcomes).await;
    assert_back_to(&env, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_declare_their_topology_again_on_a_broker_that_lost_every_definition() {
    let (env, receiver, before) = subscribed(
        |o| o.settings.amqp.queue_type = QueueType::Classic,
        "/reset",
    )
    .await;
    let event = serde_json::json!({"id": "evt_before", "tenant": "acme", "type": "lead.created", "data": {}});
    assert_eq!(env.post_event(&event).await.map(|a| a.0), Some(202));
    eventually(Duration::from_secs(15), "the first delivery", || async {
        receiver.requests("/reset").first().cloned()
    })
    .await;

    // Queues, exchanges, bindings, vhost and user are gone; the node comes
    // back as new.
    env.broker.reset().await;
    wait_all_ready(&env).await;

    let mut n = 0;
    let accepted = eventually(
        Duration::from_secs(20),
        "ingest accepting after the reset",
        || {
            n += 1;
            let event = serde_json::json!({"id": format!("evt_after_{n}"), "tenant": "acme", "type": "lead.created", "data": {}});
            let env = &env;
            async move {
                let (status, body) = env.post_event(&event).await?;
                (status == 202).then(|| body["id"].as_str().unwrap_or_default().to_string())
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "a delivery through the re-declared topology",
        || async {
            Ledger::of(&receiver.all())
                .event_ids("/reset")
                .contains(&accepted)
                .then_some(())
        },
    )
    .await;
    assert_back_to(&env, &before).await;
}
