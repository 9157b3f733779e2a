//! Publish events to [Hookline](https://github.com/hookline/hookline), the
//! webhook delivery pipeline, from a Rust backend.
//!
//! Build an [`Event`] (checked against the envelope rules on the spot), then
//! hand it to a [`Publisher`]: [`AmqpPublisher`] publishes to the
//! `hookline.events` exchange with publisher confirms, [`HttpPublisher`]
//! posts to ingest. Both resolve only once Hookline holds the event, and both
//! retry with the same event id, so a producer never has to guess whether a
//! retry duplicates: receivers deduplicate on it.
//!
//! ```no_run
//! use hookline_client::Event;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let publisher = hookline_client::from_url("amqp://guest:guest@127.0.0.1:5672/%2f", None)?;
//! let event = Event::builder("acme", "lead.created")
//!     .data(&serde_json::json!({"email": "ada@example.com"}))
//!     .build()?;
//! let published = publisher.publish(&event).await?;
//! println!("Hookline holds {}", published.id);
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "amqp")]
mod amqp;
mod error;
mod event;
#[cfg(feature = "http")]
mod http;
#[cfg(any(feature = "amqp", feature = "http"))]
mod retry;

use std::future::Future;
use std::pin::Pin;

#[cfg(feature = "amqp")]
pub use amqp::{AmqpOptions, AmqpPublisher};
pub use error::PublishError;
pub use event::{Event, EventBuilder, EventError, MAX_DATA_BYTES};
#[cfg(feature = "http")]
pub use http::{HttpOptions, HttpPublisher};

/// What a publish resolves to once Hookline holds the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The event's id, as receivers see it in the delivery body.
    pub id: String,
}

/// A publish in progress; boxed so that `dyn Publisher` works and a backend
/// can pick its transport from configuration.
pub type Publishing<'a, T> = Pin<Box<dyn Future<Output = Result<T, PublishError>> + Send + 'a>>;

/// One way of handing events to Hookline.
pub trait Publisher: Send + Sync {
    /// Resolves once Hookline confirmed it holds the event (a publisher
    /// confirm, or ingest's `202`). An error means it may or may not have
    /// arrived: publish the same [`Event`] again, and receivers deduplicate.
    fn publish<'a>(&'a self, event: &'a Event) -> Publishing<'a, Published>;

    /// Publishes several, faster than one at a time; one result per event,
    /// in order. The outer error is for failures that concern them all.
    fn publish_batch<'a>(
        &'a self,
        events: &'a [Event],
    ) -> Publishing<'a, Vec<Result<Published, PublishError>>>;
}

/// A publisher for `url`: `amqp://` or `amqps://` for the broker (the
/// vhost in the path), `http://` or `https://` for ingest, with `token`
/// as ingest's bearer token when it requires one.
pub fn from_url(url: &str, token: Option<String>) -> Result<Box<dyn Publisher>, PublishError> {
    let scheme = url.split("://").next().unwrap_or_default();
    match scheme {
        #[cfg(feature = "amqp")]
        "amqp" | "amqps" => Ok(Box::new(AmqpPublisher::new(url, AmqpOptions::default()))),
        #[cfg(feature = "http")]
        "http" | "https" => Ok(Box::new(HttpPublisher::new(
            url,
            HttpOptions {
                token,
                ..HttpOptions::default()
            },
        )?)),
        _ => {
            let _ = token;
            Err(PublishError::Config(format!(
                "`{scheme}` is not a transport this build offers (amqp, amqps, http, https)"
            )))
        }
    }
}
