//! The system under test: a fresh RabbitMQ vhost and PostgreSQL database
//! per run (made and removed like the integration tests do), and
//! `hookline api|fanout|deliverer` as separate processes on free ports.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use sqlx::Connection as _;
use tokio::process::{Child, Command};

/// RabbitMQ management API (vhosts are made through it).
const MANAGEMENT: &str = "http://127.0.0.1:15672/api";
/// Where the bench's databases are created.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// The api's admin token for the run.
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789";

/// A name nobody else uses: `hlbench_<ulid>`.
pub fn unique_name() -> String {
    format!("hlbench_{}", ulid::Ulid::new().to_string().to_lowercase())
}

/// Vhosts and databases made so far; [`Cleanup::run`] removes them, and
/// `main` calls it whatever happened (error, Ctrl-C) before exiting.
#[derive(Clone, Default)]
pub struct Cleanup {
    made: Arc<Mutex<Made>>,
}

#[derive(Default)]
struct Made {
    vhosts: Vec<String>,
    databases: Vec<String>,
}

impl Cleanup {
    /// Creates vhost `name` (with guest permissions) and remembers it.
    pub async fn vhost(&self, http: &reqwest::Client, name: &str) -> anyhow::Result<String> {
        let status = http
            .put(format!("{MANAGEMENT}/vhosts/{name}"))
            .basic_auth("guest", Some("guest"))
            .send()
            .await
            .context("RabbitMQ management API at 127.0.0.1:15672 (run `make services`)")?
            .status();
        if !status.is_success() {
            bail!("creating vhost {name}: {status}");
        }
        self.lock().vhosts.push(name.to_string());
        let status = http
            .put(format!("{MANAGEMENT}/permissions/{name}/guest"))
            .basic_auth("guest", Some("guest"))
            .json(&serde_json::json!({ "configure": ".*", "write": ".*", "read": ".*" }))
            .send()
            .await?
            .status();
        if !status.is_success() {
            bail!("vhost {name} permissions: {status}");
        }
        Ok(format!("amqp://guest:guest@127.0.0.1:5672/{name}"))
    }

    /// Creates database `name` and remembers it; returns its URL.
    pub async fn database(&self, name: &str) -> anyhow::Result<String> {
        let mut connection = sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres"))
            .await
            .context("PostgreSQL at 127.0.0.1:5432 (run `make services`)")?;
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut connection)
            .await
            .with_context(|| format!("creating database {name}"))?;
        self.lock().databases.push(name.to_string());
        Ok(format!("{POSTGRES}/{name}"))
    }

    /// Deletes everything made so far; errors are reported, not returned.
    pub async fn run(&self, http: &reqwest::Client) {
        let made = std::mem::take(&mut *self.lock());
        for vhost in made.vhosts {
            let deleted = http
                .delete(format!("{MANAGEMENT}/vhosts/{vhost}"))
                .basic_auth("guest", Some("guest"))
                .send()
                .await;
            if let Err(error) = deleted {
                eprintln!("bench: cannot delete vhost {vhost}: {error}");
            }
        }
        if made.databases.is_empty() {
            return;
        }
        match sqlx::PgConnection::connect(&format!("{POSTGRES}/postgres")).await {
            Ok(mut connection) => {
                for database in made.databases {
                    let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
                    if let Err(error) = sqlx::query(&sql).execute(&mut connection).await {
                        eprintln!("bench: cannot drop database {database}: {error}");
                    }
                }
            }
            Err(error) => eprintln!("bench: cannot drop the bench databases: {error}"),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Made> {
        crate::sink::lock(&self.made)
    }
}

/// The broker's OS process, for its CPU time (shared with whatever else
/// uses the broker, so only indicative).
pub async fn broker_pid(http: &reqwest::Client) -> Option<u32> {
    let nodes: serde_json::Value = http
        .get(format!("{MANAGEMENT}/nodes"))
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let pid = &nodes.get(0)?["os_pid"];
    pid.as_str()
        .and_then(|p| p.parse().ok())
        .or_else(|| pid.as_u64().and_then(|p| u32::try_from(p).ok()))
}

/// A free loopback port (bound, then released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One running `hookline <service>` process.
pub struct Service {
    /// `api`, `fanout` or `deliverer`.
    pub name: &'static str,
    /// `http://127.0.0.1:PORT` of its listener.
    pub base: String,
    /// Sampled in `/proc` for memory and CPU, and sent SIGTERM at the end.
    pub pid: u32,
    child: Child,
}

/// How to start the services.
pub struct Launch<'a> {
    /// The `hookline` binary run as each service (`--hookline`, else next to the bench).
    pub binary: &'a Path,
    /// URL of the vhost made for this run, passed as `HOOKLINE__AMQP__URL`.
    pub amqp_url: &'a str,
    /// URL of the database made for this run, passed as `HOOKLINE__DATABASE__URL`.
    pub database_url: &'a str,
    /// Where each service's stderr goes (`<dir>/<service>.log`).
    pub log_dir: &'a Path,
    /// `RUST_LOG` of the services (`--service-log`): quiet by default, since the
    /// deliverer logs every attempt at info.
    pub rust_log: &'a str,
    /// `TOKIO_WORKER_THREADS` of each service (0: tokio's default, one per
    /// core).
    pub worker_threads: usize,
}

impl Service {
    /// Starts `hookline <name>`: classic durable queues, plain-HTTP loopback
    /// receivers allowed, its listen key on a free port. `HOOKLINE__*` set in
    /// the bench's own environment are inherited, so a run can be tuned
    /// (`HOOKLINE__DELIVERY__CONCURRENCY=256 make bench`).
    pub fn start(name: &'static str, launch: &Launch<'_>) -> anyhow::Result<Self> {
        Self::start_with(name, launch, &[])
    }

    /// [`Service::start`] with `extra` variables on top (ingest needs the
    /// api's address, known only once the api runs).
    pub fn start_with(
        name: &'static str,
        launch: &Launch<'_>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let listen_key = format!("HOOKLINE__{}__LISTEN", name.to_uppercase());
        let log_path = launch.log_dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = Command::new(launch.binary);
        if launch.worker_threads > 0 {
            command.env("TOKIO_WORKER_THREADS", launch.worker_threads.to_string());
        }
        let child = command
            .arg(name)
            .env(listen_key, format!("127.0.0.1:{port}"))
            .env("HOOKLINE__AMQP__URL", launch.amqp_url)
            .env("HOOKLINE__AMQP__QUEUE_TYPE", "classic")
            .env("HOOKLINE__DATABASE__URL", launch.database_url)
            .env("HOOKLINE__API__ADMIN_TOKEN", ADMIN_TOKEN)
            .env("HOOKLINE__API__ALLOW_INSECURE_URLS", "true")
            // The fan-out-20 runs put 20 subscriptions on one tenant.
            .env("HOOKLINE__API__MAX_SUBSCRIPTIONS_PER_TENANT", "100")
            .env("HOOKLINE__DELIVERY__ALLOWED_NETWORKS", "127.0.0.0/8")
            .env("HOOKLINE__SHUTDOWN__GRACE_PERIOD", "5s")
            .env("HOOKLINE__LOG__FORMAT", "json")
            .env("RUST_LOG", launch.rust_log)
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // A bench that panics or is interrupted leaves nothing running.
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {} {name}", launch.binary.display()))?;
        let pid = child.id().context("the service exited at once")?;
        Ok(Self {
            name,
            base: format!("http://127.0.0.1:{port}"),
            pid,
            child,
        })
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(
        &mut self,
        http: &reqwest::Client,
        within: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited during start-up ({status}); see its log",
                    self.name
                );
            }
            let ready = http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{} was not ready within {within:?}; see its log", self.name);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, a few seconds to drain, then SIGKILL.
    pub async fn stop(&mut self) {
        if !self.is_running() {
            return;
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if tokio::time::timeout(Duration::from_secs(6), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// The `hookline` binary next to this one (`target/release/`).
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hookline")))
        .unwrap_or_else(|| PathBuf::from("target/release/hookline"))
}
