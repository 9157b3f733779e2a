//! Pure checks of what clients submit, each returning a `422` that names the
//! field. No I/O, so every rule is unit-tested beside its code.

mod fields;
mod headers;
mod url;

pub(crate) use fields::{event_type, event_types, name, secret, signature};
pub(crate) use headers::headers;
pub(crate) use url::url;

use hookline_model::ssrf::Guard;

/// The configured limits a submission is checked against.
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    /// `api.allow_insecure_urls`: accept `http://`.
    pub allow_insecure_urls: bool,
    /// `delivery.allowed_networks`, as the guard that applies them.
    pub guard: Guard,
    /// `api.max_headers`.
    pub max_headers: usize,
}

/// Whether a string holds a character no header, URL or name may carry
/// (CR, LF and the other ASCII controls, tab aside).
pub(crate) fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\t')
}
