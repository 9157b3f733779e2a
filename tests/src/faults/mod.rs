//! Fault-injection support: a RabbitMQ node and a PostgreSQL cluster that
//! belong to one test (so it may stop, reset or alarm them), Hookline wired
//! to them, services as killable processes, steady load, receivers that
//! misbehave at the socket level, and a ledger of what arrived.

pub mod broker;
pub mod env;
pub mod ledger;
pub mod load;
pub mod misbehaving;
pub mod postgres;
pub mod probe;
mod scratch;
pub mod services;

pub use broker::Broker;
pub use env::{FaultEnv, FaultOptions};
pub use ledger::{assert_same_ids, Ledger};
pub use load::{Load, Outcomes};
pub use misbehaving::{MisbehavingReceiver, Misbehaviour};
pub use postgres::Postgres;
pub use services::{Service, ServiceProcess};
