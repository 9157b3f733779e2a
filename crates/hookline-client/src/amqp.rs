//! Publishing straight to the broker: the `hookline.events` exchange, routing
//! key = type, persistent, with publisher confirms. A lost connection is
//! opened again with a jittered, growing delay, and an unconfirmed event is
//! sent again (same id) until the deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::{Mutex, Semaphore};

use crate::retry::{self, Backoff, Failed};
use crate::{Event, PublishError, Published, Publisher, Publishing};

/// How the AMQP publisher behaves; the defaults suit a backend that
/// publishes as part of handling a request.
#[derive(Debug, Clone)]
pub struct AmqpOptions {
    /// The exchange events go to.
    pub exchange: String,
    /// At most this many events sent and not yet confirmed, so a slow
    /// broker slows the producer instead of filling its memory.
    pub confirm_window: usize,
    /// How long one send waits for its confirm before it counts as lost.
    pub confirm_timeout: Duration,
    /// How long one publish keeps reconnecting and resending before it
    /// returns [`PublishError::Unavailable`].
    pub deadline: Duration,
    /// The first wait before reconnecting; doubled up to `backoff_max`.
    pub backoff_initial: Duration,
    /// The longest wait between reconnects.
    pub backoff_max: Duration,
    /// The connection's name in the broker's management UI.
    pub connection_name: String,
}

impl Default for AmqpOptions {
    fn default() -> Self {
        AmqpOptions {
            exchange: "hookline.events".into(),
            confirm_window: 256,
            confirm_timeout: Duration::from_secs(10),
            deadline: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            connection_name: "hookline-client".into(),
        }
    }
}

/// A publisher to the broker; one per process, shared (it is `Sync`), with
/// one connection and one confirm-mode channel opened on first use.
pub struct AmqpPublisher {
    url: String,
    options: AmqpOptions,
    link: Mutex<Option<Link>>,
    generations: AtomicU64,
    window: Arc<Semaphore>,
}

/// An open connection and its confirm-mode channel; `generation` tells a
/// failed send whether the link it used is still the current one.
struct Link {
    connection: Connection,
    channel: Channel,
    generation: u64,
}

impl AmqpPublisher {
    /// A publisher for `url` (`amqp://user:pass@host:5672/vhost`); nothing
    /// connects until the first publish.
    pub fn new(url: impl Into<String>, options: AmqpOptions) -> AmqpPublisher {
        let window = options.confirm_window.max(1);
        AmqpPublisher {
            url: url.into(),
            options,
            link: Mutex::new(None),
            generations: AtomicU64::new(0),
            window: Arc::new(Semaphore::new(window)),
        }
    }

    /// The current channel, connecting when there is none.
    async fn channel(&self) -> Result<(Channel, u64), String> {
        let mut link = self.link.lock().await;
        if let Some(current) = link.as_ref() {
            if current.channel.status().connected() {
                return Ok((current.channel.clone(), current.generation));
            }
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        let properties = ConnectionProperties::default()
            .with_connection_name(self.options.connection_name.as_str().into());
        let connection = Connection::connect(&self.url, properties)
            .await
            .map_err(|e| format!("connecting to the broker: {e}"))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| format!("opening a channel: {e}"))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| format!("enabling publisher confirms: {e}"))?;
        *link = Some(Link {
            connection,
            channel: channel.clone(),
            generation,
        });
        Ok((channel, generation))
    }

    /// Forgets the link `generation` after a send on it failed, so the next
    /// send reconnects; a newer link opened meanwhile is kept.
    async fn forget(&self, generation: u64) {
        let mut link = self.link.lock().await;
        if link.as_ref().is_some_and(|l| l.generation == generation) {
            if let Some(old) = link.take() {
                // Best effort: the connection is most likely gone already.
                let close = old.connection.close(200, "reconnecting".into());
                let _ = tokio::time::timeout(Duration::from_secs(1), close).await;
            }
        }
    }

    /// Puts `event` on `channel`; the confirm comes later.
    async fn send(
        &self,
        channel: &Channel,
        event: &Event,
        payload: &[u8],
    ) -> lapin::Result<lapin::PublisherConfirm> {
        channel
            .basic_publish(
                self.options.exchange.as_str().into(),
                event.event_type().into(),
                // Mandatory: an event no queue takes comes back instead of
                // vanishing, and the caller hears of it.
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                payload,
                properties(event),
            )
            .await
    }

    /// Sends `event` once and waits for its confirm.
    async fn send_once(&self, event: &Event, payload: &[u8]) -> Result<(), Failed> {
        let (channel, generation) = self.channel().await.map_err(Failed::Retry)?;
        let confirm = match self.send(&channel, event, payload).await {
            Ok(confirm) => confirm,
            Err(error) => {
                self.forget(generation).await;
                return Err(Failed::Retry(format!("publishing: {error}")));
            }
        };
        self.confirmed(confirm, event, generation).await
    }

    async fn confirmed(
        &self,
        confirm: lapin::PublisherConfirm,
        event: &Event,
        generation: u64,
    ) -> Result<(), Failed> {
        match tokio::time::timeout(self.options.confirm_timeout, confirm).await {
            Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => Ok(()),
            Ok(Ok(Confirmation::Ack(Some(_)))) => Err(Failed::Refused(PublishError::Refused {
                status: 0,
                code: "unroutable".into(),
                message: format!(
                    "no queue is bound to `{}` for `{}`: is Hookline's topology declared (start fanout once)?",
                    self.options.exchange,
                    event.event_type()
                ),
            })),
            Ok(Ok(Confirmation::Nack(_))) => Err(Failed::Retry("the broker nacked it".into())),
            Ok(Err(error)) => {
                self.forget(generation).await;
                Err(Failed::Retry(format!("waiting for the confirm: {error}")))
            }
            Err(_) => {
                self.forget(generation).await;
                Err(Failed::Retry(format!(
                    "no confirm within {:?}",
                    self.options.confirm_timeout
                )))
            }
        }
    }

    /// Sends until confirmed, refused, or past the deadline. Here the
    /// client's at-least-once is decided: an unconfirmed send is repeated,
    /// with the same id, so the caller hears `Ok` only for a confirmed event.
    async fn publish_until_confirmed(&self, event: &Event) -> Result<Published, PublishError> {
        let _slot = self
            .window
            .acquire()
            .await
            .map_err(|_| PublishError::Unavailable("publisher closed".into()))?;
        let payload = event.to_json();
        let backoff = Backoff {
            initial: self.options.backoff_initial,
            max: self.options.backoff_max,
            deadline: self.options.deadline,
        };
        retry::until_deadline(backoff, || self.send_once(event, &payload)).await?;
        Ok(Published {
            id: event.id().to_string(),
        })
    }

    /// Sends a chunk without waiting between sends, then collects the
    /// confirms; whatever was not confirmed goes through the one-by-one path.
    async fn publish_chunk(&self, events: &[Event]) -> Vec<Result<Published, PublishError>> {
        let Ok(slots) = self.window.acquire_many(events.len() as u32).await else {
            return events
                .iter()
                .map(|_| Err(PublishError::Unavailable("publisher closed".into())))
                .collect();
        };
        let mut pending = Vec::with_capacity(events.len());
        if let Ok((channel, generation)) = self.channel().await {
            for event in events {
                let sent = self.send(&channel, event, &event.to_json()).await;
                pending.push(sent.ok().map(|confirm| (confirm, generation)));
            }
        }
        let mut outcomes = Vec::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            outcomes.push(match pending.get_mut(i).and_then(Option::take) {
                Some((confirm, generation)) => self.confirmed(confirm, event, generation).await,
                None => Err(Failed::Retry("not sent".into())),
            });
        }
        // The retries below take window slots one at a time.
        drop(slots);
        let mut results = Vec::with_capacity(events.len());
        for (event, outcome) in events.iter().zip(outcomes) {
            results.push(match outcome {
                Ok(()) => Ok(Published {
                    id: event.id().to_string(),
                }),
                Err(Failed::Refused(error)) => Err(error),
                Err(Failed::Retry(_)) => self.publish_until_confirmed(event).await,
            });
        }
        results
    }
}

/// Persistent JSON, with the event id as the message id and the trace
/// context, when there is one, in the `traceparent` header.
fn properties(event: &Event) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(event.id().into());
    match event.traceparent() {
        Some(traceparent) => {
            let mut headers = FieldTable::default();
            headers.insert(
                "traceparent".into(),
                AMQPValue::LongString(traceparent.into()),
            );
            properties.with_headers(headers)
        }
        None => properties,
    }
}

impl Publisher for AmqpPublisher {
    fn publish<'a>(&'a self, event: &'a Event) -> Publishing<'a, Published> {
        Box::pin(self.publish_until_confirmed(event))
    }

    fn publish_batch<'a>(
        &'a self,
        events: &'a [Event],
    ) -> Publishing<'a, Vec<Result<Published, PublishError>>> {
        Box::pin(async move {
            let chunk = self.options.confirm_window.max(1);
            let mut results = Vec::with_capacity(events.len());
            for events in events.chunks(chunk) {
                results.extend(self.publish_chunk(events).await);
            }
            Ok(results)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_context_goes_in_the_traceparent_header() {
        let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let event = Event::builder("acme", "lead.created")
            .traceparent(traceparent)
            .build()
            .expect("valid");
        let headers = properties(&event).headers().clone().expect("headers");
        assert_eq!(
            headers.inner().get("traceparent"),
            Some(&AMQPValue::LongString(traceparent.into()))
        );
        let plain = Event::builder("acme", "lead.created")
            .build()
            .expect("valid");
        assert!(properties(&plain).headers().is_none());
    }
}
