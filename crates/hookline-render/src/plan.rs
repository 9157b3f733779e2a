//! A subscription's delivery options, compiled: what fanout holds per
//! subscription revision and the api uses for test sends and previews, so
//! that all three shape a request by one rule.

use serde_json::Value;

use crate::filter::{Filter, FilterError, FilterInput};
use crate::form;
use crate::options::{BodyFormat, DeliveryOptions, Method};
use crate::template::{BodyTemplate, Limits, RenderError};

/// An option that does not validate, for the api's `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct OptionError {
    /// The field at fault (`method`, `body`, `filter`), for the error body.
    pub field: &'static str,
    /// The error code of the api's answer.
    pub code: &'static str,
    /// What is wrong, naming the path inside the field.
    pub message: String,
}

/// The request one event becomes for one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The HTTP method.
    pub method: Method,
    /// The exact bytes to send and sign; empty for `GET`.
    pub body: Vec<u8>,
    /// The `Content-Type` header; empty for `GET`, which sends no body.
    pub content_type: &'static str,
    /// Form-encoded fields appended to the URL's query (`GET` only).
    pub query: String,
}

/// Compiled delivery options.
#[derive(Debug)]
pub struct DeliveryPlan {
    method: Method,
    format: BodyFormat,
    templated: bool,
    template: BodyTemplate,
    filter: Option<Filter>,
}

impl DeliveryPlan {
    /// Compiles every option; the first that does not is the error.
    pub fn compile(options: &DeliveryOptions, limits: Limits) -> Result<Self, OptionError> {
        let body = options.body.clone().unwrap_or_default();
        let template = BodyTemplate::compile(body.format.into(), body.template.as_ref(), limits)
            .map_err(|e| OptionError {
                field: "body",
                code: "invalid_body",
                message: e.to_string(),
            })?;
        let filter = options
            .filter
            .as_deref()
            .map(Filter::compile)
            .transpose()
            .map_err(|e| OptionError {
                field: "filter",
                code: "invalid_filter",
                message: format!("filter: {e}"),
            })?;
        Ok(DeliveryPlan {
            method: options.method.unwrap_or_default(),
            format: body.format,
            templated: body.template.is_some(),
            template,
            filter,
        })
    }

    /// Compiles the stored `options` column.
    pub fn from_stored(options: &Value, limits: Limits) -> Result<Self, OptionError> {
        let options = DeliveryOptions::from_stored(options).map_err(|e| OptionError {
            field: "options",
            code: "invalid_options",
            message: format!("stored options: {e}"),
        })?;
        Self::compile(&options, limits)
    }

    /// A plain `POST` of the standard JSON body: fanout shares one body
    /// among every such subscription of an event.
    pub fn is_standard(&self) -> bool {
        self.method == Method::Post
            && self.format == BodyFormat::Json
            && !self.templated
            && self.filter.is_none()
    }

    /// Whether the body is the standard one, whatever the filter says.
    pub fn sends_standard_body(&self) -> bool {
        self.method == Method::Post && self.format == BodyFormat::Json && !self.templated
    }

    /// Whether it has a filter, so the caller converts the envelope for it
    /// only when some subscription needs it.
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Whether the event passes the filter; `true` without one.
    pub fn admits(&self, input: &FilterInput) -> Result<bool, FilterError> {
        match &self.filter {
            Some(filter) => filter.admits(input),
            None => Ok(true),
        }
    }

    /// The request for one event; `envelope` is the standard delivery
    /// body, which is also the templates' context.
    pub fn request(&self, envelope: &Value, limits: Limits) -> Result<Request, RenderError> {
        let rendered = self.template.render(envelope, limits)?;
        if self.method != Method::Get {
            return Ok(Request {
                method: self.method,
                body: rendered.body,
                content_type: rendered.content_type,
                query: String::new(),
            });
        }
        let query = match self.format {
            BodyFormat::Form => String::from_utf8(rendered.body).unwrap_or_default(),
            BodyFormat::Json => {
                let value: Value = serde_json::from_slice(&rendered.body).unwrap_or(Value::Null);
                let fields = match value {
                    Value::Object(_) | Value::Array(_) => form::flatten(&value),
                    Value::Null => Vec::new(),
                    Value::String(text) => vec![("value".to_string(), text)],
                    other => vec![("value".to_string(), other.to_string())],
                };
                form::form_body(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            }
        };
        Ok(Request {
            method: Method::Get,
            body: Vec::new(),
            content_type: "",
            query,
        })
    }
}

/// `url` with `query` appended to its own query, if any.
pub fn with_query(url: &str, query: &str) -> String {
    if query.is_empty() {
        return url.to_string();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let joiner = if base.contains('?') {
        if base.ends_with('?') || base.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    let mut out = format!("{base}{joiner}{query}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope() -> Value {
        json!({"type": "lead.created", "timestamp": "2026-01-14T12:00:00.000Z",
               "tenant": "acme", "id": "evt_1",
               "data": {"contact": {"email": "a@b.c"}, "tags": ["x", "y"]}})
    }

    fn compile(options: Value) -> Result<DeliveryPlan, OptionError> {
        DeliveryPlan::compile(&serde_json::from_value(options).unwrap(), Limits::default())
    }

    #[test]
    fn no_options_is_the_standard_post() {
        let plan = compile(json!({})).unwrap();
        assert!(plan.is_standard());
        let request = plan.request(&envelope(), Limits::default()).unwrap();
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.content_type, "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&request.body).unwrap(),
            envelope()
        );
    }

    #[test]
    fn get_puts_the_fields_in_the_query_and_sends_no_body() {
        let plan = compile(json!({"method": "GET",
            "body": {"format": "form", "template": {"email": "{{ data.contact.email }}"}}}))
        .unwrap();
        let request = plan.request(&envelope(), Limits::default()).unwrap();
        assert!(request.body.is_empty());
        assert_eq!(request.query, "email=a%40b.c");
        let standard = compile(json!({"method": "GET"})).unwrap();
        let request = standard.request(&envelope(), Limits::default()).unwrap();
        assert!(
            request.query.contains("data%5Btags%5D%5B1%5D=y"),
            "{}",
            request.query
        );
    }

    #[test]
    fn a_query_is_appended_to_the_urls_own() {
        assert_eq!(with_query("https://h/p", "a=1"), "https://h/p?a=1");
        assert_eq!(with_query("https://h/p?k=v", "a=1"), "https://h/p?k=v&a=1");
        assert_eq!(
            with_query("https://h/p?k=v#f", "a=1"),
            "https://h/p?k=v&a=1#f"
        );
        assert_eq!(with_query("https://h/p", ""), "https://h/p");
    }

    #[test]
    fn each_option_error_names_its_field() {
        let body = compile(json!({"body": {"template": {"x": "{{ data."}}})).unwrap_err();
        assert_eq!(body.field, "body");
        assert!(
            body.message.starts_with("body.template.x"),
            "{}",
            body.message
        );
        let filter = compile(json!({"filter": "data.amount >"})).unwrap_err();
        assert_eq!(filter.code, "invalid_filter");
    }
}
