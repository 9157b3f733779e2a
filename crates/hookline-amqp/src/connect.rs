//! Connecting, and the reconnecting session loop.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hookline_runtime::Readiness;
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use prometheus::IntCounter;
use tokio_util::sync::CancellationToken;

use crate::error::AmqpError;

/// The node URLs of `amqp.url`: one, or the comma-separated nodes of a
/// cluster.
pub fn nodes(url: &str) -> impl Iterator<Item = &str> {
    url.split(',')
        .map(str::trim)
        .filter(|node| !node.is_empty())
}

/// Where the broker is (`amqp.url`, one node or a cluster's) and the extra
/// CA that `amqps://` nodes may be signed by (`amqp.ca_file`).
#[derive(Clone, Debug, Default)]
pub struct Broker {
    url: String,
    ca_file: Option<PathBuf>,
}

impl Broker {
    /// A broker at `url`; `amqps://` nodes are verified against the system's
    /// roots plus `ca_file`.
    pub fn new(url: impl Into<String>, ca_file: Option<PathBuf>) -> Self {
        Self {
            url: url.into(),
            ca_file,
        }
    }

    /// From the `amqp.*` settings.
    pub fn from_settings(amqp: &hookline_config::AmqpSettings) -> Self {
        Self::new(amqp.url.expose(), amqp.ca_file.clone())
    }
}

/// Opens a connection to `url` (no extra CA), named for the broker's UI.
pub async fn connect(url: &str, name: &str) -> Result<Connection, AmqpError> {
    connect_to(&Broker::new(url, None), name).await
}

/// Opens a connection on the tokio runtime, named for the broker's UI, to
/// the first node of the broker that answers: with a cluster's nodes
/// listed, a lost node costs one reconnect, which lands on the next node.
pub async fn connect_to(broker: &Broker, name: &str) -> Result<Connection, AmqpError> {
    // Read at each connect: rare, and a renewed CA file is picked up
    // without a restart.
    let cert_chain = match &broker.ca_file {
        Some(path) => Some(std::fs::read_to_string(path).map_err(|e| {
            AmqpError::Unavailable(format!("amqp.ca_file {}: {e}", path.display()))
        })?),
        None => None,
    };
    let mut last_error = None;
    for node in nodes(&broker.url) {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: cert_chain.clone(),
        };
        // lapin's own recovery stays off: `supervise` reconnects, so that
        // every session starts from a fresh topology and unacked messages
        // simply come back.
        let runtime = lapin::runtime::default_runtime()?;
        match Connection::connect_with_config(node, properties, tls, runtime).await {
            Ok(connection) => return Ok(connection),
            Err(error) => last_error = Some(error),
        }
    }
    match last_error {
        Some(error) => Err(error.into()),
        None => Err(AmqpError::Unavailable("amqp.url lists no node".into())),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cluster_url_lists_its_nodes_in_order() {
        let nodes: Vec<&str> = super::nodes("amqp://a:5672/%2f, amqps://b:5671/%2f,,").collect();
        assert_eq!(nodes, ["amqp://a:5672/%2f", "amqps://b:5671/%2f"]);
    }
}

/// What a reconnecting consumer needs besides its own work.
#[derive(Clone)]
pub struct SessionContext {
    /// Where to connect, with TLS and credentials from `amqp.*`.
    pub broker: Broker,
    /// Shown in RabbitMQ's management UI, so an operator can tell services apart.
    pub name: String,
    /// Pause between reconnection attempts.
    pub reconnect_delay: Duration,
    /// `amqp` is set up or down here.
    pub readiness: Readiness,
    /// Counts reconnections (`hookline_amqp_reconnects_total`).
    pub reconnects: IntCounter,
    /// The service's shutdown signal: the loop stops reconnecting once it fires.
    pub token: CancellationToken,
}

/// A session that lasted this long resets the reconnect backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(30);
/// The longest pause between reconnect attempts.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(30);

/// Reconnect pauses: from `amqp.reconnect_delay`, doubling up to 30 s, each
/// with random jitter, so a hundred deliverers that lost the broker at the
/// same instant do not all knock on it again at the same instant.
fn reconnect_delays(first: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(MAX_RECONNECT_DELAY.max(first))
        .with_jitter()
        .without_max_times()
        .build()
}

/// Runs `session` on a fresh connection, again and again, until the token is
/// cancelled. A session returns when its connection fails (its consumer
/// stream ends) or when it has drained after cancellation; unacked messages
/// of a dead connection are redelivered by the broker, so nothing is lost by
/// starting over.
pub async fn supervise<F, Fut>(ctx: SessionContext, mut session: F)
where
    F: FnMut(Arc<Connection>) -> Fut,
    Fut: Future<Output = Result<(), AmqpError>>,
{
    let mut first = true;
    let mut delays = reconnect_delays(ctx.reconnect_delay);
    while !ctx.token.is_cancelled() {
        if !first {
            ctx.reconnects.inc();
        }
        first = false;
        match connect_to(&ctx.broker, &ctx.name).await {
            Ok(connection) => {
                let connection = Arc::new(connection);
                let started = std::time::Instant::now();
                let result = session(connection.clone()).await;
                // A session that ran a while was a success: the next
                // failure starts the backoff again from the shortest delay.
                if started.elapsed() > HEALTHY_SESSION {
                    delays = reconnect_delays(ctx.reconnect_delay);
                }
                ctx.readiness.set("amqp", false);
                let _ = connection.close(200, "session over".into()).await;
                match result {
                    Ok(()) if ctx.token.is_cancelled() => break,
                    Ok(()) => {
                        tracing::warn!(connection = %ctx.name, "broker session ended; reconnecting")
                    }
                    Err(error) => {
                        tracing::warn!(connection = %ctx.name, %error, "broker session failed; reconnecting")
                    }
                }
            }
            Err(error) => {
                ctx.readiness.set("amqp", false);
                tracing::warn!(connection = %ctx.name, %error, "cannot connect to the broker; retrying");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delays.next().unwrap_or(ctx.reconnect_delay)) => {}
            _ = ctx.token.cancelled() => break,
        }
    }
}

/// A string header of a message, if present.
pub fn header_str<'a>(headers: Option<&'a FieldTable>, name: &str) -> Option<&'a str> {
    match headers?.inner().get(name)? {
        AMQPValue::LongString(s) => std::str::from_utf8(s.as_bytes()).ok(),
        AMQPValue::ShortString(s) => Some(s.as_str()),
        _ => None,
    }
}
