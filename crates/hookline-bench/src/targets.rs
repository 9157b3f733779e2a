//! The targets, judged from the measurements: each is reported met
//! or missed, and a miss never fails the run.

use crate::options::{PLAIN, TARGET_RATIO};
use crate::report::{Ceiling, Fairness, Run, ServiceUsage, Target};

/// The targets, each met or missed.
pub fn targets(
    ceiling: Ceiling,
    runs: &[Run],
    fairness: Option<&Fairness>,
    usage: &[ServiceUsage],
    fanout1_secs: u64,
    slow_secs: u64,
) -> Vec<Target> {
    let mut targets = Vec::new();
    if let Some(f1) = runs.iter().find(|r| r.name.starts_with("fan-out 1 ")) {
        let history_ok = f1.history.is_some_and(|h| h.caught_up_after_s.is_some());
        let sustained = f1.slowest_5s_per_s.unwrap_or(0.0);
        targets.push(Target {
            name: format!(
                "fan-out 1 deliveries/s ≥ 0.5 × R2, sustained {} s with history on",
                fanout1_secs
            ),
            measured: format!(
                "{:.0}/s = {:.2} × R2 ({:.0}); slowest 5 s {:.0}/s = {:.2} × R2; history {}",
                f1.deliveries_per_s,
                f1.deliveries_per_s / ceiling.r2,
                ceiling.r2,
                sustained,
                sustained / ceiling.r2,
                if history_ok { "kept up" } else { "fell behind" }
            ),
            met: f1.deliveries_per_s >= 0.5 * ceiling.r2 && f1.complete && history_ok,
        });
    }
    if let Some(f10) = runs.iter().find(|r| r.name.starts_with("fan-out 10")) {
        targets.push(Target {
            name: "fan-out 10 deliveries/s ≥ 0.6 × R1".into(),
            measured: format!(
                "{:.0}/s = {:.2} × R1 ({:.0})",
                f10.deliveries_per_s,
                f10.deliveries_per_s / ceiling.r1,
                ceiling.r1
            ),
            met: f10.deliveries_per_s >= 0.6 * ceiling.r1 && f10.complete,
        });
    }
    for run in runs {
        let Some(ratio) = run.ratio.as_ref().filter(|r| r.of == PLAIN) else {
            continue;
        };
        let name = run.name.split(" (").next().unwrap_or(&run.name);
        let filter_errors = run.filter_errors.unwrap_or(0);
        targets.push(Target {
            name: format!("{name}: deliveries/s ≥ {TARGET_RATIO} × {PLAIN}, every event delivered"),
            measured: format!(
                "{:.0}/s = {:.2} × {PLAIN}; {} events, {}{}",
                run.deliveries_per_s,
                ratio.value,
                run.events,
                if run.complete {
                    "all delivered"
                } else {
                    "**not all delivered**"
                },
                if filter_errors > 0 {
                    format!("; {filter_errors} filter errors")
                } else {
                    String::new()
                }
            ),
            met: ratio.value >= TARGET_RATIO && run.complete && filter_errors == 0,
        });
    }
    if let Some(half) = runs.iter().find(|r| r.name.starts_with("open loop 50 %")) {
        targets.push(Target {
            name: "at 50 % of max: p50 ≤ 5 ms and p99 ≤ 25 ms".into(),
            measured: format!(
                "p50 {:.1} ms, p99 {:.1} ms{}",
                half.latency.p50_ms,
                half.latency.p99_ms,
                half.broker_latency.map_or(String::new(), |floor| format!(
                    " (the broker alone at that rate: p50 {:.1} ms, p99 {:.1} ms)",
                    floor.p50_ms, floor.p99_ms
                ))
            ),
            met: half.latency.p50_ms <= 5.0 && half.latency.p99_ms <= 25.0 && half.complete,
        });
    }
    for service in usage
        .iter()
        .filter(|u| ["api", "fanout", "deliverer"].contains(&u.name.as_str()))
    {
        let flat = service.flat();
        targets.push(Target {
            name: format!("{}: RSS < 100 MiB and flat", service.name),
            measured: format!(
                "peak {:.1} MiB; {} → {} MiB over the sustained run",
                service.peak_rss_mib,
                service
                    .rss_sustained_start_mib
                    .map_or("?".into(), |v| format!("{v:.1}")),
                service
                    .rss_sustained_end_mib
                    .map_or("?".into(), |v| format!("{v:.1}")),
            ),
            met: service.peak_rss_mib < 100.0 && flat == Some(true),
        });
    }
    if let Some(f) = fairness {
        targets.push(Target {
            name: format!(
                "healthy throughput with a {} s endpoint ≥ 0.8 × without",
                slow_secs
            ),
            measured: format!(
                "{:.0}/s vs {:.0}/s = {:.2}",
                f.with_slow_per_s, f.baseline_per_s, f.ratio
            ),
            met: f.ratio >= 0.8,
        });
    }
    targets
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::report::{History, Latency, Ratio};

    fn run(name: &str, deliveries_per_s: f64) -> Run {
        Run {
            name: name.into(),
            fanout: 1,
            offered_rate: None,
            seconds: 60.0,
            events: 1,
            deliveries: 1,
            events_per_s: deliveries_per_s,
            deliveries_per_s,
            slowest_5s_per_s: Some(deliveries_per_s),
            per_second: Vec::new(),
            ratio: None,
            latency: Latency::default(),
            broker_latency: None,
            duplicates: 0,
            deferred: 0,
            complete: true,
            cpu_per_1k: BTreeMap::new(),
            history: Some(History {
                attempts: 1,
                written: 1,
                caught_up_after_s: Some(0.1),
            }),
            filter_errors: None,
        }
    }

    fn option_run(name: &str, ratio: f64) -> Run {
        let mut run = run(name, 1000.0 * ratio);
        run.ratio = Some(Ratio {
            of: PLAIN.into(),
            value: ratio,
        });
        run.filter_errors = Some(0);
        run
    }

    const CEILING: Ceiling = Ceiling {
        r1: 2000.0,
        r2: 1000.0,
        r1_broker_cpu_per_1k: None,
        r2_broker_cpu_per_1k: None,
    };

    #[test]
    fn fan_out_1_at_half_of_r2_with_history_kept_up_is_met() {
        let runs = [run("fan-out 1 (60 s, history on)", 500.0)];
        let targets = targets(CEILING, &runs, None, &[], 60, 5);
        assert!(targets[0].met, "{targets:?}");
    }

    #[test]
    fn fan_out_1_whose_history_fell_behind_is_missed() {
        let mut f1 = run("fan-out 1 (60 s, history on)", 900.0);
        f1.history = f1.history.map(|h| History {
            caught_up_after_s: None,
            ..h
        });
        let targets = targets(CEILING, &[f1], None, &[], 60, 5);
        assert!(!targets[0].met);
    }

    #[test]
    fn latency_at_half_load_needs_both_percentiles() {
        let mut half = run("open loop 50 % (250/s)", 250.0);
        half.latency = Latency {
            p50_ms: 4.0,
            p90_ms: 10.0,
            p99_ms: 30.0,
            max_ms: 40.0,
        };
        let targets = targets(CEILING, &[half], None, &[], 60, 5);
        assert!(!targets[0].met);
    }

    #[test]
    fn an_option_run_at_nine_tenths_of_the_plain_run_is_met_and_below_is_missed() {
        let runs = [
            option_run("template, 10 fields (20 s)", 0.9),
            option_run("form body (20 s)", 0.85),
        ];
        let targets = targets(CEILING, &runs, None, &[], 60, 5);
        assert_eq!(targets.len(), 2, "{targets:?}");
        assert!(targets[0].met && targets[0].name.starts_with("template, 10 fields:"));
        assert!(!targets[1].met);
    }

    #[test]
    fn a_filter_run_that_lost_events_is_missed_however_fast() {
        let mut lost = option_run("filter, 3 clauses (20 s)", 1.0);
        lost.complete = false;
        let mut erred = option_run("filter, 3 clauses (20 s)", 1.0);
        erred.filter_errors = Some(3);
        let targets = targets(CEILING, &[lost, erred], None, &[], 60, 5);
        assert!(targets.iter().all(|t| !t.met), "{targets:?}");
    }
}
