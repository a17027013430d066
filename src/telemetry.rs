//! Logging: a tracing subscriber with an env filter, writing text or JSON lines.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, LogFormat, LogSettings};

/// Installs the global subscriber. A filter that does not parse is a bad `RUST_LOG`.
pub fn init(log: &LogSettings) -> Result<(), ConfigError> {
    let filter = EnvFilter::try_new(&log.filter).map_err(|err| ConfigError {
        setting: "RUST_LOG",
        problem: err.to_string(),
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // A second call (tests start many apps in one process) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    Ok(())
}
