//! Progress and logs on stderr through `tracing`: plain lines or JSON lines.

use tracing_subscriber::{
    EnvFilter, Layer as _, filter::Targets, fmt, fmt::writer::BoxMakeWriter,
    layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

use crate::progress::{self, ProgressLayer, Terminal};

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
///
/// `progress`: the run is one a person follows (`soar-imap poll`); when stderr is a
/// terminal it also gets the poll's progress line under the log lines (see
/// [`crate::progress`]). Keep the returned guard until the run ends: dropping it ends
/// that line.
pub fn init(format: LogFormat, progress: bool) -> LogGuard {
    let mut filter =
        EnvFilter::try_from_env("SOAR_IMAP_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Whatever level is asked for: the HTTP layer's trace output dumps token requests
    // (client secret, refresh token) byte for byte, so it never reaches the log.
    let mut fixed = vec!["ureq_proto=off", "ureq=warn"];
    // The poll's per-batch progress events are for the progress line: a log gets them
    // only when they are asked for by name (`SOAR_IMAP_LOG=info,soar_imap::progress=debug`),
    // so a `debug` log stays what it was.
    let asked = std::env::var("SOAR_IMAP_LOG").unwrap_or_default();
    if !asked.contains(progress::TARGET) {
        fixed.push("soar_imap::progress=off");
    }
    for directive in fixed {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    // Colour and the progress line only for a person at a terminal; platforms capture
    // stderr into log files, which get the log lines alone.
    let terminal_stderr = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let terminal = (progress && terminal_stderr).then(Terminal::stderr);
    let writer = match &terminal {
        Some(terminal) => BoxMakeWriter::new(terminal.log_writer()),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let logs = fmt::layer()
        .with_writer(writer)
        .with_ansi(terminal_stderr)
        .with_target(false);
    let logs = match format {
        LogFormat::Text => logs.without_time().boxed(),
        LogFormat::Json => logs.json().flatten_event(true).boxed(),
    };
    // Each layer filters for itself: the progress events are `debug`, below the log's
    // default level, and the progress line takes nothing else.
    let progress_line = terminal.clone().map(|terminal| {
        ProgressLayer::new(terminal)
            .with_filter(Targets::new().with_target(progress::TARGET, tracing::Level::DEBUG))
    });
    // try_init fails only if a subscriber is already set (tests); that one stays.
    let _ = tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(progress_line)
        .try_init();
    LogGuard(terminal)
}

/// Ends the progress line, if one was drawn, when the run is over.
#[must_use = "the progress line is ended when the guard is dropped"]
pub struct LogGuard(Option<Terminal>);

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(terminal) = &self.0 {
            terminal.finish();
        }
    }
}
