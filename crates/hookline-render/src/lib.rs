//! Delivery bodies shaped by a subscription's `body` option: Jinja merge
//! fields over the envelope (`type`, `id`, `tenant`, `timestamp`, `data`),
//! JSON or form-encoded, as the contract's "Delivery options" fix them.
//!
//! Templates are compiled once, by [`BodyTemplate::compile`] (fanout does it
//! once per subscription revision), and rendered once per event within
//! [`Limits`]: a fuel budget ends loops, an output budget ends explosions,
//! and either ends the attempt with a [`RenderError`] instead of stalling a
//! worker.

mod form;
mod template;

pub use form::{flatten, form_body};
pub use template::{BodyTemplate, Format, Limits, RenderError, Rendered, TemplateError};
