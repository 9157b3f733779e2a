//! TLS to the broker (`amqps://`, `amqp.ca_file`) and to PostgreSQL
//! (`sslmode=verify-full`, `sslrootcert`): a RabbitMQ node and a PostgreSQL
//! cluster of this test's own serve certificates of a CA made by the test.
//! Delivery works end to end; a certificate from another CA is refused with
//! an error that says so.

use std::time::Duration;

use hookline_config::Secret;
use hookline_runtime::Shutdown;
use hookline_tests::api_client::wait_ready;
use hookline_tests::env::test_settings;
use hookline_tests::faults::broker::Broker;
use hookline_tests::faults::env::wait_subscriptions_loaded;
use hookline_tests::faults::postgres::Postgres;
use hookline_tests::faults::services::{spawn_in_process, Service};
use hookline_tests::tls::{other_ca_pem, ServerCert};
use hookline_tests::{eventually, ApiClient, Receiver};
use serde_json::json;

#[tokio::test]
async fn deliveries_flow_over_tls_to_rabbitmq_and_postgresql_and_another_ca_is_refused() {
    let tls = ServerCert::new();
    let (broker, postgres) = tokio::join!(
        Broker::start_with_tls(Some(&tls)),
        Postgres::start_with_tls(Some(&tls))
    );
    postgres.create_database("hookline").await;
    let dir = std::env::temp_dir().join(format!("hookline-tls-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(&dir).expect("dir");
    let ca = dir.join("ca.pem");
    let other = dir.join("other-ca.pem");
    std::fs::write(&ca, &tls.ca_pem).expect("ca");
    std::fs::write(&other, other_ca_pem()).expect("other ca");

    let mut settings = test_settings();
    settings.amqp.url = Secret::new(broker.tls_url());
    settings.amqp.ca_file = Some(ca.clone());
    settings.database.url = Secret::new(postgres.tls_url("hookline", &ca));
    let shutdown = Shutdown::new();
    let mut bases = Vec::new();
    for service in [
        Service::Api,
        Service::Ingest,
        Service::Fanout,
        Service::Deliverer,
    ] {
        let base = spawn_in_process(service, &settings, &shutdown).await;
        wait_ready(&base, Duration::from_secs(30)).await;
        bases.push(base);
    }
    let api = ApiClient::new(reqwest::Client::new(), &bases[0]);
    let receiver = Receiver::start().await;
    api.subscribe("acme", "tls", &receiver.url("/hook"), &["lead.created"])
        .await;
    wait_subscriptions_loaded(&bases[2], 1).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", bases[1]))
        .json(&json!({"tenant": "acme", "type": "lead.created", "data": {"over": "tls"}}))
        .send()
        .await
        .expect("ingest");
    assert_eq!(response.status(), 202);
    let delivered = eventually(Duration::from_secs(20), "the delivery", || async {
        receiver.requests("/hook").into_iter().next()
    })
    .await;
    assert_eq!(delivered.json()["data"]["over"], "tls");
    shutdown.token.cancel();

    // The same servers, trusted through another CA (or only the system's
    // roots): refused, and the error says why.
    for ca_file in [Some(other.clone()), None] {
        let broker = hookline_amqp::Broker::new(broker.tls_url(), ca_file.clone());
        let error = hookline_amqp::connect_to(&broker, "tls-test")
            .await
            .expect_err("an unknown CA is refused")
            .to_string();
        assert!(
            error.to_lowercase().contains("certificate") || error.contains("UnknownIssuer"),
            "{ca_file:?}: {error}"
        );
    }
    use sqlx::Connection as _;
    let error = sqlx::PgConnection::connect(&postgres.tls_url("hookline", &other))
        .await
        .expect_err("an unknown CA is refused")
        .to_string();
    assert!(
        error.to_lowercase().contains("certificate") || error.contains("UnknownIssuer"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
