//! Hookline's pure domain logic: no I/O, no async, unit-tested beside the code.
//!
//! Services keep their AMQP and HTTP code thin around these functions.

pub mod envelope;
pub mod error_body;
pub mod ids;
pub mod matching;
pub mod retry;
pub mod sealed;
pub mod ssrf;
pub mod trace;
pub mod verification;
pub mod versioned;

pub use envelope::{Event, EventError};
pub use matching::{Pattern, SubscriptionIndex};
pub use retry::{Classification, RetryPolicy, StatusClass, Step};
