//! What every Hookline service shares at run time: logging, the shutdown
//! signal, readiness, and the `/healthz`, `/readyz`, `/metrics` endpoints.

pub mod buckets;
pub mod health;
pub mod metrics;
pub mod ops;
pub mod shutdown;
pub mod telemetry;

pub use health::Readiness;
pub use shutdown::Shutdown;
