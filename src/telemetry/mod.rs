//! Logging and tracing: one `tracing` subscriber, JSON lines by default (journald and collectors
//! read them) or human-readable lines, plus OpenTelemetry spans over OTLP when
//! `log.otlp_endpoint` is set. Log fields carry ids, never secrets or personal data.
//!
//! Lines are written by a background thread (`tracing-appender`), so a request never waits on a
//! `write(2)` to stderr; under extreme load, lines beyond its buffer are dropped rather than
//! slowing requests down.

pub mod metrics;
pub mod otlp;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat};

/// Keeps logging and tracing alive; dropping it flushes the last lines and spans.
pub struct TelemetryGuard {
    _log: WorkerGuard,
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.traces.take() {
            if let Err(e) = p.shutdown() {
                eprintln!("flushing traces failed: {e}");
            }
        }
    }
}

/// Installs the global subscriber. Keep the guard until exit. A second call (tests) installs
/// nothing.
pub fn init(config: &LogConfig) -> TelemetryGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    // tokio-postgres logs every statement's parameters at debug: personal data never reaches
    // the log, whatever level the operator asks for.
    let filter = EnvFilter::try_new(format!("{},tokio_postgres=info", config.level))
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=info"));
    let lines = match config.format {
        LogFormat::Json => fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
        LogFormat::Pretty => fmt::layer().with_writer(writer).boxed(),
    };
    let (traces, otel) = match config.otlp_endpoint.as_deref().map(otlp::provider) {
        Some(Ok((provider, tracer))) => (
            Some(provider),
            // Only kycd's own spans: requests, jobs, pipeline steps.
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(EnvFilter::new("kycd=info")),
            ),
        ),
        Some(Err(e)) => {
            eprintln!("OTLP exporter not started: {e}");
            (None, None)
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(otel)
        .try_init();
    TelemetryGuard {
        _log: guard,
        traces,
    }
}
