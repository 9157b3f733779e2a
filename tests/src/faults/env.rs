//! `FaultEnv`: Hookline wired to a broker node and a PostgreSQL cluster
//! that belong to one test, with the services it asks for in-process.
//! Services that a test kills are started as binaries with
//! [`FaultEnv::spawn_process`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hookline_config::{Secret, Settings};
use hookline_runtime::Shutdown;
use serde_json::Value;

use super::broker::Broker;
use super::postgres::Postgres;
use super::probe::{metric_sum, metrics_text};
use super::services::{spawn_in_process, Service, ServiceProcess};
use crate::api_client::{answer, wait_ready, ApiClient};
use crate::env::test_settings;
use crate::eventually;

/// What a fault test may change before the services start.
pub struct FaultOptions {
    /// Settings as the services will see them (broker and database URLs are
    /// filled in afterwards).
    pub settings: Settings,
    /// Services to run in-process; the others are left to the test.
    pub services: Vec<Service>,
}

/// A Hookline on its own broker node and database cluster.
pub struct FaultEnv {
    /// The settings every service runs with.
    pub settings: Settings,
    /// `http://127.0.0.1:PORT` of the in-process api (empty when not started).
    pub api: String,
    /// Admin requests to `api`, through `http`.
    pub admin: ApiClient,
    /// Ingest base URL (empty when not started).
    pub ingest: String,
    /// Fanout base URL (empty when not started).
    pub fanout: String,
    /// Deliverer base URL (empty when not started).
    pub deliverer: String,
    /// A client with a per-request timeout, so a hung service fails the
    /// test instead of hanging it.
    pub http: reqwest::Client,
    shutdown: Shutdown,
    subscriptions: AtomicUsize,
    /// The test's own node.
    pub broker: Broker,
    /// The test's own cluster.
    pub postgres: Postgres,
}

impl FaultEnv {
    /// Boots a broker node and a cluster (in parallel), then the services.
    pub async fn start_with(tweak: impl FnOnce(&mut FaultOptions)) -> Self {
        crate::init_tracing();
        let mut options = FaultOptions {
            settings: test_settings(),
            services: vec![
                Service::Api,
                Service::Ingest,
                Service::Fanout,
                Service::Deliverer,
            ],
        };
        tweak(&mut options);
        let (broker, postgres) = tokio::join!(Broker::start(), Postgres::start());
        postgres.create_database("hookline").await;
        let mut settings = options.settings;
        settings.amqp.url = Secret::new(broker.url());
        settings.database.url = Secret::new(postgres.url("hookline"));

        let shutdown = Shutdown::new();
        let mut bases = [String::new(), String::new(), String::new(), String::new()];
        // The api first: it migrates the database the fanout reads.
        for service in [
            Service::Api,
            Service::Ingest,
            Service::Fanout,
            Service::Deliverer,
        ] {
            if options.services.contains(&service) {
                let base = spawn_in_process(service, &settings, &shutdown).await;
                wait_ready(&base, Duration::from_secs(30)).await;
                if service == Service::Api {
                    // Ingest reads the catalogue from this api.
                    settings.ingest.api_url.clone_from(&base);
                }
                bases[service as usize] = base;
            }
        }
        let [api, ingest, fanout, deliverer] = bases;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("client");
        Self {
            settings,
            admin: ApiClient::new(http.clone(), &api),
            api,
            ingest,
            fanout,
            deliverer,
            http,
            shutdown,
            subscriptions: AtomicUsize::new(0),
            broker,
            postgres,
        }
    }

    /// Starts `service` as a `hookline` child process with these settings.
    pub fn spawn_process(&self, service: Service, extra: &[(&str, &str)]) -> ServiceProcess {
        ServiceProcess::spawn(service, &self.settings, extra)
    }

    /// `GET` from the api as admin.
    pub async fn api_get(&self, path: &str) -> (u16, Value) {
        self.admin.get(path).await
    }

    /// Creates a subscription and returns it.
    pub async fn subscribe(&self, tenant: &str, url: &str, event_types: &[&str]) -> Value {
        let body = self
            .admin
            .subscribe(tenant, "fault", url, event_types)
            .await;
        let created = self.subscriptions.fetch_add(1, Ordering::SeqCst) + 1;
        if !self.fanout.is_empty() {
            // A change is in effect within a second (the contract); wait for
            // it rather than lose the first events as unmatched.
            wait_subscriptions_loaded(&self.fanout, created).await;
        }
        body
    }

    /// `POST /v1/events`; `None` when no answer came at all.
    pub async fn post_event(&self, event: &Value) -> Option<(u16, Value)> {
        let url = format!("{}/v1/events", self.ingest);
        let response = self.http.post(url).json(event).send().await.ok()?;
        Some(answer(response).await)
    }

    /// Every history record of a subscription, newest first, all pages.
    pub async fn history(&self, tenant: &str, subscription_id: &str) -> Vec<Value> {
        let mut records = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path =
                format!("/v1/tenants/{tenant}/subscriptions/{subscription_id}/attempts?limit=100");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let (status, body) = self.api_get(&path).await;
            assert_eq!(status, 200, "history: {body}");
            records.extend(body["data"].as_array().cloned().unwrap_or_default());
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return records,
            }
        }
    }
}

impl Drop for FaultEnv {
    fn drop(&mut self) {
        // Services stop before the broker and cluster (dropped after this)
        // are killed.
        self.shutdown.token.cancel();
    }
}

/// Waits until the fanout at `base` has at least `count` subscriptions in
/// its index.
pub async fn wait_subscriptions_loaded(base: &str, count: usize) {
    eventually(
        Duration::from_secs(10),
        &format!("{count} subscriptions loaded by the fanout at {base}"),
        || async {
            let loaded = metric_sum(
                &metrics_text(base).await,
                "hookline_fanout_subscriptions_loaded",
                &[],
            );
            (loaded >= count as f64).then_some(())
        },
    )
    .await;
}
