//! Protocol Buffers messages that cross RabbitMQ, generated at build time from
//! `proto-schemas/hookline.proto`.

#[allow(missing_docs, clippy::all)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/hookline.v1.rs"));
}

pub use generated::*;

/// The schema version this build writes and accepts; a message with another
/// version is parked rather than guessed at.
pub const SCHEMA_VERSION: u32 = 1;

pub use prost::Message;

/// `SubscriptionChanged.change` sent by a deliverer whose subscription
/// answers slowly: fanout routes that subscription's tasks to its slow lane
/// for a while. It is not a change of the subscription itself.
pub const CHANGE_SLOW: &str = "slow";
