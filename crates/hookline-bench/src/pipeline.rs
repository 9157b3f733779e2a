//! The real pipeline's runs, each against the sink: closed-loop throughput
//! (fan-out 1 and 10), open-loop latency at fixed rates, and per-endpoint
//! fairness with one slow receiver, and fan-out 1 with delivery options.
//! Each run has its own event-id prefix, so the sink never counts a late
//! delivery of an earlier run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::load::{Events, Generator};
use crate::options;
use crate::procstat;
use crate::report::{Fairness, History, Latency, Run};
use crate::services::ADMIN_TOKEN;
use crate::sink::{PhaseStats, Sink};

/// Fast endpoints of the fairness tenant (the slow one comes on top).
pub const FAIR_HEALTHY: u32 = 4;

/// The events of each run: tenant, type, and an id prefix of its own.
pub fn events(tenant: &str, event_type: &str, prefix: &str) -> Events {
    Events {
        tenant: tenant.into(),
        event_type: event_type.into(),
        prefix: prefix.into(),
    }
}

/// A process whose CPU time is charged to the deliveries of each run.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Row name in the report.
    pub name: String,
    /// Its CPU time is read from `/proc` before and after each run.
    pub pid: u32,
}

/// The running pipeline and what drives and observes it.
pub struct Pipeline<'a> {
    /// Where every subscription delivers; it counts and times each run's deliveries.
    pub sink: &'a Sink,
    /// Publishes each run's events to `hookline.events`, like any producer.
    pub generator: &'a Generator,
    /// For the api and `/metrics`.
    pub http: &'a reqwest::Client,
    /// Api base URL: subscriptions are made here, and attempt records counted.
    pub api: String,
    /// Fanout base URL, polled until it has loaded every bench subscription.
    pub fanout: String,
    /// Deliverer base URL, whose `/metrics` count attempts and deferrals.
    pub deliverer: String,
    /// Processes whose CPU is accounted per run.
    pub watched: Vec<Watched>,
    /// Clock ticks per second (`CLK_TCK`), to turn `/proc` CPU times into seconds.
    pub ticks: u64,
    /// Closed loop: events in flight end to end.
    pub window: usize,
    /// Longest wait for a run's last deliveries.
    pub drain: Duration,
}

impl Pipeline<'_> {
    /// Creates the subscriptions of every run through the api, then waits
    /// until fanout has loaded them all.
    pub async fn subscribe_all(&self) -> anyhow::Result<()> {
        let sink = self.sink;
        let plain = serde_json::json!({});
        self.subscribe("bench-f1", &sink.fast_url(0), &["bench.f1"], &plain)
            .await?;
        for i in 0..10 {
            self.subscribe("bench-f10", &sink.fast_url(i), &["bench.f10"], &plain)
                .await?;
        }
        for i in 0..FAIR_HEALTHY {
            self.subscribe("bench-fair", &sink.fast_url(i), &["bench.fair.*"], &plain)
                .await?;
        }
        self.subscribe(
            "bench-fair",
            &sink.slow_url(0),
            &["bench.fair.mixed"],
            &plain,
        )
        .await?;
        for run in &options::RUNS {
            self.subscribe(
                run.tenant,
                &sink.fast_url(0),
                &[run.event_type],
                &run.option.to_json(),
            )
            .await?;
        }
        let mut policy_subscriptions = 0;
        for (tenant, event_type, count, options) in crate::policies::subscriptions() {
            for i in 0..count {
                self.subscribe(tenant, &sink.fast_url(i), &[event_type], &options)
                    .await?;
            }
            policy_subscriptions += count;
        }
        let expected = f64::from(1 + 10 + FAIR_HEALTHY + 1 + policy_subscriptions)
            + options::RUNS.len() as f64;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .metric(&self.fanout, "hookline_fanout_subscriptions_loaded")
            .await
            < expected
        {
            if Instant::now() > deadline {
                bail!("fanout did not load the {expected} bench subscriptions within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// Creates one subscription; `options` (an object) is merged into the
    /// request, as the api takes delivery options beside the url.
    async fn subscribe(
        &self,
        tenant: &str,
        url: &str,
        event_types: &[&str],
        options: &serde_json::Value,
    ) -> anyhow::Result<()> {
        let mut body =
            serde_json::json!({ "name": "bench", "url": url, "event_types": event_types });
        if let (Some(body), Some(options)) = (body.as_object_mut(), options.as_object()) {
            body.extend(options.clone());
        }
        let response = self
            .http
            .post(format!("{}/v1/tenants/{tenant}/subscriptions", self.api))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .context("api reachable")?;
        let status = response.status();
        if status.as_u16() != 201 {
            let body = response.text().await.unwrap_or_default();
            bail!("creating a subscription for {tenant}: {status} {body}");
        }
        Ok(())
    }

    /// The sum of every series of `name` in `base`'s `/metrics` (0 when absent).
    pub async fn metric(&self, base: &str, name: &str) -> f64 {
        let Ok(response) = self.http.get(format!("{base}/metrics")).send().await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    async fn deferred(&self) -> f64 {
        self.metric(&self.deliverer, "hookline_deliveries_deferred_total")
            .await
    }

    fn cpu(&self) -> Vec<Duration> {
        self.watched
            .iter()
            .map(|w| procstat::sample(w.pid, self.ticks).map_or(Duration::ZERO, |s| s.cpu))
            .collect()
    }

    /// Closed loop for `duration`: a new event whenever one completes, at
    /// most `window` events outstanding. With `history`, also
    /// checks that the api stored an attempt record for every attempt.
    pub async fn closed(
        &self,
        name: &str,
        events: &Events,
        fanout: u32,
        duration: Duration,
        history: bool,
    ) -> anyhow::Result<(Run, PhaseStats)> {
        let cpu_before = self.cpu();
        let deferred_before = self.deferred().await;
        let attempts_before = self
            .metric(&self.deliverer, "hookline_deliveries_total")
            .await;
        let written_before = self
            .metric(&self.api, "hookline_attempt_records_written_total")
            .await;
        let phase = self
            .sink
            .begin(&events.prefix, fanout, Some(self.window.max(1)));
        let start_ns = self.sink.now_ns();
        let published = self
            .generator
            .closed_loop(self.sink, &phase, events, duration)
            .await?;
        let complete = phase.wait_for(published, self.drain).await;
        let stats = phase.stats();
        let history = if history {
            Some(
                self.history(attempts_before, written_before, stats.last_ns)
                    .await,
            )
        } else {
            None
        };
        let cpu_after = self.cpu();
        self.sink.end();
        let mut run = self.row(
            name,
            fanout,
            start_ns,
            &stats,
            complete,
            &cpu_before,
            &cpu_after,
        );
        run.slowest_5s_per_s = slowest_window(&stats.per_second, duration, 5);
        run.per_second = stats.per_second.clone();
        run.history = history;
        run.deferred = (self.deferred().await - deferred_before) as u64;
        Ok((run, stats))
    }

    /// Waits (up to the drain time) until the api has written a record for
    /// every attempt the deliverer made since the counters were read.
    async fn history(&self, attempts_before: f64, written_before: f64, last_ns: u64) -> History {
        let attempts = self
            .metric(&self.deliverer, "hookline_deliveries_total")
            .await
            - attempts_before;
        let deadline = Instant::now() + self.drain;
        loop {
            let written = self
                .metric(&self.api, "hookline_attempt_records_written_total")
                .await
                - written_before;
            if written >= attempts || Instant::now() > deadline {
                let caught_up = (written >= attempts)
                    .then(|| self.sink.now_ns().saturating_sub(last_ns) as f64 / 1e9);
                return History {
                    attempts: attempts as u64,
                    written: written as u64,
                    caught_up_after_s: caught_up,
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Open loop: `rate` events per second for `duration`, fan-out 1.
    pub async fn open(
        &self,
        name: &str,
        events: &Events,
        rate: f64,
        duration: Duration,
    ) -> anyhow::Result<(Run, Duration)> {
        let cpu_before = self.cpu();
        let deferred_before = self.deferred().await;
        let phase = self.sink.begin(&events.prefix, 1, None);
        let start_ns = self.sink.now_ns();
        let sent = self
            .generator
            .open_loop(self.sink, events, rate, duration)
            .await?;
        let complete = phase.wait_for(sent.published, self.drain).await;
        let cpu_after = self.cpu();
        let stats = phase.stats();
        self.sink.end();
        let mut run = self.row(name, 1, start_ns, &stats, complete, &cpu_before, &cpu_after);
        run.offered_rate = Some(rate);
        // The rate achieved is what arrived per second of the schedule, not
        // diluted by the wait for the last (possibly deferred) deliveries.
        run.seconds = duration.as_secs_f64();
        run.events_per_s = run.events as f64 / run.seconds;
        run.deliveries_per_s = run.deliveries as f64 / run.seconds;
        run.slowest_5s_per_s = slowest_window(&stats.per_second, duration, 5);
        run.per_second = stats.per_second.clone();
        run.deferred = (self.deferred().await - deferred_before) as u64;
        Ok((run, sent.max_behind))
    }

    /// The same healthy endpoints with a slow one beside them, bracketed by
    /// two runs without it (half as long each): on a machine whose speed
    /// drifts, the baseline is taken on both sides of the run it judges.
    pub async fn fairness(&self, duration: Duration) -> anyhow::Result<(Vec<Run>, Fairness)> {
        let baseline = |prefix: &'static str, when: &'static str| {
            let name = format!("fairness: {FAIR_HEALTHY} healthy ({when})");
            async move {
                self.closed(
                    &name,
                    &events("bench-fair", "bench.fair.base", prefix),
                    FAIR_HEALTHY,
                    duration / 2,
                    false,
                )
                .await
            }
        };
        let (before, _) = baseline("fairbase1-", "before").await?;
        let (mixed, stats) = self
            .closed(
                &format!("fairness: {FAIR_HEALTHY} healthy + 1 slow"),
                &events("bench-fair", "bench.fair.mixed", "fairmixed-"),
                FAIR_HEALTHY,
                duration,
                false,
            )
            .await?;
        let (after, _) = baseline("fairbase2-", "after").await?;
        let seconds = before.seconds + after.seconds;
        let baseline_per_s = if seconds > 0.0 {
            (before.deliveries + after.deliveries) as f64 / seconds
        } else {
            0.0
        };
        let ratio = if baseline_per_s > 0.0 {
            mixed.deliveries_per_s / baseline_per_s
        } else {
            0.0
        };
        let fairness = Fairness {
            baseline_per_s,
            with_slow_per_s: mixed.deliveries_per_s,
            ratio,
            slow_completed: stats.slow,
            deferred: mixed.deferred,
        };
        Ok((vec![before, mixed, after], fairness))
    }

    #[allow(clippy::too_many_arguments)]
    fn row(
        &self,
        name: &str,
        fanout: u32,
        start_ns: u64,
        stats: &PhaseStats,
        complete: bool,
        cpu_before: &[Duration],
        cpu_after: &[Duration],
    ) -> Run {
        let seconds = (stats.last_ns.saturating_sub(start_ns) as f64 / 1e9).max(1e-3);
        let thousands = (stats.deliveries as f64 / 1000.0).max(1e-3);
        let cpu_per_1k: BTreeMap<String, f64> = self
            .watched
            .iter()
            .zip(cpu_before.iter().zip(cpu_after))
            .map(|(w, (before, after))| {
                (
                    w.name.clone(),
                    after.saturating_sub(*before).as_secs_f64() / thousands,
                )
            })
            .collect();
        Run {
            name: name.into(),
            fanout,
            offered_rate: None,
            seconds,
            events: stats.events_complete,
            deliveries: stats.deliveries,
            events_per_s: stats.events_complete as f64 / seconds,
            deliveries_per_s: stats.deliveries as f64 / seconds,
            slowest_5s_per_s: None,
            per_second: Vec::new(),
            ratio: None,
            latency: Latency::of(&stats.latencies_ns),
            broker_latency: None,
            duplicates: stats.duplicates,
            deferred: 0,
            complete,
            cpu_per_1k,
            history: None,
            filter_errors: None,
        }
    }
}

/// The slowest `width`-second window of `per_second` while load was on,
/// skipping the first second (ramp-up); deliveries per second.
pub fn slowest_window(per_second: &[u64], load: Duration, width: usize) -> Option<f64> {
    let loaded = (load.as_secs() as usize).min(per_second.len());
    let seconds = per_second.get(1..loaded)?;
    seconds
        .windows(width)
        .map(|w| w.iter().sum::<u64>() as f64 / width as f64)
        .reduce(f64::min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_window_skips_ramp_up_and_drain() {
        let per_second = [1, 100, 100, 50, 100, 100, 100, 100, 3];
        let slowest = slowest_window(&per_second, Duration::from_secs(8), 5).unwrap();
        assert_eq!(slowest, 90.0);
    }

    #[test]
    fn a_run_shorter_than_the_window_has_no_slowest_window() {
        assert_eq!(slowest_window(&[5, 5, 5], Duration::from_secs(3), 5), None);
    }
}
