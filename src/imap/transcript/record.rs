//! Writing a transcript: [`Recorder`] owns the file, [`Recording`] tees a stream into it.
//!
//! Each direction's bytes are cut after every `\n` into pieces. A piece without a line end
//! yet stays in memory until the direction switches (the client writes after reading, or
//! reads after writing), the connection ends or the recording finishes; then it is
//! written as an exact `S-` / `C-` line. Replay makes the same cuts at the same moments,
//! so partial pieces compare one to one.
//!
//! A recording must not break the run it records: a transcript that cannot be written
//! (full disk) is logged once and reported by [`Recorder::finish`], while the IMAP
//! conversation goes on.

use std::{
    cell::RefCell,
    fmt,
    fs::File,
    io::{self, BufWriter, Read, Write},
    mem,
    path::{Path, PathBuf},
    rc::Rc,
};

use super::{
    format::{
        self, CONNECTION, DIGESTS, DIGESTS_PER_LINE, EOF_LINE, ERROR_PREFIX, HEADER, LEGEND,
        REDACTED, Side,
    },
    redact::Redactor,
};

/// A transcript being recorded: a cheap handle to share between the connections of a run.
#[derive(Clone)]
pub struct Recorder {
    state: Rc<RefCell<State>>,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state.try_borrow() {
            Ok(state) => f
                .debug_struct("Recorder")
                .field("path", &state.path)
                .field("connections", &state.connections)
                .finish_non_exhaustive(),
            Err(_) => f.write_str("Recorder"),
        }
    }
}

struct State {
    path: PathBuf,
    out: BufWriter<File>,
    /// The first failure to write the file; later writes are skipped.
    failed: Option<io::Error>,
    finished: bool,
    /// Connections begun so far.
    connections: usize,
    /// Server bytes after the last `\n` (not written yet).
    server: Vec<u8>,
    /// Client bytes after the last `\n` (not written yet).
    client: Vec<u8>,
    redactor: Redactor,
    /// The last event line was `S! EOF`: repeated reads at the end are written once.
    at_eof: bool,
    /// One digest per covered line, in order.
    digests: Vec<[u8; 4]>,
    /// The line being composed (reused).
    line: Vec<u8>,
}

impl Recorder {
    /// Create (or truncate) `path` and write the header.
    pub fn create(path: &Path) -> io::Result<Recorder> {
        let file = File::create(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create transcript {}: {e}", path.display()),
            )
        })?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        let mut header = Vec::new();
        for line in std::iter::once(&HEADER).chain(LEGEND) {
            header.extend_from_slice(line.as_bytes());
            header.push(b'\n');
        }
        out.write_all(&header).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot write transcript {}: {e}", path.display()),
            )
        })?;
        Ok(Recorder {
            state: Rc::new(RefCell::new(State {
                path: path.to_owned(),
                out,
                failed: None,
                finished: false,
                connections: 0,
                server: Vec::new(),
                client: Vec::new(),
                redactor: Redactor::default(),
                at_eof: false,
                digests: Vec::new(),
                line: Vec::new(),
            })),
        })
    }

    /// Start the next connection, secured as `mode` says (`implicit TLS`, `STARTTLS`,
    /// `plain text`). Ends the previous one.
    pub fn begin_connection(&self, mode: &str) {
        self.state.borrow_mut().begin_connection(mode);
    }

    /// A fact about the current connection (`certificate`, `tls`), written `@ key value`.
    /// The key is one word; other characters become `_`.
    pub fn note(&self, key: &str, value: &str) {
        let mut state = self.state.borrow_mut();
        if !state.ready() {
            return;
        }
        let line = &mut state.line;
        line.clear();
        line.extend_from_slice(b"@ ");
        line.extend(key.bytes().map(|b| {
            if b.is_ascii_graphic() && b != b'\\' {
                b
            } else {
                b'_'
            }
        }));
        if key.is_empty() {
            line.push(b'_');
        }
        // No blank at the end of the line for an empty value: editors would trim it.
        if !value.is_empty() {
            line.push(b' ');
            format::escape_into(value.as_bytes(), line);
        }
        state.emit();
    }

    /// A tee over `inner`: what is read from it is recorded as server data, what is
    /// written to it as client data, in the current connection.
    pub fn wrap<S: Read + Write>(&self, inner: S) -> Recording<S> {
        Recording {
            inner,
            recorder: self.clone(),
        }
    }

    /// Write what is still pending and the digests block, and flush. Later calls (and
    /// later traffic) do nothing. Fails if any part of the transcript could not be written.
    pub fn finish(&self) -> io::Result<()> {
        self.state.borrow_mut().finish()
    }
}

impl State {
    /// Whether events can be recorded; begins an unnamed connection if none was begun.
    fn ready(&mut self) -> bool {
        if self.finished {
            tracing::debug!("IMAP traffic after the transcript was finished is not recorded");
            return false;
        }
        if self.connections == 0 {
            tracing::warn!("IMAP traffic before any connection was begun; recording it as one");
            self.begin_connection("unknown");
        }
        true
    }

    fn begin_connection(&mut self, mode: &str) {
        if self.finished {
            return;
        }
        self.end_connection();
        self.connections += 1;
        self.redactor = Redactor::default();
        self.at_eof = false;
        self.line.clear();
        self.line.extend_from_slice(CONNECTION);
        self.line
            .extend_from_slice(format!("{}: ", self.connections).as_bytes());
        format::escape_into(mode.as_bytes(), &mut self.line);
        self.emit();
    }

    /// Write the pending partial pieces and flush the file.
    fn end_connection(&mut self) {
        self.flush_partial(Side::Server);
        self.flush_partial(Side::Client);
        if self.failed.is_none()
            && let Err(e) = self.out.flush()
        {
            self.fail(e);
        }
    }

    fn finish(&mut self) -> io::Result<()> {
        if !self.finished {
            self.end_connection();
            self.finished = true;
            let mut block = Vec::with_capacity(DIGESTS.len() + 1 + self.digests.len() * 9);
            block.extend_from_slice(DIGESTS);
            block.push(b'\n');
            for row in self.digests.chunks(DIGESTS_PER_LINE) {
                for (i, digest) in row.iter().enumerate() {
                    if i > 0 {
                        block.push(b' ');
                    }
                    format::push_digest(*digest, &mut block);
                }
                block.push(b'\n');
            }
            self.digests = Vec::new();
            if self.failed.is_none()
                && let Err(e) = self.out.write_all(&block).and_then(|()| self.out.flush())
            {
                self.fail(e);
            }
        }
        match &self.failed {
            None => Ok(()),
            Some(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot write transcript {}: {e}", self.path.display()),
            )),
        }
    }

    fn fail(&mut self, e: io::Error) {
        tracing::warn!(
            "cannot write transcript {}: {e}; the run goes on unrecorded",
            self.path.display()
        );
        self.failed = Some(e);
    }

    /// Write `self.line` as a covered line.
    fn emit(&mut self) {
        // Only an empty content leaves a blank at the end ("S: "): drop it, so that no
        // line of a transcript changes when an editor trims trailing blanks.
        if self.line.last() == Some(&b' ') {
            self.line.pop();
        }
        self.digests.push(format::digest(&self.line));
        if self.failed.is_none() {
            self.line.push(b'\n');
            if let Err(e) = self.out.write_all(&self.line) {
                self.fail(e);
            }
        }
    }

    /// Write one piece (`\n`-terminated, or partial) sent by `side`.
    fn emit_piece(&mut self, side: Side, piece: &[u8]) {
        let crlf = piece.ends_with(b"\r\n");
        let content = if crlf {
            &piece[..piece.len() - 2]
        } else {
            piece
        };
        self.at_eof = false;
        let hidden = match side {
            Side::Client => self.redactor.client_piece(piece),
            Side::Server => None,
        };
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(format::piece_prefix(side, crlf));
        match hidden {
            Some(range) => {
                format::escape_part_into(
                    content.get(..range.start).unwrap_or_default(),
                    false,
                    line,
                );
                line.extend_from_slice(REDACTED);
                format::escape_into(content.get(range.end..).unwrap_or_default(), line);
            }
            None => format::escape_into(content, line),
        }
        self.emit();
    }

    /// Write the pending partial piece of `side`, if any.
    fn flush_partial(&mut self, side: Side) {
        let pending = match side {
            Side::Server => &mut self.server,
            Side::Client => &mut self.client,
        };
        if pending.is_empty() {
            return;
        }
        let piece = mem::take(pending);
        self.emit_piece(side, &piece);
        // Keep the allocation for the next partial piece.
        let mut piece = piece;
        piece.clear();
        match side {
            Side::Server => self.server = piece,
            Side::Client => self.client = piece,
        }
    }

    /// Bytes that went through the tee from `side`: cut after each `\n`.
    fn bytes(&mut self, side: Side, mut data: &[u8]) {
        while let Some(newline) = data.iter().position(|&b| b == b'\n') {
            let (piece, rest) = data.split_at(newline + 1);
            let pending = match side {
                Side::Server => &mut self.server,
                Side::Client => &mut self.client,
            };
            if pending.is_empty() {
                self.emit_piece(side, piece);
            } else {
                pending.extend_from_slice(piece);
                self.flush_partial(side);
            }
            data = rest;
        }
        match side {
            Side::Server => self.server.extend_from_slice(data),
            Side::Client => self.client.extend_from_slice(data),
        }
    }

    /// The client is about to read: its unfinished line is a piece of its own.
    fn before_read(&mut self) -> bool {
        if !self.ready() {
            return false;
        }
        self.flush_partial(Side::Client);
        true
    }

    fn server_data(&mut self, data: &[u8]) {
        self.redactor.server_bytes(data);
        self.bytes(Side::Server, data);
    }

    fn server_eof(&mut self) {
        self.flush_partial(Side::Server);
        if !self.at_eof {
            self.line.clear();
            self.line.extend_from_slice(EOF_LINE);
            self.emit();
            self.at_eof = true;
        }
    }

    fn server_error(&mut self, error: &io::Error) {
        self.flush_partial(Side::Server);
        self.at_eof = false;
        self.line.clear();
        self.line.extend_from_slice(ERROR_PREFIX);
        self.line
            .extend_from_slice(format::error_kind_name(error.kind()).as_bytes());
        self.line.extend_from_slice(b": ");
        format::escape_into(error.to_string().as_bytes(), &mut self.line);
        self.emit();
    }

    /// The client is about to write: the server's unfinished line is a piece of its own.
    fn before_write(&mut self) -> bool {
        if !self.ready() {
            return false;
        }
        self.flush_partial(Side::Server);
        true
    }
}

/// A stream whose traffic is recorded: reads as server data, writes as client data.
pub struct Recording<S> {
    inner: S,
    recorder: Recorder,
}

impl<S> fmt::Debug for Recording<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recording")
            .field("recorder", &self.recorder)
            .finish_non_exhaustive()
    }
}

impl<S> Recording<S> {
    /// The stream underneath, for the TLS handshake of STARTTLS. Unfinished pieces stay
    /// with the recorder: the conversation goes on in the same connection once the
    /// secured stream is wrapped again.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Read> Read for Recording<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An empty read is no turn of the conversation (and its 0 is no end of stream);
        // replay ignores it the same way.
        if buf.is_empty() {
            return self.inner.read(buf);
        }
        let recording = self.recorder.state.borrow_mut().before_read();
        let result = self.inner.read(buf);
        if recording {
            let mut state = self.recorder.state.borrow_mut();
            match &result {
                Ok(0) => state.server_eof(),
                Ok(n) => state.server_data(buf.get(..*n).unwrap_or_default()),
                // Retried by the reader; replay never produces it, and need not.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => state.server_error(e),
            }
        }
        result
    }
}

impl<S: Write> Write for Recording<S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return self.inner.write(buf);
        }
        let recording = self.recorder.state.borrow_mut().before_write();
        let written = self.inner.write(buf)?;
        if recording {
            let mut state = self.recorder.state.borrow_mut();
            state.bytes(Side::Client, buf.get(..written).unwrap_or_default());
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
