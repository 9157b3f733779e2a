//! `hookline-bench` (`make bench`): measures the raw ceiling of the local
//! RabbitMQ, then runs the real pipeline (`hookline api`, `fanout` and
//! `deliverer` as separate processes, each run with a fresh vhost and
//! database) against an in-process HTTP sink, and reports throughput,
//! latency, fairness, the cost of delivery options and each process's
//! footprint against the targets. A missed target is reported,
//! never a failure; only a broken setup makes the run fail. Everything it
//! started or created is removed at the end, on error and on Ctrl-C too.

mod inbound;
mod load;
mod options;
mod pipeline;
mod policies;
mod procstat;
mod raw;
mod report;
mod services;
mod sink;
mod targets;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use hookline_config::Settings;

use crate::load::Generator;
use crate::pipeline::{events, Pipeline, Watched};
use crate::procstat::RssSeries;
use crate::raw::RawConfig;
use crate::report::{Ceiling, Ratio, Report, ServiceUsage};
use crate::services::{Cleanup, Launch, Service};
use crate::sink::Sink;

/// Durations and knobs; the defaults fit a run well under ten minutes.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "hookline-bench",
    version,
    about = "Benchmark the Hookline pipeline"
)]
struct Args {
    /// Seconds of each raw ceiling measurement (R1, R2).
    #[arg(long, default_value_t = 10)]
    raw_secs: u64,
    /// Seconds of the sustained fan-out-1 run.
    #[arg(long, default_value_t = 60)]
    fanout1_secs: u64,
    /// Seconds of the fan-out-10 run.
    #[arg(long, default_value_t = 20)]
    fanout10_secs: u64,
    /// Seconds of each delivery-option run (template, form, filter), each
    /// compared with the fan-out-1 run.
    #[arg(long, default_value_t = 20)]
    options_secs: u64,
    /// Seconds of each open-loop latency run (and of the broker alone at
    /// the same rate).
    #[arg(long, default_value_t = 15)]
    latency_secs: u64,
    /// Seconds of the fairness run with the slow endpoint; the runs without
    /// it, before and after, take half as long each.
    #[arg(long, default_value_t = 20)]
    fairness_secs: u64,
    /// Seconds of each inbound run: a verified source URL, then
    /// `POST /v1/events`, on one ingest.
    #[arg(long, default_value_t = 10)]
    inbound_secs: u64,
    /// How long the slow endpoint takes to answer, in seconds.
    #[arg(long, default_value_t = 5)]
    slow_secs: u64,
    /// Closed loop: events in flight end to end (published, not yet at the
    /// sink); about fanout's prefetch, so the pipeline is full but no long
    /// backlog builds up in front of it.
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Raw ceiling: messages in flight end to end (generous, so the broker
    /// and not the window is the limit).
    #[arg(long, default_value_t = 1024)]
    raw_window: usize,
    /// Longest wait for a run's last deliveries, in seconds.
    #[arg(long, default_value_t = 60)]
    drain_secs: u64,
    /// Open-loop rates, as percentages of the fan-out-1 maximum.
    #[arg(long, value_delimiter = ',', default_value = "50,80")]
    latency_percent: Vec<u32>,
    /// The `hookline` binary (default: next to this one).
    #[arg(long)]
    hookline: Option<PathBuf>,
    /// Where the report and the services' logs go.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Tokio worker threads of each service (`TOKIO_WORKER_THREADS`; 0 is
    /// tokio's default of one per core). One, as when each service has a
    /// core of its own: on this machine the three services share two cores
    /// with the broker, and fewer threads means fewer cross-thread wake-ups
    /// in the latency tail.
    #[arg(long, default_value_t = 1)]
    service_threads: usize,
    /// `RUST_LOG` of the services (the deliverer logs every attempt at info).
    #[arg(long, default_value = "warn")]
    service_log: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let http = reqwest::Client::new();
        let cleanup = Cleanup::default();
        let outcome = tokio::select! {
            outcome = run(&args, &http, &cleanup) => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        };
        // The run's future is gone by now, and with it every service process
        // (kill on drop); the vhosts and databases go here.
        cleanup.run(&http).await;
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("bench: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}

/// The machine's 1, 5 and 15-minute load averages: how busy it was besides us.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// The raw runs consume the way the services do by default.
fn raw_config(args: &Args) -> RawConfig {
    let defaults = Settings::default();
    RawConfig {
        duration: secs(args.raw_secs),
        window: args.raw_window,
        confirm_window: defaults.amqp.confirm_window,
        hop_prefetch: defaults.fanout.prefetch,
        last_prefetch: u16::try_from(defaults.delivery.concurrency).unwrap_or(u16::MAX),
        message_bytes: load::EVENT_BYTES,
    }
}

/// Fanout's count of filters that failed to evaluate.
const FILTER_ERRORS: &str = "hookline_fanout_filter_errors_total";

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

async fn run(args: &Args, http: &reqwest::Client, cleanup: &Cleanup) -> anyhow::Result<()> {
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let load_at_start = loadavg();
    std::fs::create_dir_all(&args.out)?;
    let mut notes = Vec::new();

    // 1. The raw ceiling, in a vhost of its own.
    let raw_url = cleanup.vhost(http, &services::unique_name()).await?;
    let raw_config = raw_config(args);
    let ticks = procstat::clock_ticks();
    let broker = services::broker_pid(http).await;
    let broker_cpu = || {
        broker
            .and_then(|pid| procstat::sample(pid, ticks))
            .map(|s| s.cpu)
    };
    // How busy the shared broker is without us: other users' load shows up
    // in its CPU column too.
    let idle_before = broker_cpu();
    tokio::time::sleep(secs(3)).await;
    let broker_idle_cores = idle_before
        .zip(broker_cpu())
        .map(|(before, after)| after.saturating_sub(before).as_secs_f64() / 3.0);
    let ceiling = raw::ceiling(&raw_url, &raw_config, args.raw_secs, broker_cpu).await?;

    // 2. The pipeline: vhost, database, sink, services.
    let name = services::unique_name();
    let amqp_url = cleanup.vhost(http, &name).await?;
    let database_url = cleanup.database(&name).await?;
    let epoch = Instant::now();
    let sink = Sink::start(epoch, secs(args.slow_secs)).await?;
    let binary = args
        .hookline
        .clone()
        .unwrap_or_else(services::default_binary);
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: cargo build --release -p hookline",
        binary.display()
    );
    let launch = Launch {
        binary: &binary,
        amqp_url: &amqp_url,
        database_url: &database_url,
        log_dir: &args.out,
        rust_log: &args.service_log,
        worker_threads: args.service_threads,
    };
    let mut running = Vec::new();
    // The api first: it migrates the database fanout reads.
    for name in ["api", "fanout", "deliverer"] {
        let mut service = Service::start(name, &launch)?;
        service.wait_ready(http, secs(60)).await?;
        running.push(service);
    }
    // Ingest reads the sources through the api; no per-source limit, so
    // the inbound run measures the path, not the bucket.
    let api_base = running[0].base.clone();
    let mut ingest = Service::start_with(
        "ingest",
        &launch,
        &[
            ("HOOKLINE__INGEST__API_URL", &api_base),
            ("HOOKLINE__INGEST__SOURCE_RATE_LIMIT", "0"),
        ],
    )?;
    ingest.wait_ready(http, secs(60)).await?;
    let ingest_base = ingest.base.clone();
    running.push(ingest);
    let mut outcome = drive(args, http, &sink, &running, ceiling, &amqp_url, &mut notes).await;
    let mut inbound_run = None;
    if outcome.is_ok() {
        eprintln!(
            "bench: inbound, verified source vs POST /v1/events ({} s each)…",
            args.inbound_secs
        );
        match inbound::compare(
            http,
            &api_base,
            &ingest_base,
            &sink.fast_url(0),
            args.inbound_secs,
        )
        .await
        {
            Ok(measured) => inbound_run = Some(measured),
            Err(error) => outcome = Err(error),
        }
    }
    for service in running.iter_mut() {
        if !service.is_running() {
            notes.push(format!(
                "{} exited during the run; see {}/{}.log",
                service.name,
                args.out.display(),
                service.name
            ));
        }
    }
    for service in running.iter_mut().rev() {
        service.stop().await;
    }
    let (runs, fairness, usage) = outcome?;

    // 3. Targets and the report.
    let mut targets = targets::targets(
        ceiling,
        &runs,
        fairness.as_ref(),
        &usage,
        args.fanout1_secs,
        args.slow_secs,
    );
    if let Some(measured) = &inbound_run {
        targets.push(measured.target());
    }
    targets.extend(policies::target(&runs));
    let mut settings = BTreeMap::new();
    for (key, value) in [
        ("raw_secs", args.raw_secs.to_string()),
        ("fanout1_secs", args.fanout1_secs.to_string()),
        ("fanout10_secs", args.fanout10_secs.to_string()),
        ("options_secs", args.options_secs.to_string()),
        ("inbound_secs", args.inbound_secs.to_string()),
        ("latency_secs", args.latency_secs.to_string()),
        ("fairness_secs", args.fairness_secs.to_string()),
        ("slow_secs", args.slow_secs.to_string()),
        ("window (events in flight)", args.window.to_string()),
        (
            "raw_window (messages in flight)",
            args.raw_window.to_string(),
        ),
        ("service RUST_LOG", args.service_log.clone()),
        (
            "service TOKIO_WORKER_THREADS",
            args.service_threads.to_string(),
        ),
        ("amqp.queue_type", "classic".into()),
        ("load average at start", load_at_start),
        ("load average at end", loadavg()),
        (
            "HOOKLINE__* overrides",
            std::env::vars()
                .filter(|(k, _)| k.starts_with("HOOKLINE__"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    ] {
        settings.insert(key.to_string(), value);
    }
    let report = Report {
        started_at,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        broker_idle_cores,
        settings,
        ceiling,
        runs,
        fairness,
        services: usage,
        targets,
        notes,
    };
    report.write(&args.out)?;
    println!("{}", report.markdown());
    eprintln!(
        "bench: wrote {0}/report.json and {0}/report.md",
        args.out.display()
    );
    Ok(())
}

/// What the pipeline part produced.
type Driven = (
    Vec<report::Run>,
    Option<report::Fairness>,
    Vec<ServiceUsage>,
);

/// Subscriptions, warm-up, every run, and the footprint at the end.
async fn drive(
    args: &Args,
    http: &reqwest::Client,
    sink: &Sink,
    running: &[Service],
    ceiling: Ceiling,
    amqp_url: &str,
    notes: &mut Vec<String>,
) -> anyhow::Result<Driven> {
    let ticks = procstat::clock_ticks();
    let mut watched: Vec<Watched> = running
        .iter()
        .map(|s| Watched {
            name: s.name.into(),
            pid: s.pid,
        })
        .collect();
    watched.push(Watched {
        name: "bench".into(),
        pid: std::process::id(),
    });
    match services::broker_pid(http).await {
        Some(pid) => watched.push(Watched {
            name: "broker".into(),
            pid,
        }),
        None => notes.push("the broker's pid is unknown: no broker CPU column".into()),
    }
    let rss = RssSeries::start(
        watched.iter().map(|w| w.pid).collect(),
        Duration::from_secs(1),
        ticks,
    );
    let cpu_at_start: Vec<Duration> = watched
        .iter()
        .map(|w| procstat::sample(w.pid, ticks).map_or(Duration::ZERO, |s| s.cpu))
        .collect();
    let generator = Generator::connect(amqp_url, Settings::default().amqp.confirm_window).await?;
    let base = |name: &str| {
        running
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.base.clone())
            .unwrap_or_default()
    };
    let pipeline = Pipeline {
        sink,
        generator: &generator,
        http,
        api: base("api"),
        fanout: base("fanout"),
        deliverer: base("deliverer"),
        watched: watched.clone(),
        ticks,
        window: args.window,
        drain: secs(args.drain_secs),
    };
    pipeline.subscribe_all().await?;

    eprintln!("bench: warm-up (3 s)…");
    let (warm, _) = pipeline
        .closed(
            "warm-up",
            &events("bench-f1", "bench.f1", "warm-"),
            1,
            secs(3),
            false,
        )
        .await?;
    anyhow::ensure!(
        warm.deliveries > 0,
        "the pipeline delivered nothing during the warm-up; see {}/*.log",
        args.out.display()
    );

    let mut runs = Vec::new();
    eprintln!("bench: fan-out 1, closed loop ({} s)…", args.fanout1_secs);
    let sustained_from = Instant::now() + secs(args.fanout1_secs) / 4;
    let (mut f1, _) = pipeline
        .closed(
            &format!("fan-out 1 ({} s, history on)", args.fanout1_secs),
            &events("bench-f1", "bench.f1", "f1-"),
            1,
            secs(args.fanout1_secs),
            true,
        )
        .await?;
    let sustained_to = Instant::now();
    f1.ratio = Some(Ratio {
        of: "R2".into(),
        value: f1.deliveries_per_s / ceiling.r2,
    });
    let max_rate = f1.events_per_s;
    let plain_per_s = f1.deliveries_per_s;
    eprintln!("bench: fan-out 1: {plain_per_s:.0} deliveries/s");
    runs.push(f1);

    // Right after the plain run, so the machine is as alike as it gets.
    for option in &options::RUNS {
        eprintln!(
            "bench: fan-out 1, {}, closed loop ({} s)…",
            option.name, args.options_secs
        );
        let errors_before = pipeline.metric(&pipeline.fanout, FILTER_ERRORS).await;
        let (mut run, _) = pipeline
            .closed(
                &format!("{} ({} s)", option.name, args.options_secs),
                &events(option.tenant, option.event_type, option.prefix),
                1,
                secs(args.options_secs),
                false,
            )
            .await?;
        let errors = pipeline.metric(&pipeline.fanout, FILTER_ERRORS).await - errors_before;
        run.filter_errors = Some(errors.max(0.0) as u64);
        let ratio = run.deliveries_per_s / plain_per_s;
        run.ratio = Some(Ratio {
            of: options::PLAIN.into(),
            value: ratio,
        });
        eprintln!(
            "bench: {}: {:.0} deliveries/s = {ratio:.2} × {}{}",
            option.name,
            run.deliveries_per_s,
            options::PLAIN,
            if run.complete {
                ""
            } else {
                "; NOT every event arrived"
            }
        );
        runs.push(run);
    }

    eprintln!("bench: fan-out 10, closed loop ({} s)…", args.fanout10_secs);
    let (mut f10, _) = pipeline
        .closed(
            &format!("fan-out 10 ({} s)", args.fanout10_secs),
            &events("bench-f10", "bench.f10", "f10-"),
            10,
            secs(args.fanout10_secs),
            false,
        )
        .await?;
    f10.ratio = Some(Ratio {
        of: "R1".into(),
        value: f10.deliveries_per_s / ceiling.r1,
    });
    eprintln!(
        "bench: fan-out 10: {:.0} deliveries/s",
        f10.deliveries_per_s
    );
    runs.push(f10);

    runs.extend(policies::run(&pipeline, secs(args.options_secs)).await?);

    for percent in &args.latency_percent {
        let rate = (max_rate * f64::from(*percent) / 100.0).max(1.0);
        eprintln!(
            "bench: open loop at {percent} % = {rate:.0} events/s ({} s)…",
            args.latency_secs
        );
        let (mut run, behind) = pipeline
            .open(
                &format!("open loop {percent} % ({rate:.0}/s)"),
                &events("bench-f1", "bench.f1", &format!("lat{percent}-")),
                rate,
                secs(args.latency_secs),
            )
            .await?;
        eprintln!("bench: the broker alone at {rate:.0} msg/s, open loop…");
        run.broker_latency =
            Some(raw::latency(amqp_url, &raw_config(args), rate, secs(args.latency_secs)).await?);
        if behind > Duration::from_millis(5) {
            notes.push(format!(
                "open loop {percent} %: the generator started a publish up to {:.1} ms late (counted in the latency)",
                behind.as_secs_f64() * 1e3
            ));
        }
        runs.push(run);
    }

    eprintln!(
        "bench: fairness, {} s with a {} s endpoint between two {} s runs without…",
        args.fairness_secs,
        args.slow_secs,
        args.fairness_secs / 2
    );
    let (fair_runs, fairness) = pipeline.fairness(secs(args.fairness_secs)).await?;
    runs.extend(fair_runs);
    for run in &runs {
        if let Some(errors @ 1..) = run.filter_errors {
            notes.push(format!(
                "{}: fanout counted {errors} filter evaluation errors (those events were not delivered)",
                run.name
            ));
        }
        if !run.complete {
            notes.push(format!(
                "{}: not every event arrived within {} s of the end",
                run.name, args.drain_secs
            ));
        }
        if run.duplicates > 0 {
            notes.push(format!(
                "{}: {} duplicate deliveries",
                run.name, run.duplicates
            ));
        }
    }
    if generator.failed() > 0 {
        notes.push(format!(
            "{} publishes of the load generator were not confirmed",
            generator.failed()
        ));
    }
    generator.close().await;

    let usage = watched
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let now = procstat::sample(w.pid, ticks).unwrap_or_default();
            let mib = |kib: u64| kib as f64 / 1024.0;
            ServiceUsage {
                name: w.name.clone(),
                pid: w.pid,
                peak_rss_mib: mib(now.hwm_kib),
                rss_sustained_start_mib: rss.rss_at(i, sustained_from).map(mib),
                rss_sustained_end_mib: rss.rss_at(i, sustained_to).map(mib),
                cpu_s: now.cpu.saturating_sub(cpu_at_start[i]).as_secs_f64(),
            }
        })
        .collect();
    Ok((runs, Some(fairness), usage))
}
