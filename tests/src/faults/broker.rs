//! A RabbitMQ node of one test's own: its node name, ports, cookie, data and
//! log directories, so stopping, resetting or alarming it disturbs nobody.
//!
//! Started with `rabbitmq-server -detached` from the package's own scripts
//! (not the Debian wrapper, which insists on the `rabbitmq` user) and driven
//! with `rabbitmqctl -n <node>`. A fresh node boots in a few seconds; each CLI
//! call costs about one more (an Erlang VM starts), so tests make few.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::scratch;
use crate::binary::free_port;
use crate::eventually;

/// One running node; killed and its directory removed on drop.
pub struct Broker {
    node: String,
    port: u16,
    dir: PathBuf,
    tls_port: Option<u16>,
}

/// The package's scripts, when installed the Debian way.
const PACKAGE_BIN: &str = "/usr/lib/rabbitmq/bin";

fn script(name: &str) -> PathBuf {
    let packaged = Path::new(PACKAGE_BIN).join(name);
    if packaged.exists() {
        packaged
    } else {
        PathBuf::from(name)
    }
}

impl Broker {
    /// Boots a node and waits until it accepts AMQP connections.
    pub async fn start() -> Self {
        Self::start_with_tls(None).await
    }

    /// A node that also listens for `amqps://` on a port of its own, with
    /// this certificate and key (PEM); clients are not asked for one.
    pub async fn start_with_tls(tls: Option<&crate::tls::ServerCert>) -> Self {
        let dir = scratch::new_dir("rabbitmq");
        let port = free_port();
        let dist_port = free_port();
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let node = format!("hl-faults-{name}@localhost");
        let tls_port = tls.map(|_| free_port());
        let broker = Self {
            node,
            port,
            dir,
            tls_port,
        };
        let mut tls_conf = String::new();
        if let (Some(tls), Some(tls_port)) = (tls, tls_port) {
            let (ca, cert, key) = tls.write_to(&broker.dir);
            tls_conf = format!(
                "listeners.ssl.1 = 127.0.0.1:{tls_port}\n\
                 ssl_options.cacertfile = {ca}\nssl_options.certfile = {cert}\n\
                 ssl_options.keyfile = {key}\nssl_options.verify = verify_none\n\
                 ssl_options.fail_if_no_peer_cert = false\n"
            );
        }
        let write = |file: &str, text: String| {
            std::fs::write(broker.dir.join(file), text).expect("write broker file");
        };
        // Loopback only, guest allowed over it, the stock watermark (tests
        // lower it to zero and back).
        write(
            "rabbitmq.conf",
            format!(
                "loopback_users = none\nlisteners.tcp.1 = 127.0.0.1:{port}\n\
                 vm_memory_high_watermark.relative = 0.4\n{tls_conf}"
            ),
        );
        write("enabled_plugins", "[].\n".into());
        // Our own env file, so /etc/rabbitmq/rabbitmq-env.conf (which names
        // the machine's node) is never read.
        write(
            "rabbitmq-env.conf",
            "ERL_EPMD_ADDRESS=127.0.0.1\n\
             export ERL_FLAGS=\"-kernel inet_dist_use_interface {127,0,0,1}\"\n"
                .into(),
        );
        write(".erlang.cookie", ulid::Ulid::new().to_string());
        let _ = std::process::Command::new("chmod")
            .args(["400", &broker.dir.join(".erlang.cookie").to_string_lossy()])
            .status();
        write("dist_port", dist_port.to_string());

        let status = tokio::process::Command::new(script("rabbitmq-server"))
            .arg("-detached")
            .envs(broker.env())
            .status()
            .await
            .expect("run rabbitmq-server (is RabbitMQ installed? make services)");
        assert!(status.success(), "rabbitmq-server -detached: {status}");
        broker.wait_for_amqp(Duration::from_secs(60)).await;
        let pid_file = broker
            .dir
            .join("mnesia")
            .join(format!("{}.pid", broker.node));
        let pid = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .expect("the node wrote its pid file");
        scratch::record_server_pid(&broker.dir, pid);
        broker
    }

    /// Environment of the node and of every CLI call against it.
    fn env(&self) -> Vec<(String, String)> {
        let dir = self.dir.to_string_lossy().into_owned();
        let dist_port = std::fs::read_to_string(self.dir.join("dist_port")).unwrap_or_default();
        [
            ("HOME", dir.clone()),
            ("RABBITMQ_NODENAME", self.node.clone()),
            ("RABBITMQ_NODE_PORT", self.port.to_string()),
            ("RABBITMQ_DIST_PORT", dist_port),
            ("RABBITMQ_MNESIA_BASE", format!("{dir}/mnesia")),
            ("RABBITMQ_LOG_BASE", format!("{dir}/log")),
            (
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                format!("{dir}/enabled_plugins"),
            ),
            ("RABBITMQ_CONFIG_FILE", format!("{dir}/rabbitmq.conf")),
            ("RABBITMQ_CONF_ENV_FILE", format!("{dir}/rabbitmq-env.conf")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// `amqps://` URL of the default vhost on the TLS listener, by the name
    /// the certificate carries.
    pub fn tls_url(&self) -> String {
        let port = self.tls_port.expect("started with TLS");
        format!("amqps://guest:guest@localhost:{port}/%2f")
    }

    /// `amqp://` URL of the default vhost (each test owns the whole node).
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Runs `rabbitmqctl -n <node> -q <args>` and returns its output; panics
    /// with the tool's own words when it fails.
    pub async fn ctl(&self, args: &[&str]) -> String {
        let output = tokio::process::Command::new(script("rabbitmqctl"))
            .arg("-n")
            .arg(&self.node)
            .arg("-q")
            .args(args)
            .envs(self.env())
            .output()
            .await
            .expect("run rabbitmqctl");
        assert!(
            output.status.success(),
            "rabbitmqctl {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `rabbitmqctl … --formatter json` parsed (an array of objects).
    pub async fn ctl_json(&self, args: &[&str]) -> Vec<Value> {
        let mut args = args.to_vec();
        args.extend(["--formatter", "json"]);
        let text = self.ctl(&args).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("rabbitmqctl {args:?}: {e}: {text}"))
    }

    /// Stops the RabbitMQ application (connections drop, listeners close);
    /// the Erlang node stays up for `start_app`.
    pub async fn stop_app(&self) {
        self.ctl(&["stop_app"]).await;
    }

    /// Starts the application again and waits for the AMQP listener.
    pub async fn start_app(&self) {
        self.ctl(&["start_app"]).await;
        self.wait_for_amqp(Duration::from_secs(60)).await;
    }

    /// Wipes every definition and message (`stop_app`, `reset`, `start_app`):
    /// the node comes back as new, with only the default vhost and user.
    pub async fn reset(&self) {
        self.ctl(&["stop_app"]).await;
        self.ctl(&["reset"]).await;
        self.start_app().await;
    }

    /// Closes every client connection, as a load balancer or a network
    /// partition would.
    pub async fn close_all_connections(&self) {
        self.ctl(&["close_all_connections", "fault injected by a test"])
            .await;
    }

    /// Sets the memory high watermark; `0` raises the memory alarm at once
    /// and blocks every publishing connection.
    pub async fn set_memory_high_watermark(&self, fraction: f64) {
        self.ctl(&["set_vm_memory_high_watermark", &fraction.to_string()])
            .await;
    }

    /// `(ready, unacknowledged)` messages of `queue`.
    pub async fn queue_counts(&self, queue: &str) -> (u64, u64) {
        let rows = self
            .ctl_json(&[
                "list_queues",
                "name",
                "messages_ready",
                "messages_unacknowledged",
            ])
            .await;
        rows.iter()
            .find(|row| row["name"] == queue)
            .map(|row| {
                (
                    row["messages_ready"].as_u64().unwrap_or(0),
                    row["messages_unacknowledged"].as_u64().unwrap_or(0),
                )
            })
            .unwrap_or_else(|| panic!("no queue {queue}: {rows:?}"))
    }

    /// Every consumer as `(queue, prefetch)`.
    pub async fn consumers(&self) -> Vec<(String, u64)> {
        self.ctl_json(&["list_consumers", "queue_name", "prefetch_count"])
            .await
            .iter()
            .map(|row| {
                (
                    row["queue_name"].as_str().unwrap_or_default().to_string(),
                    row["prefetch_count"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    }

    /// How many open channels are in publisher-confirm mode.
    pub async fn confirm_channels(&self) -> usize {
        self.ctl_json(&["list_channels", "confirm"])
            .await
            .iter()
            .filter(|row| row["confirm"] == true)
            .count()
    }

    async fn wait_for_amqp(&self, timeout: Duration) {
        let url = self.url();
        let port = self.port;
        eventually(timeout, "the test broker to accept AMQP", || {
            let url = url.clone();
            async move {
                TcpStream::connect(("127.0.0.1", port)).ok()?;
                let connection = hookline_amqp::connect(&url, "fault-probe").await.ok()?;
                let _ = connection.close(200, "probe".into()).await;
                Some(())
            }
        })
        .await;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        scratch::destroy(&self.dir);
    }
}
