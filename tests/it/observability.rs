//! Operating Hookline: the contract's metric families move by exactly the
//! traffic sent and carry no tenant, URL or subscription id, and every
//! service answers its health checks. The OpenAPI documents and the deploy
//! files have their own modules; `schemas` checks real answers against the
//! documents.

mod deploy;
mod openapi;
mod schemas;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use prometheus_parse::{Scrape, Value as Sample};
use serde_json::{json, Value};

/// What a family's samples hold, as the text format types them.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One family of the contract's metrics table, and the service exporting it.
struct Family {
    name: &'static str,
    service: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
}

const FAMILIES: &[Family] = &[
    Family {
        name: "hookline_ingest_events_total",
        service: "ingest",
        kind: Kind::Counter,
        labels: &["outcome"],
    },
    Family {
        name: "hookline_fanout_events_total",
        service: "fanout",
        kind: Kind::Counter,
        labels: &["outcome"],
    },
    Family {
        name: "hookline_fanout_tasks_total",
        service: "fanout",
        kind: Kind::Counter,
        labels: &[],
    },
    Family {
        name: "hookline_deliveries_total",
        service: "deliverer",
        kind: Kind::Counter,
        labels: &["outcome", "status_class"],
    },
    Family {
        name: "hookline_delivery_duration_seconds",
        service: "deliverer",
        kind: Kind::Histogram,
        labels: &["outcome"],
    },
    Family {
        name: "hookline_event_to_delivery_seconds",
        service: "deliverer",
        kind: Kind::Histogram,
        labels: &[],
    },
    Family {
        name: "hookline_retries_scheduled_total",
        service: "deliverer",
        kind: Kind::Counter,
        labels: &["delay"],
    },
    Family {
        name: "hookline_inflight_deliveries",
        service: "deliverer",
        kind: Kind::Gauge,
        labels: &[],
    },
];

/// The values each label may take, from the contract.
const LABEL_VALUES: &[(&str, &[&str])] = &[
    (
        "outcome",
        &[
            "accepted",
            "invalid",
            "rejected",
            "matched",
            "unmatched",
            "succeeded",
            "failed",
            "dead",
        ],
    ),
    ("status_class", &["2xx", "4xx", "5xx", "timeout", "connect"]),
];

pub(crate) async fn scrape(env: &TestEnv, base: &str) -> Scrape {
    let text = env.metrics(base).await;
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("Prometheus text format")
}

/// Sum of the samples named `metric` whose labels include `labels`.
pub(crate) fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// The label values `metric` carries under `label`, with their counts.
fn by_label(scrape: &Scrape, metric: &str, label: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for sample in scrape.samples.iter().filter(|s| s.metric == metric) {
        if let (Some(key), Sample::Counter(v)) = (sample.labels.get(label), &sample.value) {
            *out.entry(key.to_string()).or_insert(0.0) += v;
        }
    }
    out
}

fn kind_of(value: &Sample) -> Option<Kind> {
    match value {
        Sample::Counter(_) => Some(Kind::Counter),
        Sample::Gauge(_) => Some(Kind::Gauge),
        Sample::Histogram(_) => Some(Kind::Histogram),
        _ => None,
    }
}

/// Checks that `family` is on the service it belongs to, typed and labelled
/// as the contract says, and on no other service.
fn assert_family(family: &Family, scrapes: &BTreeMap<&str, Scrape>) {
    for (service, scrape) in scrapes {
        let samples: Vec<_> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == family.name)
            .collect();
        if *service != family.service {
            assert!(
                samples.is_empty(),
                "{} belongs to {}, yet {service} exports it",
                family.name,
                family.service
            );
            continue;
        }
        assert!(
            !samples.is_empty(),
            "{service} does not export {}",
            family.name
        );
        let expected: BTreeSet<&str> = family.labels.iter().copied().collect();
        for sample in samples {
            assert_eq!(
                kind_of(&sample.value),
                Some(family.kind),
                "{} has the wrong type",
                family.name
            );
            let names: BTreeSet<&str> = sample.labels.keys().map(String::as_str).collect();
            assert_eq!(names, expected, "labels of {}", family.name);
            for (label, allowed) in LABEL_VALUES {
                if let Some(value) = sample.labels.get(label) {
                    assert!(
                        allowed.contains(&value),
                        "{}{{{label}=\"{value}\"}} is not a contract value",
                        family.name
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn contract_metrics_count_the_traffic_exactly_with_no_tenant_url_or_subscription_label() {
    let env = TestEnv::start().await;
    let receiver = Receiver::start().await;
    receiver.script("/flaky", vec![Reply::status(500)]);
    let ok = env
        .subscribe("acme", &receiver.url("/ok"), &["lead.created"])
        .await;
    let flaky = env
        .subscribe("acme", &receiver.url("/flaky"), &["invoice.paid"])
        .await;
    for sub in [&ok, &flaky] {
        let id = sub["id"].as_str().expect("id");
        assert!(
            id.starts_with("sub_"),
            "the label scan looks for `sub_`: {id}"
        );
    }
    // Both subscriptions must be in fanout's index, or an event could count
    // as unmatched.
    eventually(Duration::from_secs(10), "fanout's index", || async {
        let fanout = scrape(&env, &env.fanout).await;
        (value(&fanout, "hookline_fanout_subscriptions_loaded", &[]) == 2.0).then_some(())
    })
    .await;

    for n in 1..=3 {
        let (status, body) = env
            .post_event(json!({"tenant": "acme", "type": "lead.created", "data": {"n": n}}))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, _) = env
        .post_event(json!({"tenant": "acme", "type": "Not Valid", "data": {}}))
        .await;
    assert_eq!(status, 400);
    for event in [
        json!({"tenant": "acme", "type": "invoice.paid", "data": {}}),
        json!({"tenant": "acme", "type": "nobody.listens", "data": {}}),
        json!({"tenant": "acme", "type": "Not Valid Either", "data": {}}),
    ] {
        let key = event["type"].as_str().expect("type").to_string();
        env.publish_amqp(&key, event.to_string().as_bytes()).await;
    }

    eventually(Duration::from_secs(20), "every delivery", || async {
        let done = receiver.requests("/ok").len() >= 3 && receiver.requests("/flaky").len() >= 2;
        done.then_some(())
    })
    .await;
    eventually(Duration::from_secs(15), "every attempt counted", || async {
        let fanout = scrape(&env, &env.fanout).await;
        let deliverer = scrape(&env, &env.deliverer).await;
        let api = scrape(&env, &env.api).await;
        let consumed = value(&fanout, "hookline_fanout_events_total", &[]);
        let attempts = value(&deliverer, "hookline_deliveries_total", &[]);
        let records = value(&api, "hookline_attempt_records_written_total", &[]);
        (consumed >= 6.0 && attempts >= 5.0 && records >= 5.0).then_some(())
    })
    .await;
    // A duplicate or a stray delivery would still be queued or on the wire.
    env.wait_nothing_pending(Duration::from_secs(15)).await;

    let mut scrapes = BTreeMap::new();
    for (service, base) in [
        ("ingest", &env.ingest),
        ("fanout", &env.fanout),
        ("deliverer", &env.deliverer),
        ("api", &env.api),
    ] {
        scrapes.insert(service, scrape(&env, base).await);
    }
    for family in FAMILIES {
        assert_family(family, &scrapes);
    }

    let ingest = &scrapes["ingest"];
    let events = "hookline_ingest_events_total";
    assert_eq!(value(ingest, events, &[("outcome", "accepted")]), 3.0);
    assert_eq!(value(ingest, events, &[("outcome", "invalid")]), 1.0);
    assert_eq!(value(ingest, events, &[("outcome", "rejected")]), 0.0);

    let fanout = &scrapes["fanout"];
    let events = "hookline_fanout_events_total";
    assert_eq!(value(fanout, events, &[("outcome", "matched")]), 4.0);
    assert_eq!(value(fanout, events, &[("outcome", "unmatched")]), 1.0);
    assert_eq!(value(fanout, events, &[("outcome", "invalid")]), 1.0);
    assert_eq!(value(fanout, "hookline_fanout_tasks_total", &[]), 4.0);

    let deliverer = &scrapes["deliverer"];
    let deliveries = "hookline_deliveries_total";
    let both = |outcome, class| [("outcome", outcome), ("status_class", class)];
    assert_eq!(value(deliverer, deliveries, &both("succeeded", "2xx")), 4.0);
    assert_eq!(value(deliverer, deliveries, &both("failed", "5xx")), 1.0);
    assert_eq!(value(deliverer, deliveries, &[]), 5.0, "no other attempt");
    let duration = "hookline_delivery_duration_seconds_count";
    assert_eq!(value(deliverer, duration, &[("outcome", "succeeded")]), 4.0);
    assert_eq!(value(deliverer, duration, &[("outcome", "failed")]), 1.0);
    assert_eq!(
        value(deliverer, "hookline_event_to_delivery_seconds_count", &[]),
        4.0,
        "one observation per successful delivery"
    );
    assert_eq!(
        by_label(deliverer, "hookline_retries_scheduled_total", "delay"),
        BTreeMap::from([("1s".to_string(), 1.0)]),
        "one retry, on the first rung of the 1s,2s ladder"
    );
    assert_eq!(value(deliverer, "hookline_inflight_deliveries", &[]), 0.0);

    let api = &scrapes["api"];
    assert_eq!(
        value(api, "hookline_attempt_records_written_total", &[]),
        5.0
    );

    for (service, scrape) in &scrapes {
        let ready = format!("hookline_ready{{service=\"{service}\"}}");
        assert_eq!(
            value(scrape, "hookline_ready", &[("service", service)]),
            1.0,
            "{ready}"
        );
        for sample in &scrape.samples {
            for (name, label) in sample.labels.iter() {
                let lower = label.to_lowercase();
                for forbidden in ["acme", "http", "sub_"] {
                    assert!(
                        !lower.contains(forbidden),
                        "{service}: {}{{{name}=\"{label}\"}} carries a tenant, URL or subscription id",
                        sample.metric
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn every_service_answers_healthz_and_readyz_with_200_and_a_json_readiness_body() {
    let env = TestEnv::start().await;
    for base in [&env.ingest, &env.fanout, &env.deliverer, &env.api] {
        let health = env
            .http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(health.status().as_u16(), 200, "{base}/healthz");
        let ready = env
            .http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz");
        assert_eq!(ready.status().as_u16(), 200, "{base}/readyz");
        let content_type = ready
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let body: Value = ready.json().await.expect("a JSON body");
        assert_eq!(body["ready"], true, "{base}/readyz: {body}");
    }
}
