//! Limits every HTTP listener applies (ingest, the api, the ops ports): a
//! client that trickles its headers or its body, or idles on a keep-alive
//! connection, loses it; connections beyond `http.max_connections` wait.

use std::time::Duration;

use hookline_tests::TestEnv;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_string()
}

/// Reads until the server answers or closes; `None` if neither happens
/// within `wait`.
async fn read_some(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut buffer = vec![0u8; 4096];
    match tokio::time::timeout(wait, stream.read(&mut buffer)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&buffer[..n]).into_owned()),
        Ok(Err(_)) => Some(String::new()),
        Err(_) => None,
    }
}

async fn limited_env() -> TestEnv {
    TestEnv::start_with(|o| {
        o.settings.http.header_read_timeout = Duration::from_secs(1);
        o.settings.http.request_timeout = Duration::from_secs(1);
        o.settings.http.max_connections = 2;
        o.fanout = false;
        o.deliverer = false;
    })
    .await
}

#[tokio::test]
async fn trickled_headers_and_idle_keep_alive_connections_are_closed() {
    let env = limited_env().await;
    for base in [&env.ingest, &env.api] {
        let mut slow = TcpStream::connect(addr(base)).await.expect("connect");
        slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let answer = read_some(&mut slow, Duration::from_secs(10)).await;
        assert!(
            answer
                .as_deref()
                .is_some_and(|a| !a.starts_with("HTTP/1.1 200")),
            "{base}: a connection with unfinished headers was kept: {answer:?}"
        );

        let mut idle = TcpStream::connect(addr(base)).await.expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let answer = read_some(&mut idle, Duration::from_secs(5)).await;
        assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")));
        let closed = read_some(&mut idle, Duration::from_secs(10)).await;
        assert_eq!(
            closed.as_deref(),
            Some(""),
            "{base}: an idle connection was kept"
        );
    }
}

#[tokio::test]
async fn a_body_that_trickles_past_the_request_timeout_is_408() {
    let env = limited_env().await;
    let mut slow = TcpStream::connect(addr(&env.ingest))
        .await
        .expect("connect");
    slow.write_all(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"tenant\"",
    )
    .await
    .expect("write");
    let answer = read_some(&mut slow, Duration::from_secs(10)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 408")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_for_a_free_one() {
    let env = limited_env().await;
    let base = addr(&env.api);
    let first = TcpStream::connect(&base).await.expect("connect");
    let second = TcpStream::connect(&base).await.expect("connect");
    let mut third = TcpStream::connect(&base).await.expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(
        read_some(&mut third, Duration::from_millis(300)).await,
        None,
        "a third connection was served while two were held"
    );
    drop((first, second));
    let answer = read_some(&mut third, Duration::from_secs(10)).await;
    assert!(
        answer
            .as_deref()
            .is_some_and(|a| a.starts_with("HTTP/1.1 200")),
        "{answer:?}"
    );
}

#[tokio::test]
async fn test_sends_over_the_tenant_budget_are_429_with_retry_after() {
    let env = TestEnv::start_with(|o| {
        o.settings.api.manual_sends_per_minute = 2;
        o.ingest = false;
    })
    .await;
    let receiver = hookline_tests::Receiver::start().await;
    let acme = env.subscribe("acme", &receiver.url("/a"), &["*"]).await;
    let globex = env.subscribe("globex", &receiver.url("/g"), &["*"]).await;
    let test_send = |tenant: &'static str, sub: &serde_json::Value| {
        let path = format!(
            "{}/v1/tenants/{tenant}/subscriptions/{}/test",
            env.api,
            sub["id"].as_str().expect("id")
        );
        let http = env.http.clone();
        async move {
            http.post(path)
                .bearer_auth(hookline_tests::env::ADMIN_TOKEN)
                .json(&serde_json::json!({"event_type": "lead.created"}))
                .send()
                .await
                .expect("api")
        }
    };
    for _ in 0..2 {
        assert_eq!(test_send("acme", &acme).await.status(), 200);
    }
    let refused = test_send("acme", &acme).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(test_send("globex", &globex).await.status(), 200);
    assert_eq!(
        receiver.all().len(),
        3,
        "the refused test send sent nothing"
    );
}

#[tokio::test]
async fn an_unknown_bearer_token_costs_one_database_lookup_while_remembered() {
    let env = TestEnv::start_with(|o| {
        o.ingest = false;
        o.fanout = false;
        o.deliverer = false;
    })
    .await;
    for _ in 0..20 {
        let status = env
            .http
            .get(format!("{}/v1/tenants/acme/subscriptions", env.api))
            .bearer_auth("guessed-token-0123456789abcdef")
            .send()
            .await
            .expect("api")
            .status();
        assert_eq!(status, 401);
    }
    let lookups = hookline_tests::faults::probe::metric_sum(
        &env.metrics(&env.api).await,
        "hookline_api_token_lookups_total",
        &[],
    );
    assert_eq!(lookups, 1.0);
}
