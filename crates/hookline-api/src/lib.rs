//! Hookline's control plane: subscriptions, test sends, delivery history,
//! dead letters and replay over PostgreSQL, plus the recorders that turn the
//! deliverers' attempt and dead-letter messages into that history.
//!
//! The binary hands [`run`] a listener, a registry and the shutdown signal;
//! tests call the same function on port 0.

mod auth;
mod config;
mod control;
mod cursor;
mod db;
mod error;
mod extract;
mod limits;
pub mod metrics;
mod migrate;
mod policies;
mod readiness;
mod recorder;
mod reseal;
mod retention;
mod routes;
mod service;
mod state;
mod store;
mod validate;

pub use config::ApiConfig;
pub use error::ApiError;
pub use migrate::migrate;
pub use routes::openapi::ROUTES;
pub use service::run;
