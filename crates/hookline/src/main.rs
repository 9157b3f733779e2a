//! The `hookline` binary: runs one service, or all four in one process;
//! offers `verify` and `listen` for customers debugging their receivers, and
//! operator commands over the api.

mod listen;
mod operate;
mod remote;
mod table;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookline_config::Settings;
use hookline_runtime::{ops, shutdown, Shutdown};

#[derive(Parser)]
#[command(name = "hookline", version, about = "Webhook delivery pipeline")]
struct Cli {
    /// TOML configuration file (else HOOKLINE_CONFIG, else defaults + environment).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP ingest (default 127.0.0.1:8080).
    Ingest,
    /// Subscription matching (metrics on 127.0.0.1:9101).
    Fanout,
    /// Signing and sending (metrics on 127.0.0.1:9102).
    Deliverer,
    /// Control plane over PostgreSQL (127.0.0.1:8081).
    Api,
    /// All four services in one process.
    All,
    /// Checks a saved delivery's signature against a secret.
    Verify(verify::Args),
    /// A local receiver that prints and verifies every delivery.
    Listen(Box<listen::Args>),
    /// List, create and delete subscriptions through the api.
    Subscriptions {
        #[command(subcommand)]
        command: operate::Subscriptions,
        #[command(flatten)]
        common: operate::Common,
    },
    /// List and replay dead letters through the api.
    DeadLetters {
        #[command(subcommand)]
        command: operate::DeadLetters,
        #[command(flatten)]
        common: operate::Common,
    },
    /// Send an event through ingest.
    Events {
        #[command(subcommand)]
        command: operate::Events,
        #[command(flatten)]
        common: operate::Common,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    Ingest,
    Fanout,
    Deliverer,
    Api,
}

impl Service {
    /// The subcommand, and the section of its settings.
    fn name(self) -> &'static str {
        match self {
            Service::Ingest => "ingest",
            Service::Fanout => "fanout",
            Service::Deliverer => "deliverer",
            Service::Api => "api",
        }
    }

    /// The configuration key and address of the service's listener.
    fn listener(self, settings: &Settings) -> (&'static str, std::net::SocketAddr) {
        match self {
            Service::Ingest => ("ingest.listen", settings.ingest.listen),
            Service::Fanout => ("fanout.listen", settings.fanout.listen),
            Service::Deliverer => ("deliverer.listen", settings.deliverer.listen),
            Service::Api => ("api.listen", settings.api.listen),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The tools need no configuration file: they talk to running services.
    match cli.command {
        Command::Verify(args) => return verify::run(&args),
        Command::Listen(args) => return listen::run(*args),
        Command::Subscriptions { command, common } => {
            return operate::run(operate::Operation::Subscriptions(&command), &common)
        }
        Command::DeadLetters { command, common } => {
            return operate::run(operate::Operation::DeadLetters(&command), &common)
        }
        Command::Events { command, common } => {
            return operate::run(operate::Operation::Events(&command), &common)
        }
        _ => {}
    }
    let settings = match hookline_config::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("hookline: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let services = match cli.command {
        Command::Ingest => vec![Service::Ingest],
        Command::Fanout => vec![Service::Fanout],
        Command::Deliverer => vec![Service::Deliverer],
        Command::Api => vec![Service::Api],
        Command::All => vec![
            Service::Api,
            Service::Ingest,
            Service::Fanout,
            Service::Deliverer,
        ],
        Command::Verify(_)
        | Command::Listen(_)
        | Command::Subscriptions { .. }
        | Command::DeadLetters { .. }
        | Command::Events { .. } => unreachable!("handled above"),
    };
    for service in &services {
        let (key, listen) = service.listener(&settings);
        let is_ingest = *service == Service::Ingest;
        if let Err(error) =
            hookline_config::refuse_development_defaults(&settings, key, listen, is_ingest)
        {
            eprintln!("hookline: configuration error: {error}");
            return ExitCode::from(2);
        }
    }
    // Before the runtime: the span exporter runs its own thread and client.
    let service_name = match services.as_slice() {
        [only] => format!("hookline-{}", only.name()),
        _ => "hookline".to_string(),
    };
    let _telemetry = match hookline_runtime::telemetry::init(
        &settings.log,
        &settings.telemetry,
        &service_name,
    ) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("hookline: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("hookline: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(settings, services)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("hookline: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the services, waits for SIGTERM/SIGINT, drains within the grace
/// period.
async fn serve(settings: Settings, services: Vec<Service>) -> anyhow::Result<()> {
    // One registry: `hookline all` exposes every family on every listener.
    let registry = hookline_runtime::metrics::new_registry();
    let root = Shutdown::new();
    let mut children = Vec::new();
    let mut running = tokio::task::JoinSet::new();
    for service in services {
        let child = root.child();
        let registry = registry.clone();
        match service {
            Service::Ingest => {
                let config = hookline_ingest::IngestConfig::from_settings(&settings);
                let listener = ops::bind(config.listen, "ingest.listen").await?;
                tracing::info!(listen = %config.listen, "ingest started");
                running.spawn(hookline_ingest::run(
                    config,
                    listener,
                    registry,
                    child.clone(),
                ));
            }
            Service::Fanout => {
                let config = hookline_fanout::FanoutConfig::from_settings(&settings);
                let listener = ops::bind(config.listen, "fanout.listen").await?;
                tracing::info!(listen = %config.listen, "fanout started");
                running.spawn(hookline_fanout::run(
                    config,
                    listener,
                    registry,
                    child.clone(),
                ));
            }
            Service::Deliverer => {
                let config = hookline_deliverer::DelivererConfig::from_settings(&settings);
                let listener = ops::bind(config.listen, "deliverer.listen").await?;
                tracing::info!(listen = %config.listen, "deliverer started");
                running.spawn(hookline_deliverer::run(
                    config,
                    listener,
                    registry,
                    child.clone(),
                ));
            }
            Service::Api => {
                let config = hookline_api::ApiConfig::from_settings(&settings);
                let listener = ops::bind(settings.api.listen, "api.listen").await?;
                tracing::info!(listen = %settings.api.listen, "api started");
                running.spawn(hookline_api::run(config, listener, registry, child.clone()));
            }
        }
        children.push(child);
    }
    // A service's `run` returns before shutdown only when it failed to start
    // or lost something it cannot do without: then the others stop too.
    let mut failure = None;
    tokio::select! {
        _ = shutdown::signal() => tracing::info!("shutdown signal received; draining"),
        Some(joined) = running.join_next() => {
            tracing::error!("a service stopped unexpectedly; shutting down");
            failure = failed(joined);
        }
    }
    root.token.cancel();
    let grace = settings.shutdown.grace_period;
    let mut drained = true;
    for child in &children {
        drained &= child.drain(grace).await;
    }
    while let Some(joined) = running.join_next().await {
        failure = failed(joined).or(failure);
    }
    if !drained {
        tracing::warn!("grace period over; unfinished work stays unacked and will be redelivered");
    }
    failure.map_or(Ok(()), Err)
}

/// The error of a service's finished task, if it failed or panicked.
fn failed(joined: Result<anyhow::Result<()>, tokio::task::JoinError>) -> Option<anyhow::Error> {
    match joined {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(error) => Some(anyhow::anyhow!("a service panicked: {error}")),
    }
}
