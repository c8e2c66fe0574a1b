//! Logging: one `tracing` subscriber, JSON lines by default (journald and collectors read them),
//! or human-readable lines. Log fields carry ids, never secrets or personal data.
//!
//! Lines are written by a background thread (`tracing-appender`), so a request never waits on a
//! `write(2)` to stderr; under extreme load, lines beyond its buffer are dropped rather than
//! slowing requests down.

pub mod metrics;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Keep the guard until exit: dropping it flushes the last lines.
/// A second call (tests) installs nothing.
pub fn init(config: &LogConfig) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(writer);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    guard
}
