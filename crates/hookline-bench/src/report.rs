//! The report: one structure, written as `report.json`, rendered as the
//! Markdown tables printed at the end and saved as `report.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

/// Everything one `make bench` measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// CPUs the machine offers.
    pub cores: usize,
    /// Cores the broker used before the bench put load on it (management,
    /// other users of the same broker).
    pub broker_idle_cores: Option<f64>,
    /// How the run was configured.
    pub settings: BTreeMap<String, String>,
    /// The raw broker ceiling.
    pub ceiling: Ceiling,
    /// One row per pipeline run.
    pub runs: Vec<Run>,
    /// The slow-endpoint comparison.
    pub fairness: Option<Fairness>,
    /// Footprint of each process.
    pub services: Vec<ServiceUsage>,
    /// The targets, met or missed.
    pub targets: Vec<Target>,
    /// Anything that went wrong or needs a caveat.
    pub notes: Vec<String>,
}

/// Raw RabbitMQ rates, messages per second.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ceiling {
    /// publish → A → ack.
    pub r1: f64,
    /// publish → A → republish (confirmed) → B → ack.
    pub r2: f64,
    /// Broker CPU seconds per 1,000 messages through R1.
    pub r1_broker_cpu_per_1k: Option<f64>,
    /// Broker CPU seconds per 1,000 messages through R2.
    pub r2_broker_cpu_per_1k: Option<f64>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of `sorted_ns` (ascending nanoseconds).
    pub fn of(sorted_ns: &[u64]) -> Self {
        let at = |q: f64| -> f64 {
            if sorted_ns.is_empty() {
                return 0.0;
            }
            let rank = ((q * sorted_ns.len() as f64).ceil() as usize).clamp(1, sorted_ns.len());
            sorted_ns[rank - 1] as f64 / 1e6
        };
        Self {
            p50_ms: at(0.50),
            p90_ms: at(0.90),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

/// One pipeline run.
#[derive(Debug, Clone, Serialize)]
pub struct Run {
    /// What it was (`fan-out 1`, `open loop 50 %`, …).
    pub name: String,
    /// Fast deliveries per event.
    pub fanout: u32,
    /// Open loop: the offered rate, events per second.
    pub offered_rate: Option<f64>,
    /// Closed loop: from the first publish to the last arrival; open loop:
    /// the length of the schedule.
    pub seconds: f64,
    /// Events fully delivered.
    pub events: u64,
    /// Distinct fast deliveries.
    pub deliveries: u64,
    /// Events per second over `seconds`.
    pub events_per_s: f64,
    /// Deliveries per second over `seconds`.
    pub deliveries_per_s: f64,
    /// Slowest 5-second window while load was on, deliveries per second.
    pub slowest_5s_per_s: Option<f64>,
    /// Deliveries in each second of the run (JSON only): where a dip was.
    pub per_second: Vec<u64>,
    /// Deliveries per second as a share of a raw ceiling, or (option runs)
    /// of the plain fan-out-1 run.
    pub ratio: Option<Ratio>,
    /// Scheduled send → arrival, per delivery.
    pub latency: Latency,
    /// Open loop: the broker alone (R2 hop pattern, no Hookline code, no
    /// HTTP) at the same rate, timed the same way: the floor under
    /// `latency` on this machine.
    pub broker_latency: Option<Latency>,
    /// Deliveries received twice.
    pub duplicates: u64,
    /// Tasks the deliverer pushed onto the first retry rung because their
    /// subscription was at its in-flight cap (each costs a delay).
    pub deferred: u64,
    /// Every published event arrived before the drain timeout.
    pub complete: bool,
    /// CPU seconds per 1,000 deliveries, per process.
    pub cpu_per_1k: BTreeMap<String, f64>,
    /// Attempt records the api stored for this run, and whether that
    /// caught up with the deliveries within the drain time.
    pub history: Option<History>,
    /// Option runs: filter evaluations fanout counted as errors during the
    /// run (each an event taken as not matching).
    pub filter_errors: Option<u64>,
}

/// A rate relative to a raw ceiling or to another run.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// `R1`, `R2` or `plain fan-out 1`.
    pub of: String,
    /// The rate divided by that one.
    pub value: f64,
}

/// Delivery history kept up or not.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct History {
    /// Attempts the deliverer made in the run.
    pub attempts: u64,
    /// Attempt records the api wrote in the run.
    pub written: u64,
    /// Seconds after the last delivery until every record was written.
    pub caught_up_after_s: Option<f64>,
}

/// Healthy throughput without and with one slow endpoint.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Fairness {
    /// Healthy deliveries per second, no slow endpoint (the runs before
    /// and after together).
    pub baseline_per_s: f64,
    /// Healthy deliveries per second, one endpoint answering slowly.
    pub with_slow_per_s: f64,
    /// `with_slow / baseline`.
    pub ratio: f64,
    /// Slow deliveries completed during the run.
    pub slow_completed: u64,
    /// Tasks the deliverer deferred (per-subscription cap) during the run.
    pub deferred: u64,
}

/// One process's footprint.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceUsage {
    /// `api`, `fanout`, `deliverer`, `bench`, `broker`.
    pub name: String,
    /// OS process id.
    pub pid: u32,
    /// VmHWM at the end of the run.
    pub peak_rss_mib: f64,
    /// RSS a quarter into the sustained fan-out-1 run.
    pub rss_sustained_start_mib: Option<f64>,
    /// RSS at the end of the sustained fan-out-1 run.
    pub rss_sustained_end_mib: Option<f64>,
    /// CPU seconds over the whole run.
    pub cpu_s: f64,
}

impl ServiceUsage {
    /// Flat: the RSS grew by at most 10 % (and 4 MiB) over the last three
    /// quarters of the sustained run.
    pub fn flat(&self) -> Option<bool> {
        let (start, end) = (self.rss_sustained_start_mib?, self.rss_sustained_end_mib?);
        Some(end <= start * 1.10 + 4.0)
    }
}

/// A target of the issue.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is required.
    pub name: String,
    /// What was measured.
    pub measured: String,
    /// Met or missed.
    pub met: bool,
}

fn opt(value: Option<f64>, digits: usize) -> String {
    value.map_or("–".into(), |v| format!("{v:.digits$}"))
}

impl Report {
    /// The Markdown tables.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# Hookline benchmark\n\n{} · {} cores · classic durable queues · ~1 KiB events · broker CPU before any load: {} cores · load average {} → {}\n",
            self.started_at,
            self.cores,
            opt(self.broker_idle_cores, 2),
            self.settings.get("load average at start").map_or("?", String::as_str),
            self.settings.get("load average at end").map_or("?", String::as_str),
        );
        let _ = writeln!(
            out,
            "## Raw RabbitMQ ceiling (persistent, confirms, no HTTP)\n"
        );
        let _ = writeln!(
            out,
            "| pattern | msg/s | broker CPU s / 1k msgs |\n| --- | ---: | ---: |"
        );
        let _ = writeln!(
            out,
            "| R1: publish → A → ack | {:.0} | {} |",
            self.ceiling.r1,
            opt(self.ceiling.r1_broker_cpu_per_1k, 3)
        );
        let _ = writeln!(
            out,
            "| R2: publish → A → republish+confirm → B → ack | {:.0} | {} |\n",
            self.ceiling.r2,
            opt(self.ceiling.r2_broker_cpu_per_1k, 3)
        );
        let _ = writeln!(out, "## Pipeline (api + fanout + deliverer, HTTP sink)\n");
        let _ = writeln!(
            out,
            "| run | s | events | deliveries | events/s | deliveries/s | slowest 5 s | ratio | p50 ms | p90 ms | p99 ms | max ms | deferred | complete |"
        );
        let _ = writeln!(
            out,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"
        );
        for run in &self.runs {
            let ratio = run
                .ratio
                .as_ref()
                .map_or("–".into(), |r| format!("{:.2} × {}", r.value, r.of));
            let _ = writeln!(
                out,
                "| {} | {:.1} | {} | {} | {:.0} | {:.0} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |",
                run.name,
                run.seconds,
                run.events,
                run.deliveries,
                run.events_per_s,
                run.deliveries_per_s,
                opt(run.slowest_5s_per_s, 0),
                ratio,
                run.latency.p50_ms,
                run.latency.p90_ms,
                run.latency.p99_ms,
                run.latency.max_ms,
                run.deferred,
                if run.complete { "yes" } else { "**no**" },
            );
            if let Some(floor) = &run.broker_latency {
                let _ = writeln!(
                    out,
                    "| ↳ broker alone, same rate (R2 hops) | | | | | | | | {:.1} | {:.1} | {:.1} | {:.1} | | |",
                    floor.p50_ms, floor.p90_ms, floor.p99_ms, floor.max_ms,
                );
            }
        }
        let names: Vec<&str> = self.services.iter().map(|s| s.name.as_str()).collect();
        let _ = writeln!(out, "\n## CPU seconds per 1,000 deliveries\n");
        let _ = writeln!(out, "| run | {} |", names.join(" | "));
        let _ = writeln!(out, "| --- |{}", " ---: |".repeat(names.len()));
        for run in &self.runs {
            let cells: Vec<String> = names
                .iter()
                .map(|n| opt(run.cpu_per_1k.get(*n).copied(), 3))
                .collect();
            let _ = writeln!(out, "| {} | {} |", run.name, cells.join(" | "));
        }
        let _ = writeln!(out, "\n## Processes\n");
        let _ = writeln!(
            out,
            "| process | pid | peak RSS MiB | RSS at ¼ of fan-out 1 | RSS at end of fan-out 1 | flat | CPU s |\n| --- | ---: | ---: | ---: | ---: | --- | ---: |"
        );
        for s in &self.services {
            let flat = match s.flat() {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {} | {} | {} | {:.1} |",
                s.name,
                s.pid,
                s.peak_rss_mib,
                opt(s.rss_sustained_start_mib, 1),
                opt(s.rss_sustained_end_mib, 1),
                flat,
                s.cpu_s
            );
        }
        if let Some(f) = &self.fairness {
            let _ = writeln!(out, "\n## Fairness (one endpoint answering slowly)\n");
            let _ = writeln!(
                out,
                "healthy deliveries/s: {:.0} without, {:.0} with the slow endpoint → ratio {:.2}; slow deliveries completed: {}; tasks deferred by the per-subscription cap: {}",
                f.baseline_per_s, f.with_slow_per_s, f.ratio, f.slow_completed, f.deferred
            );
        }
        for run in &self.runs {
            if let Some(h) = &run.history {
                let _ = writeln!(
                    out,
                    "\nhistory during {}: {} attempt records written for {} attempts; caught up {}",
                    run.name,
                    h.written,
                    h.attempts,
                    h.caught_up_after_s
                        .map_or("**not within the drain time**".into(), |s| format!(
                            "{s:.1} s after the last delivery"
                        ))
                );
            }
        }
        let _ = writeln!(
            out,
            "\n## Targets\n\n| target | measured | met |\n| --- | --- | --- |"
        );
        for t in &self.targets {
            let met = if t.met { "met" } else { "**missed**" };
            let _ = writeln!(out, "| {} | {} | {met} |", t.name, t.measured);
        }
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n## Notes\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        let _ = writeln!(out, "\n## Settings\n");
        for (key, value) in &self.settings {
            let _ = writeln!(out, "- `{key}` = {value}");
        }
        out
    }

    /// Writes `report.json` and `report.md` into `dir`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(self)?)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let ns: Vec<u64> = (1..=100).map(|ms| ms * 1_000_000).collect();
        let latency = Latency::of(&ns);
        assert_eq!(latency.p50_ms, 50.0);
        assert_eq!(latency.p90_ms, 90.0);
        assert_eq!(latency.p99_ms, 99.0);
        assert_eq!(latency.max_ms, 100.0);
    }

    #[test]
    fn no_samples_give_zero_latency() {
        assert_eq!(Latency::of(&[]).max_ms, 0.0);
    }

    #[test]
    fn a_footprint_that_grows_a_little_is_flat() {
        let usage = |start, end| ServiceUsage {
            name: "api".into(),
            pid: 1,
            peak_rss_mib: 0.0,
            rss_sustained_start_mib: Some(start),
            rss_sustained_end_mib: Some(end),
            cpu_s: 0.0,
        };
        assert_eq!(usage(40.0, 45.0).flat(), Some(true));
        assert_eq!(usage(40.0, 60.0).flat(), Some(false));
    }
}
