//! How a subscription shapes its deliveries, by the contract's "Delivery
//! options": the method, a body from Jinja merge fields over the envelope
//! (`type`, `id`, `tenant`, `timestamp`, `data`) as JSON or form-encoded,
//! and a CEL filter over the same fields.
//!
//! Options are compiled once into a [`DeliveryPlan`] (fanout does it once
//! per subscription revision) and applied once per event: templates render
//! within [`Limits`] (a fuel budget ends loops, an output budget ends
//! explosions, and either ends the attempt with a [`RenderError`] instead of
//! stalling a worker); a filter that fails to evaluate counts as false.

mod filter;
mod form;
mod options;
mod plan;
mod template;
#[cfg(test)]
mod validator_proptests;

pub use filter::{Filter, FilterError, FilterInput, FilterSyntaxError, FIELDS};
pub use form::{flatten, form_body};
pub use options::{
    BatchOption, BodyFormat, BodyOption, DeliveryOptions, Method, Ordering, RateLimit, Verification,
};
pub use plan::{with_query, DeliveryPlan, OptionError, Request};
pub use template::{BodyTemplate, Format, Limits, RenderError, Rendered, TemplateError};
