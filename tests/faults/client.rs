//! The producer client across a broker restart: every event whose
//! `publish().await` returned `Ok` reaches the receiver, and publishes that
//! straddle the outage wait it out (reconnect with backoff, resend with the
//! same id) instead of failing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookline_client::{AmqpOptions, AmqpPublisher, Event, Publisher};
use hookline_config::QueueType;
use hookline_tests::api_client::wait_ready;
use hookline_tests::faults::{FaultEnv, Ledger};
use hookline_tests::{eventually, Receiver};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Tally {
    confirmed: BTreeSet<String>,
    failed: Vec<String>,
}

fn record(
    tally: &Mutex<Tally>,
    id: &str,
    outcome: Result<hookline_client::Published, hookline_client::PublishError>,
) {
    let mut tally = tally.lock().expect("tally");
    match outcome {
        Ok(published) => {
            tally.confirmed.insert(published.id);
        }
        Err(error) => tally.failed.push(format!("{id}: {error}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_confirmed_to_the_client_is_lost_across_a_broker_restart() {
    let env = FaultEnv::start_with(|o| o.settings.amqp.queue_type = QueueType::Quorum).await;
    let receiver = Receiver::start().await;
    env.subscribe("acme", &receiver.url("/client"), &["lead.*"])
        .await;
    let publisher = Arc::new(AmqpPublisher::new(
        env.settings.amqp.url.expose(),
        AmqpOptions {
            deadline: Duration::from_secs(60),
            backoff_max: Duration::from_secs(1),
            ..AmqpOptions::default()
        },
    ));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = CancellationToken::new();
    // Three producers sharing one publisher, so the confirm window holds
    // several unconfirmed events when the broker goes.
    let producers: Vec<_> = (0..3)
        .map(|worker| {
            let (publisher, tally, stop) = (publisher.clone(), tally.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.is_cancelled() {
                    n += 1;
                    let event = Event::builder("acme", "lead.created")
                        .id(format!("evt_client_{worker}_{n}"))
                        .data(&json!({"n": n}))
                        .build()
                        .expect("valid");
                    let outcome = publisher.publish(&event).await;
                    record(&tally, event.id(), outcome);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    let confirmed = || tally.lock().expect("tally").confirmed.len();
    eventually(
        Duration::from_secs(15),
        "confirms before the restart",
        || async { (confirmed() >= 30).then_some(()) },
    )
    .await;

    env.broker.stop_app().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.broker.start_app().await;
    for base in [&env.api, &env.ingest, &env.fanout, &env.deliverer] {
        wait_ready(base, Duration::from_secs(30)).await;
    }
    let after_restart = confirmed();
    eventually(
        Duration::from_secs(30),
        "confirms after the restart",
        || async { (confirmed() >= after_restart + 30).then_some(()) },
    )
    .await;
    stop.cancel();
    for producer in producers {
        producer.await.expect("producer");
    }

    let tally = Arc::try_unwrap(tally)
        .ok()
        .expect("producers done")
        .into_inner()
        .expect("tally");
    assert!(
        tally.failed.is_empty(),
        "publishes failed instead of waiting out a 2 s outage: {:?}",
        tally.failed
    );
    let ledger = eventually(
        Duration::from_secs(40),
        "every confirmed event delivered",
        || async {
            let ledger = Ledger::of(&receiver.all());
            tally
                .confirmed
                .is_subset(&ledger.event_ids("/client"))
                .then_some(ledger)
        },
    )
    .await;
    ledger.assert_one_webhook_id_per_delivery();
}
