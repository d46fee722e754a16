//! The progress line of a poll run by a person at a terminal: one line at the bottom of
//! stderr, redrawn after every committed batch, with the log lines scrolling above it.
//!
//! The poll reports each committed batch as a `debug` event of target [`TARGET`]
//! (`src/actions/poll_batches.rs`); [`ProgressLayer`] draws it. Log lines are written
//! through [`Terminal::log_writer`], which takes the progress line down, writes the log
//! line and puts the progress line back under it, so neither mangles the other.
//! `logging::init` installs both only for a `poll` whose stderr is a terminal: anywhere
//! else stderr carries the log lines alone, as it always did.

use std::{
    fmt,
    io::Write,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use tracing::{
    Event, Subscriber,
    field::{Field, Visit},
};
use tracing_subscriber::{
    fmt::MakeWriter,
    layer::{Context, Layer},
};

/// The target of the poll's per-batch progress events.
pub const TARGET: &str = "soar_imap::progress";

/// Go to the start of the line and erase it.
const CLEAR: &str = "\r\x1b[2K";
/// Autowrap off while the line is drawn: a line wider than the terminal is cut at its
/// edge instead of wrapping onto a second row, which [`CLEAR`] would leave behind.
const NO_WRAP: &str = "\x1b[?7l";
/// Autowrap back on.
const WRAP: &str = "\x1b[?7h";

/// A poll's counts so far, as its progress event carries them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Emails the poll takes.
    pub found: u64,
    /// Ingested as new containers.
    pub ingested: u64,
    /// Found already ingested.
    pub duplicates: u64,
    /// Failed (recorded with their reason).
    pub failed: u64,
    /// Bytes fetched.
    pub bytes: u64,
}

impl Visit for Counts {
    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "found" => self.found = value,
            "ingested" => self.ingested = value,
            "duplicates" => self.duplicates = value,
            "failed" => self.failed = value,
            "bytes" => self.bytes = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_debug(&mut self, _: &Field, _: &dyn fmt::Debug) {}
}

/// The line for `counts` after `elapsed`:
/// `ingested 1,200 of 2,000 emails (0 already ingested, 0 failed), 14.2 MB, 850 emails/s`.
pub fn render(counts: &Counts, elapsed: Duration) -> String {
    let done = counts.ingested + counts.duplicates + counts.failed;
    // Tenths, in integers: exact, and no float casts.
    let millis = elapsed.as_millis().max(1);
    let rate_tenths = u128::from(done) * 10_000 / millis;
    let rate = if rate_tenths < 100 {
        format!("{}.{}", rate_tenths / 10, rate_tenths % 10)
    } else {
        grouped(u64::try_from(rate_tenths / 10).unwrap_or(u64::MAX))
    };
    let mb_tenths = (counts.bytes + 50_000) / 100_000;
    format!(
        "ingested {} of {} emails ({} already ingested, {} failed), {}.{} MB, {rate} emails/s",
        grouped(counts.ingested),
        grouped(counts.found),
        grouped(counts.duplicates),
        grouped(counts.failed),
        grouped(mb_tenths / 10),
        mb_tenths % 10,
    )
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() * 4 / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// What is on the terminal: where it goes, and the progress line now at its bottom.
struct Screen {
    out: Box<dyn Write + Send>,
    line: Option<String>,
}

impl Screen {
    /// Write `text` whole, ignoring errors: a terminal that cannot take stderr has no one
    /// to tell, and the run's response on stdout does not depend on it.
    fn put(&mut self, text: &[u8]) {
        let _ = self.out.write_all(text);
        let _ = self.out.flush();
    }

    fn drawn(line: &str) -> String {
        format!("{NO_WRAP}{line}{WRAP}")
    }
}

/// The terminal the progress line and the log lines share; clones share it.
#[derive(Clone)]
pub struct Terminal(Arc<Mutex<Screen>>);

impl Terminal {
    /// The process's stderr.
    pub fn stderr() -> Self {
        Self::to(Box::new(std::io::stderr()))
    }

    /// Any writer (tests).
    pub fn to(out: Box<dyn Write + Send>) -> Self {
        Self(Arc::new(Mutex::new(Screen { out, line: None })))
    }

    fn screen(&self) -> std::sync::MutexGuard<'_, Screen> {
        // A panic elsewhere while drawing leaves a screen that is still usable.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Replace the progress line with `line`.
    pub fn show(&self, line: String) {
        let mut screen = self.screen();
        let text = format!("{CLEAR}{}", Screen::drawn(&line));
        screen.put(text.as_bytes());
        screen.line = Some(line);
    }

    /// Write a whole log line above the progress line.
    pub fn above(&self, log_line: &[u8]) {
        let mut screen = self.screen();
        let Some(line) = screen.line.clone() else {
            screen.put(log_line);
            return;
        };
        let mut text = CLEAR.as_bytes().to_vec();
        text.extend_from_slice(log_line);
        text.extend_from_slice(Screen::drawn(&line).as_bytes());
        screen.put(&text);
    }

    /// Leave the progress line as it last was and end it, for what follows the run.
    pub fn finish(&self) {
        let mut screen = self.screen();
        if screen.line.take().is_some() {
            screen.put(b"\n");
        }
    }

    /// The writer of the log lines, each of them written above the progress line.
    pub fn log_writer(&self) -> LogWriter {
        LogWriter(self.clone())
    }
}

/// Makes the writer of one log line (see [`Terminal::log_writer`]).
pub struct LogWriter(Terminal);

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            terminal: self.0.clone(),
            text: Vec::new(),
        }
    }
}

/// One log line, collected and written above the progress line when it is complete (the
/// formatter may write it in pieces).
pub struct LogLine {
    terminal: Terminal,
    text: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if !self.text.is_empty() {
            self.terminal.above(&self.text);
        }
    }
}

/// Draws the progress line from the poll's progress events.
pub struct ProgressLayer {
    terminal: Terminal,
    started: Instant,
}

impl ProgressLayer {
    /// Draw on `terminal`; rates count from now (about the start of the run).
    pub fn new(terminal: Terminal) -> Self {
        Self {
            terminal,
            started: Instant::now(),
        }
    }
}

impl<S: Subscriber> Layer<S> for ProgressLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != TARGET {
            return;
        }
        let mut counts = Counts::default();
        event.record(&mut counts);
        self.terminal.show(render(&counts, self.started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt as _};

    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn the_line_says_how_far_the_poll_is_and_how_fast() {
        let counts = Counts {
            found: 2000,
            ingested: 1200,
            duplicates: 0,
            failed: 0,
            bytes: 14_200_000,
        };
        assert_eq!(
            render(&counts, Duration::from_millis(1412)),
            "ingested 1,200 of 2,000 emails (0 already ingested, 0 failed), 14.2 MB, 849 emails/s"
        );
        let slow = Counts {
            found: 1_234_567,
            ingested: 3,
            duplicates: 1,
            failed: 1,
            bytes: 1_234_567_890,
        };
        assert_eq!(
            render(&slow, Duration::from_secs(2)),
            "ingested 3 of 1,234,567 emails (1 already ingested, 1 failed), 1,234.6 MB, 2.5 emails/s"
        );
        assert!(render(&Counts::default(), Duration::ZERO).ends_with(", 0.0 MB, 0.0 emails/s"));
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(grouped(n), text);
        }
    }

    #[test]
    fn log_lines_go_above_the_progress_line_and_the_run_ends_it() {
        let captured = Captured::default();
        let terminal = Terminal::to(Box::new(captured.clone()));
        // Before any progress, a log line is written as it is.
        terminal.above(b"INFO first\n");
        terminal.show("ingested 50 of 100".into());
        terminal.above(b"INFO second\n");
        terminal.show("ingested 100 of 100".into());
        terminal.finish();
        // Nothing to end twice.
        terminal.finish();
        assert_eq!(
            captured.text(),
            "INFO first\n\
             \r\x1b[2K\x1b[?7lingested 50 of 100\x1b[?7h\
             \r\x1b[2KINFO second\n\x1b[?7lingested 50 of 100\x1b[?7h\
             \r\x1b[2K\x1b[?7lingested 100 of 100\x1b[?7h\n"
        );
    }

    #[test]
    fn the_layer_draws_progress_events_and_the_writer_keeps_log_lines_whole() {
        let captured = Captured::default();
        let terminal = Terminal::to(Box::new(captured.clone()));
        let logs = tracing_subscriber::fmt::layer()
            .with_writer(terminal.log_writer())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO);
        let progress = ProgressLayer::new(terminal.clone())
            .with_filter(Targets::new().with_target(TARGET, tracing::Level::DEBUG));
        let subscriber = tracing_subscriber::registry().with(logs).with(progress);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("Parsing email uid: 1");
            tracing::debug!(target: TARGET, found = 2_usize, ingested = 1_usize,
                duplicates = 0_usize, failed = 0_usize, bytes = 2_000_000_u64, "progress");
            tracing::info!("Parsing email uid: 2");
            tracing::debug!("not shown at the info level");
        });
        terminal.finish();
        let text = captured.text();
        // The log lines are whole and the progress event is not one of them.
        let lines: Vec<&str> = text.split(['\r', '\n']).collect();
        assert!(lines.contains(&" INFO Parsing email uid: 1"), "{text:?}");
        assert!(
            lines.contains(&"\x1b[2K INFO Parsing email uid: 2"),
            "{text:?}"
        );
        assert!(
            !text.contains("not shown") && !text.contains("progress"),
            "{text:?}"
        );
        // The progress line is redrawn under the second log line, and ended by finish.
        let line = "\x1b[?7lingested 1 of 2 emails (0 already ingested, 0 failed), 2.0 MB, ";
        assert_eq!(text.matches(line).count(), 2, "{text:?}");
        assert!(text.ends_with("emails/s\x1b[?7h\n"), "{text:?}");
    }
}
