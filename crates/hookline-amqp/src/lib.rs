//! Hookline's AMQP discipline in one place: the names, the one topology
//! declaration, confirmed publishing with a bounded window, and the
//! reconnecting session loop every consumer runs in.

pub mod ack;
pub mod connect;
pub mod control;
pub mod error;
pub mod names;
pub mod publisher;
pub mod shared;
pub mod topology;

pub use ack::{AckFrame, AckLedger};
pub use connect::{connect, connect_to, header_str, supervise, Broker, SessionContext};
pub use control::{next_control, subscribe_control, subscribe_control_log, ControlMessage};
pub use error::AmqpError;
pub use publisher::{protobuf_properties, ConfirmedPublisher, PendingConfirm};
pub use shared::{Outgoing, SharedPublisher, SharedPublisherConfig};
pub use topology::{
    declare, declare_endpoint_queue, declare_lane, redelivered_too_often, Topology, DELIVERY_LIMIT,
    LANE_TTL,
};

pub use lapin;
