//! Logging and tracing setup: `RUST_LOG` filter, JSON or pretty output,
//! and, when `telemetry.otlp_endpoint` is set, OpenTelemetry spans exported
//! over OTLP/HTTP.
//!
//! The spans of one event form one trace: each hop starts its span with
//! [`continue_trace`] under the context the previous hop wrote (the AMQP
//! `traceparent` header, a task's `traceparent` field) and passes its own
//! context on. With export off the same function still hands out child
//! contexts, so the outgoing webhook's `traceparent` is right either way.

use std::sync::atomic::{AtomicBool, Ordering};

use hookline_config::{LogFormat, LogSettings, TelemetrySettings};
use hookline_model::trace::TraceParent;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter, EnvFilter, Layer};

/// Set once an exporter is installed: only then does a span have an
/// OpenTelemetry context worth passing on.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Why tracing could not be set up (a bad endpoint, an exporter that would
/// not build): start-up stops and names `telemetry.otlp_endpoint`.
#[derive(Debug, thiserror::Error)]
#[error("telemetry.otlp_endpoint: {0}")]
pub struct TelemetryError(String);

/// Flushes the spans still buffered when the process ends; keep it alive
/// for as long as the services run, and drop it outside the async runtime
/// (the exporter's blocking HTTP client must not be dropped inside one).
#[must_use = "dropping the guard stops the exporter"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            EXPORTING.store(false, Ordering::Relaxed);
            if let Err(error) = provider.shutdown() {
                eprintln!("hookline: flushing the last spans failed: {error}");
            }
        }
    }
}

/// Installs logging and, with an endpoint set, span export under the name
/// `service` (`hookline-fanout`, or `hookline` for `hookline all`). Call it
/// once, before the async runtime starts.
pub fn init(
    log: &LogSettings,
    telemetry: &TelemetrySettings,
    service: &str,
) -> Result<TelemetryGuard, TelemetryError> {
    let Some(endpoint) = &telemetry.otlp_endpoint else {
        let _ = tracing_subscriber::registry()
            .with(fmt_layer(log))
            .try_init();
        return Ok(TelemetryGuard { provider: None });
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(endpoint))
        .build()
        .map_err(|e| TelemetryError(e.to_string()))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service.to_string())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("hookline");
    // Spans only, and only Hookline's: log lines stay in the log, and a
    // `RUST_LOG=warn` does not switch tracing off.
    let spans_only =
        filter::filter_fn(|meta| meta.is_span() && meta.target().starts_with("hookline"));
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // The attributes a trace reader needs are Hookline's own; thread
        // ids and busy/idle times are noise on every span.
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_filter(spans_only);
    tracing_subscriber::registry()
        .with(fmt_layer(log))
        .with(otel)
        .try_init()
        .map_err(|e| TelemetryError(format!("a tracing subscriber is already installed: {e}")))?;
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

/// The log lines, filtered by `RUST_LOG` (or `log.level`) on their own so
/// that the filter does not decide which spans are exported.
fn fmt_layer<S>(log: &LogSettings) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    match log.format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_filter(filter).boxed(),
    }
}

/// `http://collector:4318` becomes `http://collector:4318/v1/traces`; a URL
/// with its own path is used as written.
fn traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') {
        trimmed.to_string()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// Makes `span` this hop's span of the event's trace: a child of `parent`
/// (the context the previous hop wrote) or the root of a new trace, and
/// returns the context to pass on to the next hop. Call it before the span
/// is entered.
pub fn continue_trace(span: &tracing::Span, parent: Option<TraceParent>) -> TraceParent {
    attach(span, parent).unwrap_or_else(|| parent.map_or_else(TraceParent::new_root, |p| p.child()))
}

/// Parents `span` on `parent` when spans are exported, and returns the
/// span's own context then; `None` when nothing is exported (the last hop,
/// which passes nothing on, needs no made-up context).
pub fn attach(span: &tracing::Span, parent: Option<TraceParent>) -> Option<TraceParent> {
    if !EXPORTING.load(Ordering::Relaxed) || span.is_disabled() {
        return None;
    }
    if let Some(parent) = parent {
        let (trace_id, span_id, flags) = parent.parts();
        let remote = SpanContext::new(
            TraceId::from_bytes(trace_id),
            SpanId::from_bytes(span_id),
            TraceFlags::new(flags),
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    let context = span.context();
    let own_span = context.span();
    let own = own_span.span_context();
    TraceParent::from_parts(
        own.trace_id().to_bytes(),
        own.span_id().to_bytes(),
        own.trace_flags().to_u8(),
    )
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn a_bare_endpoint_gets_the_traces_path_and_a_full_one_is_kept() {
        assert_eq!(
            traces_url("http://jaeger:4318"),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://jaeger:4318/"),
            "http://jaeger:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/custom/traces"),
            "https://otel.example/custom/traces"
        );
    }
}
