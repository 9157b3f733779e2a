//! The endpoint-policy runs: what `ordering: "fifo"` costs. One ordered
//! subscription has one delivery in flight, so its rate is one round trip
//! per event; 20 ordered subscriptions side by side are judged against 20
//! unordered ones of the same invocation (the target: ≥ 0.5 ×).

use std::time::Duration;

use serde_json::{json, Value};

use crate::pipeline::{events, Pipeline};
use crate::report::{Ratio, Run, Target};

/// Subscriptions of each fan-out-20 run.
pub const FANOUT: u32 = 20;

/// The tenants and event types of the runs.
pub const ORDERED_ONE: (&str, &str, &str) = ("bench-fifo1", "bench.fifo1", "fifo1-");
/// Twenty unordered subscriptions: the baseline.
pub const UNORDERED_20: (&str, &str, &str) = ("bench-f20", "bench.f20", "f20-");
/// Twenty ordered subscriptions.
pub const ORDERED_20: (&str, &str, &str) = ("bench-fifo20", "bench.fifo20", "fifo20-");

/// What the ordered fan-out 20 run's ratio is taken of.
pub const UNORDERED: &str = "unordered fan-out 20";

/// The share of the unordered run.
pub const TARGET_RATIO: f64 = 0.5;

/// The options of an ordered subscription.
pub fn ordered() -> Value {
    json!({ "ordering": "fifo" })
}

/// The subscriptions the runs need: (tenant, event type, count, options).
pub fn subscriptions() -> [(&'static str, &'static str, u32, Value); 3] {
    [
        (ORDERED_ONE.0, ORDERED_ONE.1, 1, ordered()),
        (UNORDERED_20.0, UNORDERED_20.1, FANOUT, json!({})),
        (ORDERED_20.0, ORDERED_20.1, FANOUT, ordered()),
    ]
}

/// Runs the three closed loops, each for `duration`; the ordered fan-out
/// 20 run carries its ratio to the unordered one.
pub async fn run(pipeline: &Pipeline<'_>, duration: Duration) -> anyhow::Result<Vec<Run>> {
    let secs = duration.as_secs();
    let mut runs = Vec::new();
    for (label, (tenant, event_type, prefix), fanout) in [
        ("ordered, 1 subscription", ORDERED_ONE, 1),
        (UNORDERED, UNORDERED_20, FANOUT),
        ("ordered fan-out 20", ORDERED_20, FANOUT),
    ] {
        eprintln!("bench: {label}, closed loop ({secs} s)…");
        let (run, _) = pipeline
            .closed(
                &format!("{label} ({secs} s)"),
                &events(tenant, event_type, prefix),
                fanout,
                duration,
                false,
            )
            .await?;
        eprintln!("bench: {label}: {:.0} deliveries/s", run.deliveries_per_s);
        runs.push(run);
    }
    let unordered = runs[1].deliveries_per_s;
    if unordered > 0.0 {
        runs[2].ratio = Some(Ratio {
            of: UNORDERED.into(),
            value: runs[2].deliveries_per_s / unordered,
        });
    }
    Ok(runs)
}

/// The FIFO target, from the runs.
pub fn target(runs: &[Run]) -> Option<Target> {
    let one = runs
        .iter()
        .find(|r| r.name.starts_with("ordered, 1 subscription"))?;
    let twenty = runs
        .iter()
        .find(|r| r.name.starts_with("ordered fan-out 20"))?;
    let ratio = twenty.ratio.as_ref()?.value;
    Some(Target {
        name: format!(
            "ordered fan-out 20 deliveries/s ≥ {TARGET_RATIO} × {UNORDERED}, every event delivered"
        ),
        measured: format!(
            "one ordered subscription {:.0}/s; 20 ordered {:.0}/s = {ratio:.2} × {UNORDERED}{}",
            one.deliveries_per_s,
            twenty.deliveries_per_s,
            if one.complete && twenty.complete {
                ""
            } else {
                "; **not all delivered**"
            }
        ),
        met: ratio >= TARGET_RATIO && one.complete && twenty.complete,
    })
}
