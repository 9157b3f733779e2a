//! The `subscriptions` table as both the api (which writes it) and fanout
//! (which loads it) read it, and the one way a subscription becomes the
//! shape of its deliveries: URL, scheme, sealed secrets (with the rotation
//! overlap rule) and sealed headers. Tasks are built from that shape by
//! fanout, test sends and replays alike (`DeliveryTask::reshape`). Also
//! the catalogue's schemas, which fanout checks events against.

pub mod event_types;
pub mod request;
pub mod shape;
pub mod subscriptions;

pub use request::apply_plan;
pub use shape::{sealed_signing_secrets, shape, BadRow, Shape};
pub use subscriptions::SubscriptionRow;
