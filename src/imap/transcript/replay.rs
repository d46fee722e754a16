//! Replaying a transcript: [`Replay`] loads and checks the file, each [`ReplayStream`]
//! plays the server side of one recorded connection and checks the client's side.
//!
//! The transcript is parsed once into one byte buffer (the decoded pieces, back to back)
//! and a list of small events pointing into it, so a 100 MB recording costs about its
//! size in memory and every operation is linear.
//!
//! A stream serves recorded server bytes while the transcript's next event is server
//! data, and compares each line the client completes with the next client piece. The
//! first difference fails the stream (every later call fails the same way) and is kept for
//! [`Replay::finish`], so a run that swallows the I/O error still fails.

use std::{
    cell::RefCell,
    fmt,
    fs::File,
    io::{self, BufRead, BufReader, Read, Write},
    mem,
    ops::Range,
    path::Path,
    rc::Rc,
};

use super::{
    format::{self, HEADER, HEADER_PREFIX, Line, REDACTED, Side},
    redact::Redactor,
};

/// What an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Bytes the server sent.
    Server,
    /// A piece the client sent: a line up to `\n`, or bytes it sent before reading.
    Client,
    /// The server closed the connection (`S! EOF`).
    Eof,
    /// A read failed (`S! error Kind: message`; the message is the event's bytes).
    Error(io::ErrorKind),
}

/// One line of a connection's conversation: 16 bytes, as a long poll has millions.
/// Its bytes follow those of the event before it in [`Transcript::data`], so a replay
/// tracks their start as it goes rather than storing it.
#[derive(Clone, Copy, Debug)]
struct Event {
    kind: Kind,
    /// Line number in the file.
    line: u32,
    /// Number of bytes.
    len: u32,
    /// Where a client piece's `\<redacted>` stood, in its bytes; [`NO_MARKER`] if none.
    marker: u32,
}

// Kept small on purpose (see above).
const _: () = assert!(size_of::<Event>() == 16);

/// [`Event::marker`] of an event without a redaction marker.
const NO_MARKER: u32 = u32::MAX;

impl Event {
    fn marker(&self) -> Option<usize> {
        (self.marker != NO_MARKER).then(|| to_usize(self.marker))
    }
}

/// One recorded connection.
#[derive(Debug)]
struct Connection {
    mode: String,
    /// Line number of its `== connection` header.
    line: u32,
    /// Line number of its last line.
    last_line: u32,
    notes: Vec<(String, String)>,
    /// Its events, in [`Transcript::events`].
    events: Range<usize>,
    /// Where the bytes of its first event start in [`Transcript::data`].
    data: usize,
}

/// A parsed transcript.
#[derive(Debug)]
struct Transcript {
    /// The file, as messages name it.
    name: String,
    data: Vec<u8>,
    events: Vec<Event>,
    connections: Vec<Connection>,
}

/// How a digest failure ends: what to do about it.
const EDIT_HINT: &str = "an edited transcript replays only without its \"== digests\" block, so delete that block to replay edits on purpose";

fn to_usize(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Transcript {
    /// The event at `pos` if it still belongs to `connection`.
    fn next_event(&self, connection: usize, pos: usize) -> Option<&Event> {
        let end = self.connections.get(connection).map_or(0, |c| c.events.end);
        self.events.get(pos).filter(|_| pos < end)
    }

    /// The bytes of `event`, which start at `start`.
    fn bytes(&self, start: usize, event: &Event) -> &[u8] {
        let end = start.saturating_add(to_usize(event.len));
        self.data.get(start..end).unwrap_or_default()
    }

    /// An event (whose bytes start at `start`) as its transcript line reads, shortened.
    fn show(&self, start: usize, event: &Event) -> String {
        let bytes = self.bytes(start, event);
        let text = match event.kind {
            Kind::Server | Kind::Client => {
                let side = if event.kind == Kind::Server {
                    Side::Server
                } else {
                    Side::Client
                };
                let crlf = bytes.ends_with(b"\r\n");
                let prefix = String::from_utf8_lossy(format::piece_prefix(side, crlf));
                let marker = event.marker().map(|m| m..m);
                format!("{prefix}{}", show_piece(bytes, marker, crlf))
            }
            Kind::Eof => "S! EOF".to_owned(),
            Kind::Error(kind) => format!(
                "S! error {}: {}",
                format::error_kind_name(kind),
                format::escape(bytes, true)
            ),
        };
        format::shorten(&text)
    }
}

/// A piece escaped as in a transcript line, with `hidden` (a range of its bytes) shown as
/// the redaction marker and, when `trim_crlf`, without its final CRLF.
fn show_piece(bytes: &[u8], hidden: Option<Range<usize>>, trim_crlf: bool) -> String {
    let content = if trim_crlf {
        bytes.strip_suffix(b"\r\n").unwrap_or(bytes)
    } else {
        bytes
    };
    match hidden {
        None => format::escape(content, true),
        Some(range) => {
            let start = range.start.min(content.len());
            let end = range.end.clamp(start, content.len());
            format!(
                "{}{}{}",
                format::escape(&content[..start], false),
                String::from_utf8_lossy(REDACTED),
                format::escape(&content[end..], true)
            )
        }
    }
}

/// Whether the client's `sent` piece is the recorded `expected` one; a marker matches
/// any bytes.
fn same_piece(expected: &[u8], marker: Option<usize>, sent: &[u8]) -> bool {
    match marker {
        None => expected == sent,
        Some(marker) => {
            let (before, after) = expected.split_at(marker.min(expected.len()));
            sent.len() >= expected.len() && sent.starts_with(before) && sent.ends_with(after)
        }
    }
}

/// Parse and check a transcript file.
fn load(path: &Path) -> Result<Transcript, String> {
    let name = path.display().to_string();
    let file = File::open(path).map_err(|e| format!("cannot open transcript {name}: {e}"))?;
    // Decoded pieces are never longer than their lines.
    let size = file
        .metadata()
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut parser = Parser {
        t: Transcript {
            name,
            data: Vec::with_capacity(size),
            events: Vec::new(),
            connections: Vec::new(),
        },
        line: 0,
        covered: Vec::new(),
        digests: None,
    };
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let read = reader
            .read_until(b'\n', &mut raw)
            .map_err(|e| format!("cannot read transcript {}: {e}", parser.t.name))?;
        if read == 0 {
            break;
        }
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        // A checkout that turned LF into CRLF; the writer never leaves a raw CR.
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        parser.line(line)?;
    }
    parser.end()
}

/// The parse in progress.
struct Parser {
    t: Transcript,
    /// Number of the current line.
    line: u32,
    /// Line number and digest of each covered line.
    covered: Vec<(u32, [u8; 4])>,
    /// The digests block, once reached.
    digests: Option<Vec<[u8; 4]>>,
}

impl Parser {
    fn error(&self, message: impl fmt::Display) -> String {
        format!("transcript {} line {}: {message}", self.t.name, self.line)
    }

    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        self.line = self
            .line
            .checked_add(1)
            .ok_or_else(|| self.error("too many lines"))?;
        if self.line == 1 {
            return self.header(line);
        }
        if let Some(digests) = &mut self.digests {
            if line.is_empty() || line.starts_with(b"#") {
                return Ok(());
            }
            for token in line
                .split(u8::is_ascii_whitespace)
                .filter(|t| !t.is_empty())
            {
                match format::parse_digest(token) {
                    Some(digest) => digests.push(digest),
                    None => {
                        return Err(self.error(format!(
                            "only digests (8 hex digits) may follow \"== digests\", not \"{}\"",
                            format::shorten(&String::from_utf8_lossy(token))
                        )));
                    }
                }
            }
            return Ok(());
        }
        let kind = format::classify(line);
        if !matches!(kind, Line::Ignored | Line::Digests | Line::Unknown) {
            self.covered.push((self.line, format::digest(line)));
        }
        match kind {
            Line::Ignored => Ok(()),
            Line::Unknown => Err(self.error(format!(
                "\"{}\" is not a transcript line: lines start with S: S- C: C- S! @ == or #",
                format::shorten(&String::from_utf8_lossy(line))
            ))),
            Line::Digests => {
                self.close_connection();
                self.digests = Some(Vec::new());
                Ok(())
            }
            Line::Connection { number, mode } => self.connection(number, mode),
            Line::Note { key, value } => {
                let mut decoded = Vec::new();
                format::unescape_into(value, false, &mut decoded).map_err(|e| self.error(e))?;
                let key = String::from_utf8_lossy(key).into_owned();
                let value = String::from_utf8_lossy(&decoded).into_owned();
                self.current()?.notes.push((key, value));
                Ok(())
            }
            Line::Piece {
                side,
                crlf,
                content,
            } => {
                self.current()?;
                let start = self.t.data.len();
                let marker = format::unescape_into(content, side == Side::Client, &mut self.t.data)
                    .map_err(|e| self.error(e))?;
                if crlf {
                    self.t.data.extend_from_slice(b"\r\n");
                }
                if self.t.data.len() == start {
                    return Err(
                        self.error("an empty S- or C- line stands for no bytes at all; delete it")
                    );
                }
                let kind = match side {
                    Side::Server => Kind::Server,
                    Side::Client => Kind::Client,
                };
                let marker = match marker {
                    // The marker is within the line, which is checked to fit in a u32.
                    Some(m) => u32::try_from(m - start).unwrap_or(NO_MARKER),
                    None => NO_MARKER,
                };
                self.push(kind, start, marker)
            }
            Line::Eof => {
                self.current()?;
                self.push(Kind::Eof, self.t.data.len(), NO_MARKER)
            }
            Line::ReadError { kind, message } => {
                self.current()?;
                let start = self.t.data.len();
                format::unescape_into(message, false, &mut self.t.data)
                    .map_err(|e| self.error(e))?;
                self.push(Kind::Error(format::error_kind(kind)), start, NO_MARKER)
            }
        }
    }

    fn header(&self, line: &[u8]) -> Result<(), String> {
        // A byte order mark some editors add.
        let line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        if line == HEADER.as_bytes() {
            return Ok(());
        }
        let name = &self.t.name;
        Err(match line.strip_prefix(HEADER_PREFIX.as_bytes()) {
            Some(version) => format!(
                "transcript {name} is in format {}; this soar-imap reads format 1",
                format::shorten(&String::from_utf8_lossy(version))
            ),
            None => {
                format!("{name} is not a soar-imap transcript: its first line is not \"{HEADER}\"")
            }
        })
    }

    fn connection(&mut self, number: &[u8], mode: &[u8]) -> Result<(), String> {
        let expected = self.t.connections.len() + 1;
        let number = std::str::from_utf8(number)
            .ok()
            .and_then(|n| n.parse::<usize>().ok());
        if number != Some(expected) {
            return Err(self.error(format!(
                "expected \"== connection {expected}: <mode>\" (connections are numbered in order)"
            )));
        }
        let mut decoded = Vec::new();
        format::unescape_into(mode, false, &mut decoded).map_err(|e| self.error(e))?;
        self.close_connection();
        self.t.connections.push(Connection {
            mode: String::from_utf8_lossy(&decoded).into_owned(),
            line: self.line,
            last_line: self.line,
            notes: Vec::new(),
            events: self.t.events.len()..self.t.events.len(),
            data: self.t.data.len(),
        });
        Ok(())
    }

    /// The connection lines belong to; they may not come before the first one.
    fn current(&mut self) -> Result<&mut Connection, String> {
        let line = self.line;
        let error = self.error("this line comes before the first \"== connection\" line");
        let connection = self.t.connections.last_mut().ok_or(error)?;
        connection.last_line = line;
        Ok(connection)
    }

    fn close_connection(&mut self) {
        let end = self.t.events.len();
        if let Some(connection) = self.t.connections.last_mut() {
            connection.events.end = end;
        }
    }

    /// Add an event whose bytes are the data from `start` on.
    fn push(&mut self, kind: Kind, start: usize, marker: u32) -> Result<(), String> {
        let len = u32::try_from(self.t.data.len() - start)
            .ok()
            .filter(|&len| len != NO_MARKER)
            .ok_or_else(|| self.error("line too long (4 GiB at most)"))?;
        self.t.events.push(Event {
            kind,
            line: self.line,
            len,
            marker,
        });
        Ok(())
    }

    fn end(mut self) -> Result<Transcript, String> {
        if self.line == 0 {
            return Err(format!(
                "{} is empty, not a soar-imap transcript",
                self.t.name
            ));
        }
        self.close_connection();
        if let Some(digests) = &self.digests {
            self.verify(digests)?;
        }
        Ok(self.t)
    }

    /// Compare the digests of the covered lines with the recorded ones.
    fn verify(&self, expected: &[[u8; 4]]) -> Result<(), String> {
        let covered = &self.covered;
        let name = &self.t.name;
        // Whether covered lines from `a` on agree with recorded digests from `b` on (the
        // next few, or to the end of both).
        let agree = |a: usize, b: usize| {
            for k in 0..3 {
                match (covered.get(a + k), expected.get(b + k)) {
                    (Some((_, got)), Some(want)) if got == want => {}
                    (None, None) => return true,
                    _ => return false,
                }
            }
            true
        };
        let first = covered
            .iter()
            .zip(expected)
            .position(|((_, got), want)| got != want);
        let text =
            |line: u32| line_text(Path::new(&self.t.name), line).unwrap_or_else(|| "?".to_owned());
        if let Some(i) = first {
            let line = covered[i].0;
            return Err(if agree(i + 1, i) {
                format!(
                    "transcript {name} line {line} was added after recording ({}); {EDIT_HINT}",
                    text(line)
                )
            } else if agree(i, i + 1) {
                format!(
                    "transcript {name}: a line was removed after recording just before line {line}; {EDIT_HINT}"
                )
            } else {
                format!(
                    "transcript {name} line {line} was changed after recording ({}); {EDIT_HINT}",
                    text(line)
                )
            });
        }
        if let Some((line, _)) = covered.get(expected.len()) {
            return Err(format!(
                "transcript {name} line {line} was added after recording ({}); {EDIT_HINT}",
                text(*line)
            ));
        }
        if expected.len() > covered.len() {
            return Err(format!(
                "transcript {name} lost lines after recording: its digests cover {} lines, it has {}; {EDIT_HINT}",
                expected.len(),
                covered.len()
            ));
        }
        Ok(())
    }
}

/// Line `number` of a file, shortened for a message (read again: only errors need it).
fn line_text(path: &Path, number: u32) -> Option<String> {
    let reader = BufReader::new(File::open(path).ok()?);
    let line = reader
        .split(b'\n')
        .nth(to_usize(number).checked_sub(1)?)?
        .ok()?;
    let line = line.strip_suffix(b"\r").unwrap_or(&line);
    Some(format::shorten(&String::from_utf8_lossy(line)))
}

/// A transcript being replayed: a cheap handle shared by the run's connections.
#[derive(Clone)]
pub struct Replay {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.try_borrow() {
            Ok(state) => f
                .debug_struct("Replay")
                .field("transcript", &state.t.name)
                .field("connections", &state.t.connections.len())
                .field("opened", &state.opened.len())
                .finish_non_exhaustive(),
            Err(_) => f.write_str("Replay"),
        }
    }
}

struct State {
    t: Transcript,
    /// The connections the client opened, in order.
    opened: Vec<Cursor>,
    /// The first difference between the run and the transcript.
    mismatch: Option<String>,
}

/// Where a connection's replay stands.
struct Cursor {
    /// The next event (index into [`Transcript::events`]).
    pos: usize,
    /// Where its bytes start in [`Transcript::data`].
    start: usize,
    /// Bytes of that event already served (server data read in parts).
    served: usize,
    /// The last event consumed was `S! EOF`: reads go on returning end of stream, as a
    /// closed socket does (the recorder writes repeated ends once).
    at_eof: bool,
    /// Client bytes not compared yet (no `\n` yet).
    pending: Vec<u8>,
    /// Follows the conversation so that messages never quote a credential the client sent.
    redactor: Redactor,
    /// The difference that stopped this connection.
    broken: Option<String>,
}

impl Cursor {
    /// Move past the event at `pos`.
    fn advance(&mut self, event: &Event) {
        self.pos += 1;
        self.start = self.start.saturating_add(to_usize(event.len));
        self.served = 0;
    }
}

impl Replay {
    /// Load `path`, check its digests (when it has them) and get ready to replay it.
    /// Errors name the file and line.
    pub fn open(path: &Path) -> Result<Replay, String> {
        Ok(Replay {
            state: Rc::new(RefCell::new(State {
                t: load(path)?,
                opened: Vec::new(),
                mismatch: None,
            })),
        })
    }

    /// Start the next recorded connection: its mode (`implicit TLS`, `STARTTLS`,
    /// `plain text`) and a stream over it. Fails when the transcript has no more.
    pub fn next_connection(&self) -> Result<(String, ReplayStream), String> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        let index = state.opened.len();
        let Some(connection) = state.t.connections.get(index) else {
            let message = format!(
                "replay of {}: the client opened connection {}; the transcript has {}",
                state.t.name,
                index + 1,
                state.t.connections.len()
            );
            state.mismatch.get_or_insert_with(|| message.clone());
            return Err(message);
        };
        state.opened.push(Cursor {
            pos: connection.events.start,
            start: connection.data,
            served: 0,
            at_eof: false,
            pending: Vec::new(),
            redactor: Redactor::default(),
            broken: None,
        });
        Ok((
            connection.mode.clone(),
            ReplayStream {
                state: Rc::clone(&self.state),
                connection: index,
            },
        ))
    }

    /// The note `key` (`certificate`, `tls`) of the current connection, the last one
    /// opened; the last such note when there are several.
    pub fn note(&self, key: &str) -> Option<String> {
        let state = self.state.borrow();
        let index = state.opened.len().checked_sub(1)?;
        state
            .t
            .connections
            .get(index)?
            .notes
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    }

    /// After the run: the first difference seen (even one the action swallowed), or what
    /// the run left out (the rest of a connection, whole connections).
    pub fn finish(&self) -> Result<(), String> {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        if let Some(message) = &state.mismatch {
            return Err(message.clone());
        }
        let name = &state.t.name;
        for (index, cursor) in state.opened.iter_mut().enumerate() {
            if !cursor.pending.is_empty() {
                let pending = mem::take(&mut cursor.pending);
                if let Err(message) = client_piece(&state.t, index, cursor, &pending) {
                    state.mismatch = Some(message.clone());
                    return Err(message);
                }
            }
            if let Some(event) = state.t.next_event(index, cursor.pos) {
                let within = if cursor.served > 0 {
                    "in the middle of"
                } else {
                    "at"
                };
                return Err(format!(
                    "replay of {name}: the client stopped {within} line {}; the transcript goes on with {}",
                    event.line,
                    state.t.show(cursor.start, event)
                ));
            }
        }
        if let Some(next) = state.t.connections.get(state.opened.len()) {
            return Err(format!(
                "replay of {name}: the run opened {} connection(s); the transcript has {} (connection {} starts at line {})",
                state.opened.len(),
                state.t.connections.len(),
                state.opened.len() + 1,
                next.line
            ));
        }
        Ok(())
    }
}

/// Compare a piece the client sent with the next event of its connection, and move on.
fn client_piece(
    t: &Transcript,
    connection: usize,
    cursor: &mut Cursor,
    piece: &[u8],
) -> Result<(), String> {
    let event = t.next_event(connection, cursor.pos);
    let sent = || {
        // A look-ahead copy: the real redactor only sees pieces that matched.
        let hidden = cursor.redactor.clone().client_piece(piece);
        show_piece(piece, hidden, false)
    };
    let name = &t.name;
    match event {
        Some(event) if event.kind == Kind::Client => {
            let expected = t.bytes(cursor.start, event);
            if same_piece(expected, event.marker(), piece) {
                cursor.redactor.client_piece(piece);
                cursor.advance(event);
                cursor.at_eof = false;
                return Ok(());
            }
            // Show both without CRLF when both have it, as the transcript does.
            let crlf = expected.ends_with(b"\r\n") && piece.ends_with(b"\r\n");
            let marker = event.marker().map(|m| m..m);
            let hidden = cursor.redactor.clone().client_piece(piece);
            let (expected, sent) = format::contrast(
                &show_piece(expected, marker, crlf),
                &show_piece(piece, hidden, crlf),
            );
            Err(format!(
                "replay of {name}: line {} expects the client to send \"{expected}\", it sent \"{sent}\"",
                event.line
            ))
        }
        Some(event) => {
            let what = match event.kind {
                Kind::Eof => "the server to close the connection",
                Kind::Error(_) => "a failed read",
                Kind::Server | Kind::Client => "the server to speak",
            };
            Err(format!(
                "replay of {name}: line {} expects {what} ({}); the client sent \"{}\"",
                event.line,
                t.show(cursor.start, event),
                format::shorten(&sent())
            ))
        }
        None => {
            let last = t.connections.get(connection).map_or(0, |c| c.last_line);
            Err(format!(
                "replay of {name}: connection {} ends at line {last}; the client went on to send \"{}\"",
                connection + 1,
                format::shorten(&sent())
            ))
        }
    }
}

/// One replayed connection: serves the recorded server bytes and checks what the client
/// writes.
pub struct ReplayStream {
    state: Rc<RefCell<State>>,
    connection: usize,
}

impl fmt::Debug for ReplayStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayStream")
            .field("connection", &(self.connection + 1))
            .finish_non_exhaustive()
    }
}

fn mismatch_error(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The cursor of `connection`, unless the connection is unknown or already stopped at a
/// difference (then every later call fails with the same message).
fn live_cursor(opened: &mut [Cursor], connection: usize) -> io::Result<&mut Cursor> {
    let cursor = opened
        .get_mut(connection)
        .ok_or_else(|| mismatch_error("replay: no such connection".into()))?;
    match &cursor.broken {
        Some(message) => Err(mismatch_error(message.clone())),
        None => Ok(cursor),
    }
}

impl State {
    /// Stop `connection` at a difference; the first one of the run is kept.
    fn fail(&mut self, connection: usize, message: String) -> io::Error {
        if let Some(cursor) = self.opened.get_mut(connection) {
            cursor.broken.get_or_insert_with(|| message.clone());
        }
        self.mismatch.get_or_insert_with(|| message.clone());
        mismatch_error(message)
    }

    fn read(&mut self, connection: usize, buf: &mut [u8]) -> io::Result<usize> {
        let cursor = live_cursor(&mut self.opened, connection)?;
        if buf.is_empty() {
            return Ok(0);
        }
        // Bytes the client sent without a line end before reading: a `C-` piece.
        if !cursor.pending.is_empty() {
            let pending = mem::take(&mut cursor.pending);
            if let Err(message) = client_piece(&self.t, connection, cursor, &pending) {
                return Err(self.fail(connection, message));
            }
        }
        let mut filled = 0;
        while filled < buf.len() {
            let Some(event) = self.t.next_event(connection, cursor.pos) else {
                break;
            };
            if event.kind != Kind::Server {
                break;
            }
            let available = self
                .t
                .bytes(cursor.start, event)
                .get(cursor.served..)
                .unwrap_or_default();
            let n = available.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&available[..n]);
            cursor.redactor.server_bytes(&available[..n]);
            filled += n;
            cursor.served += n;
            if n == available.len() {
                cursor.advance(event);
            }
        }
        if filled > 0 {
            cursor.at_eof = false;
            return Ok(filled);
        }
        let name = &self.t.name;
        let next = self.t.next_event(connection, cursor.pos);
        match next.map(|event| (event, event.kind)) {
            Some((event, Kind::Eof)) => {
                cursor.advance(event);
                cursor.at_eof = true;
                Ok(0)
            }
            Some((event, Kind::Error(kind))) => {
                let message =
                    String::from_utf8_lossy(self.t.bytes(cursor.start, event)).into_owned();
                cursor.advance(event);
                cursor.at_eof = false;
                Err(io::Error::new(kind, message))
            }
            _ if cursor.at_eof => Ok(0),
            Some((event, _)) => {
                let message = format!(
                    "replay of {name}: line {} expects the client to send \"{}\"; the client waited for the server instead",
                    event.line,
                    format::shorten(&show_piece(
                        self.t.bytes(cursor.start, event),
                        event.marker().map(|m| m..m),
                        true
                    ))
                );
                Err(self.fail(connection, message))
            }
            None => {
                // The end of the recorded server data: end of stream, as the imap crate
                // expects of a closed connection. The recording saw no such end (or it
                // would hold `S! EOF`), so this is a difference too.
                let last = self
                    .t
                    .connections
                    .get(connection)
                    .map_or(0, |c| c.last_line);
                let message = format!(
                    "replay of {name}: the client read on after the end of connection {} (line {last}), where the recorded server sent nothing more",
                    connection + 1
                );
                self.mismatch.get_or_insert(message);
                Ok(0)
            }
        }
    }

    fn write(&mut self, connection: usize, buf: &[u8]) -> io::Result<usize> {
        let cursor = live_cursor(&mut self.opened, connection)?;
        if buf.is_empty() {
            return Ok(0);
        }
        let mut pending = mem::take(&mut cursor.pending);
        if pending.is_empty() {
            // Starting a piece where the server should speak fails now, not at the line end.
            let next = self.t.next_event(connection, cursor.pos);
            if next.is_none_or(|event| event.kind != Kind::Client) {
                let line_end = buf
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(buf.len(), |i| i + 1);
                let result = client_piece(&self.t, connection, cursor, &buf[..line_end]);
                if let Err(message) = result {
                    return Err(self.fail(connection, message));
                }
            }
        }
        pending.extend_from_slice(buf);
        let mut done = 0;
        while let Some(newline) = pending[done..].iter().position(|&b| b == b'\n') {
            let piece = &pending[done..=done + newline];
            if let Err(message) = client_piece(&self.t, connection, cursor, piece) {
                return Err(self.fail(connection, message));
            }
            done += newline + 1;
        }
        pending.drain(..done);
        cursor.pending = pending;
        Ok(buf.len())
    }
}

impl Read for ReplayStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.state.borrow_mut().read(self.connection, buf)
    }
}

impl Write for ReplayStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.state.borrow_mut().write(self.connection, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
