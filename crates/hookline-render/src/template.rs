//! Compiling a `body.template` once and rendering it per event.

use std::io;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use crate::form;

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`; the template is any JSON value.
    Json,
    /// `application/x-www-form-urlencoded`; the template is an object of
    /// field name to template string.
    Form,
}

impl Format {
    /// The `Content-Type` this format is sent with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Form => "application/x-www-form-urlencoded",
        }
    }
}

/// Bounds of one render, so that no template can stall a worker or fill
/// its memory.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// minijinja instructions per render; a loop that runs out of fuel ends
    /// the render.
    pub fuel: u64,
    /// Bytes the rendered body may reach.
    pub max_bytes: usize,
}

impl Default for Limits {
    /// Generous for any mapping of fields (a few thousand instructions), far
    /// below what would take a worker more than milliseconds.
    fn default() -> Self {
        Limits {
            fuel: 100_000,
            max_bytes: 1024 * 1024,
        }
    }
}

/// A template that does not compile, with the JSON path of the string at
/// fault, for the api's `422`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TemplateError {
    /// Such as `body.template.contact.email`.
    pub path: String,
    /// What the parser said.
    pub message: String,
}

/// Why one render failed: the attempt fails with this text in history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The template ran out of fuel, or raised an error (a filter on the
    /// wrong type, say).
    #[error("template {path}: {message}")]
    Template {
        /// The template string's path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The body would be over [`Limits::max_bytes`].
    #[error("the rendered body is over the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// A rendered body and how to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The exact bytes to send (and sign).
    pub body: Vec<u8>,
    /// The `Content-Type` header.
    pub content_type: &'static str,
}

/// One node of a compiled JSON template.
#[derive(Debug)]
enum Node {
    /// No merge field: copied as it is.
    Literal(Value),
    /// A string with merge fields, rendered as text; the template's name.
    Text(String),
    /// A string that is exactly one `{{ … }}`: its value with its JSON type.
    Typed(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// A compiled `body` option: built once per subscription revision.
pub struct BodyTemplate {
    format: Format,
    env: Environment<'static>,
    /// `None`: the standard body (flattened for `form`).
    root: Option<Node>,
}

impl std::fmt::Debug for BodyTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyTemplate")
            .field("format", &self.format)
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl BodyTemplate {
    /// Compiles `template` (absent: the standard body) for `format`.
    pub fn compile(
        format: Format,
        template: Option<&Value>,
        limits: Limits,
    ) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        // `{{ data.contact.email }}` on an event without a contact renders
        // empty (or `null` when typed) instead of failing the delivery.
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(limits.fuel));
        let mut compiler = Compiler { env: &mut env };
        let root = match (format, template) {
            (_, None) => None,
            (Format::Form, Some(Value::Object(fields))) => {
                let mut nodes = Vec::with_capacity(fields.len());
                for (name, value) in fields {
                    let path = format!("body.template.{name}");
                    let Value::String(source) = value else {
                        return Err(TemplateError {
                            path,
                            message: "a form field's template must be a string".into(),
                        });
                    };
                    nodes.push((name.clone(), compiler.text(path, source)?));
                }
                Some(Node::Object(nodes))
            }
            (Format::Form, Some(_)) => {
                return Err(TemplateError {
                    path: "body.template".into(),
                    message: "a form template must be an object of field name to template".into(),
                })
            }
            (Format::Json, Some(value)) => Some(compiler.node("body.template".into(), value)?),
        };
        Ok(BodyTemplate { format, env, root })
    }

    /// The body for one event: `envelope` is the standard delivery body,
    /// `{"type", "timestamp", "tenant", "id", "data"}`, which is also the
    /// templates' context.
    pub fn render(&self, envelope: &Value, limits: Limits) -> Result<Rendered, RenderError> {
        let mut budget = Budget {
            left: limits.max_bytes,
            limit: limits.max_bytes,
        };
        let body = match (&self.root, self.format) {
            (None, Format::Json) => serde_json::to_vec(envelope).unwrap_or_default(),
            (None, Format::Form) => {
                let fields = form::flatten(envelope);
                form::form_body(fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))).into_bytes()
            }
            (Some(root), Format::Json) => {
                let value = self.value(root, envelope, &mut budget)?;
                serde_json::to_vec(&value).unwrap_or_default()
            }
            (Some(Node::Object(fields)), Format::Form) => {
                let mut rendered = Vec::with_capacity(fields.len());
                for (name, node) in fields {
                    let text = match self.value(node, envelope, &mut budget)? {
                        Value::String(s) => s,
                        // A missing or null field is an empty form value,
                        // as in a text template, never the word `null`.
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    rendered.push((name.as_str(), text));
                }
                form::form_body(rendered.iter().map(|(k, v)| (*k, v.as_str()))).into_bytes()
            }
            (Some(_), Format::Form) => Vec::new(),
        };
        if body.len() > limits.max_bytes {
            return Err(RenderError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        Ok(Rendered {
            body,
            content_type: self.format.content_type(),
        })
    }

    fn value(&self, node: &Node, ctx: &Value, budget: &mut Budget) -> Result<Value, RenderError> {
        Ok(match node {
            Node::Literal(value) => value.clone(),
            Node::Text(name) => Value::String(self.run(name, ctx, budget)?),
            Node::Typed(name) => {
                let json = self.run(name, ctx, budget)?;
                serde_json::from_str(&json).unwrap_or(Value::Null)
            }
            Node::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|item| self.value(item, ctx, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Node::Object(fields) => {
                let mut map = Map::new();
                for (key, node) in fields {
                    map.insert(key.clone(), self.value(node, ctx, budget)?);
                }
                Value::Object(map)
            }
        })
    }

    /// Renders the template `name` into the shared output budget.
    fn run(&self, name: &str, ctx: &Value, budget: &mut Budget) -> Result<String, RenderError> {
        let failed = |message: String| RenderError::Template {
            path: name.to_string(),
            message,
        };
        let template = self
            .env
            .get_template(name)
            .map_err(|e| failed(e.to_string()))?;
        let mut out = Bounded {
            buffer: Vec::new(),
            budget,
        };
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.buffer).map_err(|e| failed(e.to_string())),
            Err(_) if out.budget.left == 0 => Err(RenderError::TooLarge {
                limit: out.budget.limit,
            }),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}

/// Walks a JSON template and adds each string with merge fields to the
/// environment under its path.
struct Compiler<'a> {
    env: &'a mut Environment<'static>,
}

impl Compiler<'_> {
    fn node(&mut self, path: String, value: &Value) -> Result<Node, TemplateError> {
        Ok(match value {
            Value::String(source) => self.text(path, source)?,
            Value::Array(items) => Node::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.node(format!("{path}[{i}]"), item))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Node::Object(
                map.iter()
                    .map(|(key, item)| Ok((key.clone(), self.node(format!("{path}.{key}"), item)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => Node::Literal(other.clone()),
        })
    }

    fn text(&mut self, path: String, source: &str) -> Result<Node, TemplateError> {
        if !source.contains("{{") && !source.contains("{%") && !source.contains("{#") {
            return Ok(Node::Literal(Value::String(source.to_string())));
        }
        let (typed, compiled) = match single_expression(source) {
            // Parenthesised so that a filter chain applies whole.
            Some(expr) => (true, format!("{{{{ ({expr}) | tojson }}}}")),
            None => (false, source.to_string()),
        };
        self.env
            .add_template_owned(path.clone(), compiled)
            .map_err(|e| TemplateError {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(if typed {
            Node::Typed(path)
        } else {
            Node::Text(path)
        })
    }
}

/// The expression of a string that is exactly one `{{ … }}`.
fn single_expression(source: &str) -> Option<&str> {
    let inner = source.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.trim_start_matches('-').trim_end_matches('-').trim();
    let plain = !inner.is_empty() && !inner.contains("{{") && !inner.contains("}}");
    plain.then_some(inner)
}

/// Bytes left for all the template strings of one render together.
struct Budget {
    left: usize,
    limit: usize,
}

/// A writer that refuses to grow past the budget, which aborts the render
/// the moment a template tries to.
struct Bounded<'a> {
    buffer: Vec<u8>,
    budget: &'a mut Budget,
}

impl io::Write for Bounded<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if bytes.len() > self.budget.left {
            self.budget.left = 0;
            return Err(io::Error::other("output limit"));
        }
        self.budget.left -= bytes.len();
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
