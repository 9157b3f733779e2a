//! Hookline's one typed configuration: built-in defaults, then an optional
//! TOML file, then `HOOKLINE__<SECTION>__<KEY>` environment variables.
//!
//! The layers are merged by the `config` crate and read into [`Settings`] by
//! its `Deserialize`, with the path of the value being read kept alongside,
//! so that a bad value stops the service at start with a message that names
//! the key (`delivery.retry_delays: ...`).

mod de;
mod duration;
mod exposure;
mod load;
mod secret;
mod settings;

pub use duration::{format_duration, parse_duration, parse_duration_list};
pub use exposure::refuse_development_defaults;
pub use load::{load, load_from, ConfigError};
pub use secret::Secret;
pub use settings::*;
