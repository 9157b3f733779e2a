//! The HTTP side of the services as every test harness calls it: admin
//! requests to an api, JSON answers read as `(status, body)`, and readiness
//! polling. Shared by [`TestEnv`](crate::TestEnv) and
//! [`FaultEnv`](crate::faults::FaultEnv) so both speak to a service the same way.

use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::Value;

use crate::env::ADMIN_TOKEN;
use crate::eventually;

/// Admin requests to one api instance; answers are `(status, body)` so a
/// test asserts on both.
#[derive(Clone)]
pub struct ApiClient {
    /// The client requests go through (its timeouts apply).
    pub http: reqwest::Client,
    /// `http://127.0.0.1:PORT` of the api.
    pub base: String,
    /// Sent as the bearer token.
    pub admin_token: String,
}

impl ApiClient {
    /// An admin of the api at `base`, with the token every test env configures.
    pub fn new(http: reqwest::Client, base: impl Into<String>) -> Self {
        Self {
            http,
            base: base.into(),
            admin_token: ADMIN_TOKEN.to_string(),
        }
    }

    /// `GET` `path`.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, None).await
    }

    /// `POST` JSON to `path`.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(Method::POST, path, Some(body)).await
    }

    /// `PATCH` JSON to `path`.
    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(Method::PATCH, path, Some(body)).await
    }

    /// `DELETE` `path`.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(Method::DELETE, path, None).await
    }

    async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request.send().await.expect("api reachable")).await
    }

    /// Creates a subscription of `tenant` and returns it (with its secret);
    /// any answer but 201 fails the test.
    pub async fn subscribe(&self, tenant: &str, name: &str, url: &str, types: &[&str]) -> Value {
        let (status, body) = self
            .post(
                &format!("/v1/tenants/{tenant}/subscriptions"),
                &serde_json::json!({ "name": name, "url": url, "event_types": types }),
            )
            .await;
        assert_eq!(status, 201, "create subscription: {body}");
        body
    }
}

/// Status and JSON body of `response` (`Null` when the body is not JSON).
pub async fn answer(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status `base/readyz` answers, if any within 2 s.
async fn readyz(base: &str) -> Option<u16> {
    let response = reqwest::Client::new()
        .get(format!("{base}/readyz"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    Some(response.status().as_u16())
}

/// Waits until `base/readyz` answers 200 (any 2xx).
pub async fn wait_ready(base: &str, timeout: Duration) {
    eventually(timeout, &format!("{base}/readyz to be 200"), || async {
        matches!(readyz(base).await, Some(200..=299)).then_some(())
    })
    .await;
}

/// Waits until `base/readyz` answers 503 (a dependency is down).
pub async fn wait_not_ready(base: &str, timeout: Duration) {
    eventually(timeout, &format!("{base}/readyz to be 503"), || async {
        (readyz(base).await == Some(503)).then_some(())
    })
    .await;
}
