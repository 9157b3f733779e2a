//! Starting one service with given settings: in-process on port 0 (cheap,
//! for reconnect tests and for a second service with other settings), or as
//! the real `hookline` binary (for `kill -9`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hookline_config::Settings;
use hookline_runtime::Shutdown;
use tokio::net::TcpListener;

use crate::api_client::wait_ready;
use crate::binary::{free_port, hookline_binary, settings_env};

/// One of the four services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The control plane and recorders.
    Api,
    /// HTTP ingest.
    Ingest,
    /// Matching.
    Fanout,
    /// Sending.
    Deliverer,
}

impl Service {
    /// The `hookline` subcommand.
    pub fn command(self) -> &'static str {
        match self {
            Service::Api => "api",
            Service::Ingest => "ingest",
            Service::Fanout => "fanout",
            Service::Deliverer => "deliverer",
        }
    }
}

/// Runs `service` in this process until `shutdown` is cancelled; returns
/// its `http://127.0.0.1:PORT`.
pub async fn spawn_in_process(
    service: Service,
    settings: &Settings,
    shutdown: &Shutdown,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let registry = hookline_runtime::metrics::new_registry();
    let own = Shutdown {
        token: shutdown.token.child_token(),
        tracker: shutdown.tracker.clone(),
    };
    let s = settings.clone();
    shutdown.tracker.spawn(async move {
        let result = match service {
            Service::Api => {
                hookline_api::run(
                    hookline_api::ApiConfig::from_settings(&s),
                    listener,
                    registry,
                    own,
                )
                .await
            }
            Service::Ingest => {
                let config = hookline_ingest::IngestConfig::from_settings(&s);
                hookline_ingest::run(config, listener, registry, own).await
            }
            Service::Fanout => {
                let config = hookline_fanout::FanoutConfig::from_settings(&s);
                hookline_fanout::run(config, listener, registry, own).await
            }
            Service::Deliverer => {
                let config = hookline_deliverer::DelivererConfig::from_settings(&s);
                hookline_deliverer::run(config, listener, registry, own).await
            }
        };
        if let Err(error) = result {
            panic!("{service:?} failed: {error:#}");
        }
    });
    format!("http://{addr}")
}

/// The service as a child process of its own; SIGKILLed on drop.
pub struct ServiceProcess {
    child: Child,
    /// `http://127.0.0.1:PORT` of its listener.
    pub base: String,
}

impl ServiceProcess {
    /// Starts `hookline <service>` with `settings` on a fresh port. `extra`
    /// adds `HOOKLINE__…` variables that [`settings_env`] does not carry.
    pub fn spawn(service: Service, settings: &Settings, extra: &[(&str, &str)]) -> Self {
        let mut settings = settings.clone();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        match service {
            Service::Api => settings.api.listen = addr,
            Service::Ingest => settings.ingest.listen = addr,
            Service::Fanout => settings.fanout.listen = addr,
            Service::Deliverer => settings.deliverer.listen = addr,
        }
        let child = Command::new(hookline_binary())
            .arg(service.command())
            .envs(settings_env(&settings))
            .envs(extra.iter().copied())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("start hookline");
        Self {
            child,
            base: format!("http://{addr}"),
        }
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&self, timeout: Duration) {
        wait_ready(&self.base, timeout).await;
    }

    /// The OS process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits for the process to drain and exit.
    pub async fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await;
        let waited = tokio::task::block_in_place(|| self.child.wait());
        assert!(waited.is_ok(), "the process exits after SIGTERM");
    }

    /// `kill -9`: no drain, no goodbye; whatever it held unacked goes back
    /// to the broker.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
