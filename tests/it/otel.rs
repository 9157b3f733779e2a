//! OpenTelemetry export: the four services run as their own processes,
//! each exporting OTLP/HTTP to a collector stub in this test, and the spans
//! of one event form one trace: producer → ingest → fanout → each attempt
//! → the api's history record, with the receiver's `traceparent` naming
//! the attempt span as its parent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use hookline_model::trace::TraceParent;
use hookline_proto::Message as _;
use hookline_tests::api_client::ApiClient;
use hookline_tests::faults::services::{Service, ServiceProcess};
use hookline_tests::{eventually, Receiver, Reply, TestEnv};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use serde_json::json;

const PRODUCER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const PRODUCER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const PRODUCER_SPAN: &str = "b7ad6b7169203331";

/// One exported span, as the collector saw it.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: HashMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Exported>>>;

fn text(value: &KeyValue) -> String {
    match value.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Any::StringValue(s)) => s.clone(),
        Some(Any::IntValue(i)) => i.to_string(),
        Some(Any::BoolValue(b)) => b.to_string(),
        Some(Any::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// `POST /v1/traces` with an OTLP protobuf body: every span is kept.
async fn collect(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    let mut kept = spans.lock().expect("spans");
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(text)
            .unwrap_or_default();
        for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
            kept.push(Exported {
                service: service.clone(),
                name: span.name,
                trace_id: hex::encode(&span.trace_id),
                span_id: hex::encode(&span.span_id),
                parent: hex::encode(&span.parent_span_id),
                attributes: span
                    .attributes
                    .iter()
                    .map(|a| (a.key.clone(), text(a)))
                    .collect(),
            });
        }
    }
    ""
}

async fn collector() -> (String, Spans) {
    let spans = Spans::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(collect))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), spans)
}

fn named<'a>(spans: &'a [Exported], name: &str) -> Vec<&'a Exported> {
    spans.iter().filter(|s| s.name == name).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_event_is_one_trace_across_the_four_services() {
    // The env gives the vhost and database only; the services run as
    // processes of their own, each with its own exporter.
    let env = TestEnv::bare().await;
    let (endpoint, spans) = collector().await;
    let export: [(&str, &str); 2] = [
        ("HOOKLINE__TELEMETRY__OTLP_ENDPOINT", &endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut settings = env.settings.clone();
    let api = ServiceProcess::spawn(Service::Api, &settings, &export);
    api.wait_ready(Duration::from_secs(30)).await;
    settings.ingest.api_url.clone_from(&api.base);
    let ingest = ServiceProcess::spawn(Service::Ingest, &settings, &export);
    let fanout = ServiceProcess::spawn(Service::Fanout, &settings, &export);
    let deliverer = ServiceProcess::spawn(Service::Deliverer, &settings, &export);
    for service in [&ingest, &fanout, &deliverer] {
        service.wait_ready(Duration::from_secs(30)).await;
    }

    let receiver = Receiver::start().await;
    // The first attempt fails, so the trace holds a retry.
    receiver.script("/otel", vec![Reply::status(500)]);
    let admin = ApiClient::new(env.http.clone(), &api.base);
    admin
        .subscribe("acme", "traced", &receiver.url("/otel"), &["lead.*"])
        .await;
    eventually(
        Duration::from_secs(30),
        "fanout to load the subscription",
        || async {
            let metrics = env.metrics(&fanout.base).await;
            metrics
                .lines()
                .any(|l| l.starts_with("hookline_fanout_subscriptions_loaded 1"))
                .then_some(())
        },
    )
    .await;
    let answer = env
        .http
        .post(format!("{}/v1/events", ingest.base))
        .header("traceparent", PRODUCER)
        .json(&json!({"id": "evt_otel", "tenant": "acme", "type": "lead.created", "data": {}}))
        .send()
        .await
        .expect("ingest answers");
    assert_eq!(answer.status().as_u16(), 202);
    let deliveries = eventually(Duration::from_secs(30), "two attempts", || async {
        let got = receiver.requests("/otel");
        (got.len() >= 2).then_some(got)
    })
    .await;

    let trace = eventually(Duration::from_secs(30), "every span exported", || async {
        let got: Vec<Exported> = spans
            .lock()
            .expect("spans")
            .iter()
            .filter(|s| s.trace_id == PRODUCER_TRACE)
            .cloned()
            .collect();
        let complete = named(&got, "ingest.publish").len() == 1
            && named(&got, "fanout.match").len() == 1
            && named(&got, "deliverer.attempt").len() == 2
            && named(&got, "api.record_attempt").len() == 2;
        complete.then_some(got)
    })
    .await;
    for span in &trace {
        eprintln!(
            "{:<20} {:<20} span {} parent {} {:?}",
            span.service, span.name, span.span_id, span.parent, span.attributes
        );
    }

    let ingest_span = named(&trace, "ingest.publish")[0];
    assert_eq!(ingest_span.service, "hookline-ingest");
    assert_eq!(
        ingest_span.parent, PRODUCER_SPAN,
        "ingest continues the producer's span"
    );
    assert_eq!(ingest_span.attributes["hookline.event_id"], "evt_otel");

    let fanout_span = named(&trace, "fanout.match")[0];
    assert_eq!(fanout_span.service, "hookline-fanout");
    assert_eq!(
        fanout_span.parent, ingest_span.span_id,
        "fanout is ingest's child"
    );
    assert_eq!(fanout_span.attributes["hookline.matched"], "1");

    let mut attempts = named(&trace, "deliverer.attempt");
    attempts.sort_by_key(|s| s.attributes["hookline.attempt"].clone());
    for attempt in &attempts {
        assert_eq!(attempt.service, "hookline-deliverer");
        assert_eq!(
            attempt.parent, fanout_span.span_id,
            "each attempt is fanout's child"
        );
    }
    let (first, retry) = (attempts[0], attempts[1]);
    assert_eq!(first.attributes["hookline.attempt"], "1");
    assert_eq!(first.attributes["hookline.outcome"], "failed");
    assert_eq!(first.attributes["http.response.status_code"], "500");
    assert_eq!(first.attributes["hookline.status_class"], "5xx");
    assert!(first.attributes.contains_key("hookline.retry_delay"));
    assert_eq!(retry.attributes["hookline.attempt"], "2");
    assert_eq!(retry.attributes["hookline.outcome"], "succeeded");
    assert_eq!(retry.attributes["http.response.status_code"], "200");

    // The receiver's trace continues each attempt's span.
    let sent: Vec<String> = deliveries
        .iter()
        .map(|d| {
            let header = d.header("traceparent").expect("a traceparent");
            TraceParent::parse(header).expect("valid").span_id()
        })
        .collect();
    assert_eq!(sent, vec![first.span_id.clone(), retry.span_id.clone()]);

    let mut recorded: Vec<&str> = named(&trace, "api.record_attempt")
        .iter()
        .map(|s| {
            assert_eq!(s.service, "hookline-api");
            s.parent.as_str()
        })
        .collect();
    recorded.sort_unstable();
    let mut attempt_ids = vec![first.span_id.as_str(), retry.span_id.as_str()];
    attempt_ids.sort_unstable();
    assert_eq!(recorded, attempt_ids, "each record is its attempt's child");
}
