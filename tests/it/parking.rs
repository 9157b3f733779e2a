//! A message the api cannot park is held, never dropped: it stays unacked
//! on the broker and `/readyz` says so until PostgreSQL takes it.

use std::time::Duration;

use hookline_tests::{eventually, TestEnv};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_parked_stays_unacked_and_readiness_says_so_until_it_can() {
    let env = TestEnv::start().await;
    let pool = sqlx::PgPool::connect(env.settings.database.url.expose())
        .await
        .expect("database");
    // Every parking insert is refused with a constraint error, the kind the
    // recorder does not retry.
    sqlx::query("ALTER TABLE parked_messages ADD CONSTRAINT refuse_all CHECK (false) NOT VALID")
        .execute(&pool)
        .await
        .expect("constraint");
    hookline_tests::faults::probe::publish(
        env.amqp_url(),
        "",
        hookline_amqp::names::ATTEMPTS_QUEUE,
        b"not an attempt batch",
        lapin::BasicProperties::default().with_delivery_mode(2),
    )
    .await;
    let readyz = || async {
        let response = env
            .http
            .get(format!("{}/readyz", env.api))
            .send()
            .await
            .expect("readyz");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("json"))
    };
    let body = eventually(Duration::from_secs(30), "the api not ready", || async {
        let (status, body) = readyz().await;
        (status == 503 && body["checks"]["parking"] == false).then_some(body)
    })
    .await;
    assert_eq!(body["checks"]["database"], true, "{body}");
    // The broker's statistics lag a few seconds behind.
    eventually(
        Duration::from_secs(20),
        "the message held unacked",
        || async {
            let queue: Value = env
                .http
                .get(format!(
                    "http://127.0.0.1:15672/api/queues/{}/{}",
                    env.vhost(),
                    hookline_amqp::names::ATTEMPTS_QUEUE
                ))
                .basic_auth("guest", Some("guest"))
                .send()
                .await
                .expect("management API")
                .json()
                .await
                .expect("json");
            (queue["messages_unacknowledged"] == 1).then_some(())
        },
    )
    .await;

    sqlx::query("ALTER TABLE parked_messages DROP CONSTRAINT refuse_all")
        .execute(&pool)
        .await
        .expect("drop constraint");
    eventually(Duration::from_secs(30), "parked at last", || async {
        let parked: Vec<String> = sqlx::query_scalar("SELECT queue FROM parked_messages")
            .fetch_all(&pool)
            .await
            .expect("parked");
        (parked == [hookline_amqp::names::ATTEMPTS_QUEUE]).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "ready again", || async {
        (readyz().await.0 == 200).then_some(())
    })
    .await;
}
