//! The api and ingest as the command line reaches them: where they are
//! (`HOOKLINE_API_URL`, `HOOKLINE_INGEST_URL`), the bearer token
//! (`HOOKLINE_TOKEN`), and an error that shows the api's own code and
//! message instead of a bare status.

use std::time::Duration;

use serde_json::Value;

/// Where the operator commands and `listen --subscription` find Hookline.
#[derive(clap::Args, Clone)]
pub struct Endpoint {
    /// The api's base URL.
    #[arg(
        long,
        env = "HOOKLINE_API_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub api_url: String,
    /// Ingest's base URL (`events send`).
    #[arg(
        long,
        env = "HOOKLINE_INGEST_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub ingest_url: String,
    /// The api's admin token or a tenant key.
    #[arg(long, env = "HOOKLINE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// One of `ingest.tokens`, when ingest requires one (`events send`).
    #[arg(long, env = "HOOKLINE_INGEST_TOKEN", hide_env_values = true)]
    pub ingest_token: Option<String>,
}

/// A call that did not give the answer wanted.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The service answered with an error body.
    #[error("{status} {code}: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// `error.code` of the body.
        code: String,
        /// `error.message` of the body.
        message: String,
    },
    /// Nothing answered, or the answer was not JSON.
    #[error("{0}")]
    Transport(String),
}

/// One HTTP client for a command's calls.
pub struct Remote {
    http: reqwest::Client,
    endpoint: Endpoint,
}

impl Remote {
    /// A client with a timeout, so a command never hangs on a dead service.
    pub fn new(endpoint: &Endpoint) -> Result<Remote, RemoteError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| RemoteError::Transport(e.to_string()))?;
        Ok(Remote {
            http,
            endpoint: endpoint.clone(),
        })
    }

    /// `GET` on the api.
    pub async fn get(&self, path: &str) -> Result<Value, RemoteError> {
        self.call(reqwest::Method::GET, Target::Api, path, None)
            .await
    }

    /// `POST` of `body` on the api.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value, RemoteError> {
        self.call(reqwest::Method::POST, Target::Api, path, Some(body))
            .await
    }

    /// `DELETE` on the api.
    pub async fn delete(&self, path: &str) -> Result<Value, RemoteError> {
        self.call(reqwest::Method::DELETE, Target::Api, path, None)
            .await
    }

    /// `POST` of `body` on ingest.
    pub async fn post_ingest(&self, path: &str, body: Value) -> Result<Value, RemoteError> {
        self.call(reqwest::Method::POST, Target::Ingest, path, Some(body))
            .await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        target: Target,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, RemoteError> {
        let (base, token) = match target {
            Target::Api => (&self.endpoint.api_url, &self.endpoint.token),
            Target::Ingest => (&self.endpoint.ingest_url, &self.endpoint.ingest_token),
        };
        let url = format!("{}{path}", base.trim_end_matches('/'));
        let mut request = self.http.request(method, &url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| RemoteError::Transport(format!("{url}: {e}")))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| RemoteError::Transport(format!("{url}: {e}")))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|_| {
                RemoteError::Transport(format!("{url}: {status}, not JSON: {}", first(&text)))
            })?
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let error = &value["error"];
        Err(RemoteError::Api {
            status,
            code: error["code"].as_str().unwrap_or("unknown").to_string(),
            message: error["message"]
                .as_str()
                .map_or_else(|| first(&text), str::to_string),
        })
    }
}

#[derive(Clone, Copy)]
enum Target {
    Api,
    Ingest,
}

fn first(text: &str) -> String {
    text.chars().take(200).collect()
}
