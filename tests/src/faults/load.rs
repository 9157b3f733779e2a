//! Steady load on ingest: a few workers each posting one event after
//! another with unique ids, and a record of what ingest answered for each.
//! `confirmed` is what ingest promised (`202`); `refused` got a `503`;
//! `unanswered` got no HTTP answer, so the producer cannot know.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What ingest answered, by event id.
#[derive(Debug, Default, Clone)]
pub struct Outcomes {
    /// `202`: ingest had the broker's confirm.
    pub confirmed: BTreeSet<String>,
    /// `503`: ingest could not publish.
    pub refused: BTreeSet<String>,
    /// No answer (connection error or client timeout).
    pub unanswered: BTreeSet<String>,
    /// Any other answer, with its status: always a bug.
    pub unexpected: Vec<(String, u16)>,
}

impl Outcomes {
    /// Every id posted.
    pub fn posted(&self) -> BTreeSet<String> {
        let mut all = self.confirmed.clone();
        all.extend(self.refused.iter().cloned());
        all.extend(self.unanswered.iter().cloned());
        all.extend(self.unexpected.iter().map(|(id, _)| id.clone()));
        all
    }
}

fn record(outcomes: &Mutex<Outcomes>, id: String, answer: reqwest::Result<u16>) {
    let mut o = outcomes.lock().expect("lock");
    match answer {
        Ok(202) => {
            o.confirmed.insert(id);
        }
        Ok(503) => {
            o.refused.insert(id);
        }
        Ok(status) => o.unexpected.push((id, status)),
        Err(_) => {
            o.unanswered.insert(id);
        }
    }
}

/// Running workers; [`Load::stop`] ends them and returns the outcomes.
pub struct Load {
    outcomes: Arc<Mutex<Outcomes>>,
    token: CancellationToken,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `workers` loops posting `event_type` events of `tenant` to
    /// `ingest`, each pausing `pause` between its requests.
    pub fn start(
        ingest: &str,
        tenant: &str,
        event_type: &str,
        workers: usize,
        pause: Duration,
    ) -> Self {
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let token = CancellationToken::new();
        let run = ulid::Ulid::new().to_string().to_lowercase();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client");
        let workers = (0..workers)
            .map(|worker| {
                let (http, outcomes, token) = (http.clone(), outcomes.clone(), token.clone());
                let url = format!("{ingest}/v1/events");
                let (tenant, event_type) = (tenant.to_string(), event_type.to_string());
                let prefix = format!("evt_{run}_{worker}");
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !token.is_cancelled() {
                        n += 1;
                        let id = format!("{prefix}_{n}");
                        let event = json!({"id": id, "tenant": tenant, "type": event_type, "data": {"n": n}});
                        let answer = http.post(&url).json(&event).send().await;
                        record(&outcomes, id, answer.map(|r| r.status().as_u16()));
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => {}
                            _ = token.cancelled() => {}
                        }
                    }
                })
            })
            .collect();
        Self {
            outcomes,
            token,
            workers,
        }
    }

    /// The outcomes so far.
    pub fn snapshot(&self) -> Outcomes {
        self.outcomes.lock().expect("lock").clone()
    }

    /// Stops posting (requests in flight finish) and returns the outcomes.
    pub async fn stop(self) -> Outcomes {
        self.token.cancel();
        for worker in self.workers {
            let _ = worker.await;
        }
        let outcomes = self.outcomes.lock().expect("lock").clone();
        outcomes
    }
}
