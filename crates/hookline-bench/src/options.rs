//! The delivery-option runs: fan-out 1 again, each with one subscription
//! whose options make fanout do more per event (render a JSON template,
//! flatten the body into a form, evaluate a CEL filter), judged against the
//! plain fan-out-1 run of the same invocation. Every option keeps `id` and
//! `data.sent_ns` where the sink reads them, and the filter admits every
//! event the generator publishes (see `load::LEAD`), so a lost event shows
//! as an incomplete run, never as a faster one.

use serde_json::{json, Value};

/// What an option run's ratio is taken of.
pub const PLAIN: &str = "plain fan-out 1";

/// Each option run's share of the plain run's deliveries per second that
/// the issue asks for.
pub const TARGET_RATIO: f64 = 0.9;

/// The filter: three clauses, true for every event the bench publishes.
pub const FILTER: &str = "data.amount > 100 && data.stage == 'won' && type.startsWith('bench.')";

/// What an option run's subscription asks of fanout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOption {
    /// A JSON body rendered from [`template`].
    Template,
    /// `{"format": "form"}` without a template: the standard body (pad
    /// included, so about as many bytes as the plain run) flattened with
    /// bracket keys, the costlier of the form paths.
    Form,
    /// [`FILTER`], with the standard body.
    Filter,
}

impl DeliveryOption {
    /// The options of the subscription, as the api takes them.
    pub fn to_json(self) -> Value {
        match self {
            Self::Template => json!({ "body": { "format": "json", "template": template() } }),
            Self::Form => json!({ "body": { "format": "form" } }),
            Self::Filter => json!({ "filter": FILTER }),
        }
    }
}

/// One option run: its own tenant and event type, so its subscription is
/// the only one its events match.
#[derive(Debug, Clone, Copy)]
pub struct OptionRun {
    /// Row name in the report (the duration is appended).
    pub name: &'static str,
    /// Tenant of its one subscription.
    pub tenant: &'static str,
    /// Type of its events, and its subscription's one event type.
    pub event_type: &'static str,
    /// Event id prefix (unique among all runs: the sink keys on it).
    pub prefix: &'static str,
    /// Its subscription's options.
    pub option: DeliveryOption,
}

/// The three runs, in the order they are made.
pub const RUNS: [OptionRun; 3] = [
    OptionRun {
        name: "template, 10 fields",
        tenant: "bench-tpl",
        event_type: "bench.tpl",
        prefix: "tpl-",
        option: DeliveryOption::Template,
    },
    OptionRun {
        name: "form body",
        tenant: "bench-form",
        event_type: "bench.form",
        prefix: "form-",
        option: DeliveryOption::Form,
    },
    OptionRun {
        name: "filter, 3 clauses",
        tenant: "bench-filter",
        event_type: "bench.filter",
        prefix: "filter-",
        option: DeliveryOption::Filter,
    },
];

/// Ten fields, as a CRM mapping would have them: typed merge fields (a
/// number, an array, the sink's `sent_ns`), nested objects, interpolated
/// text and a constant. `padding` carries `data.pad`, so the rendered body
/// is about as large as the standard one and the run measures rendering,
/// not fewer bytes on the wire.
pub fn template() -> Value {
    json!({
        "id": "{{ id }}",
        "type": "{{ type }}",
        "occurred_at": "{{ timestamp }}",
        "amount": "{{ data.amount }}",
        "tags": "{{ data.tags }}",
        "contact": {
            "email": "{{ data.contact.email }}",
            "name": "{{ data.contact.first_name }} {{ data.contact.last_name }}"
        },
        "summary": "{{ data.contact.first_name }} moved lead {{ id }} to {{ data.stage }} ({{ data.amount }} EUR)",
        "data": { "sent_ns": "{{ data.sent_ns }}" },
        "source": "hookline-bench",
        "padding": "{{ data.pad }}"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_has_ten_fields_and_keeps_what_the_sink_reads() {
        let template = template();
        assert_eq!(template.as_object().map(|o| o.len()), Some(10));
        assert_eq!(template["id"], "{{ id }}");
        assert_eq!(template["data"]["sent_ns"], "{{ data.sent_ns }}");
    }

    #[test]
    fn every_run_has_its_own_prefix_tenant_and_option() {
        for (i, a) in RUNS.iter().enumerate() {
            for b in &RUNS[i + 1..] {
                assert!(!a.prefix.starts_with(b.prefix) && !b.prefix.starts_with(a.prefix));
                assert_ne!(a.tenant, b.tenant);
                assert_ne!(a.option, b.option);
            }
        }
    }
}
