//! Progress and logs on stderr through `tracing`: plain lines or JSON lines.

use tracing_subscriber::{EnvFilter, fmt};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, like the reference's progress messages.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Install the stderr subscriber. `SOAR_IMAP_LOG` (an `EnvFilter` directive such as
/// `debug` or `soar_imap=trace`) overrides the default `info` level.
pub fn init(format: LogFormat) {
    let mut filter =
        EnvFilter::try_from_env("SOAR_IMAP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Whatever level is asked for: the HTTP layer's trace output dumps token requests
    // (client secret, refresh token) byte for byte, so it never reaches the log.
    for directive in ["ureq_proto=off", "ureq=warn"] {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    // Colour only for a person at a terminal; platforms capture stderr into log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false);
    // try_init fails only if a subscriber is already set (tests); that one stays.
    let _ = match format {
        LogFormat::Text => builder.without_time().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
