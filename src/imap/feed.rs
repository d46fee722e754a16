//! The buffered stream under the imap crate, shared with [`super::fetch`], which reads
//! `UID FETCH` answers off it directly.
//!
//! The crate reads its answers a line at a time and parses the whole response again at
//! every line end until it is complete; for a message sent as a literal that is one
//! parse per line of the message (three quarters of a poll's fetch CPU). FETCH answers
//! are therefore read here instead, a literal at a time, while every other command goes
//! on through the crate. Both read from the one buffer in [`Feed`]; the crate is only
//! ever handed bytes up to the end of a line, so when one of its commands is done its
//! own buffer holds nothing, and no byte can be stranded on either side.

use std::{
    cell::RefCell,
    io::{self, Read, Write},
    rc::Rc,
};

/// Bytes read from the stream at once: four TLS records, and few enough to keep around.
const CAPACITY: usize = 64 * 1024;

/// The crate's tags are `a<n>` (`imap::client::TAG_PREFIX`, private to the crate).
const TAG_PREFIX: u8 = b'a';

/// A stream with one read buffer and two handles: the one given to the imap crate and
/// the one [`super::LiveSession`] keeps ([`Feed::handle`]).
pub struct Feed<S>(Rc<RefCell<Buffered<S>>>);

struct Buffered<S> {
    stream: S,
    buf: Box<[u8]>,
    /// Unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// Where the tag of the client line being written stands.
    tag: TagScan,
    /// The number in the tag of the last command line written (`a12 ...`: 12).
    last_tag: Option<u32>,
}

/// Reading the tag at the start of each line the client writes, across partial writes.
#[derive(Clone, Copy)]
enum TagScan {
    /// At the start of a line.
    LineStart,
    /// After the tag prefix, with the digits so far.
    Digits(Option<u32>),
    /// The rest of the line (or a line that starts with no tag).
    Rest,
}

impl<S> Feed<S> {
    /// Wrap `stream`.
    pub fn new(stream: S) -> Self {
        Self(Rc::new(RefCell::new(Buffered {
            stream,
            buf: vec![0; CAPACITY].into_boxed_slice(),
            start: 0,
            end: 0,
            tag: TagScan::LineStart,
            last_tag: None,
        })))
    }

    /// A second handle on the same stream and buffer.
    pub fn handle(&self) -> Self {
        Self(Rc::clone(&self.0))
    }

    /// The number in the tag of the last command line written (`a12 UID FETCH ...`: 12).
    pub fn last_tag(&self) -> Option<u32> {
        self.0.borrow().last_tag
    }
}

impl<S: Read> Feed<S> {
    /// Append bytes up to and including the next `\n` (or to the end of the stream) to
    /// `into`, as `BufRead::read_until` does; 0 at the end of the stream.
    pub fn read_line(&self, into: &mut Vec<u8>) -> io::Result<usize> {
        let mut inner = self.0.borrow_mut();
        let mut read = 0;
        loop {
            if !inner.fill()? {
                return Ok(read);
            }
            let available = &inner.buf[inner.start..inner.end];
            let (taken, done) = match memchr(b'\n', available) {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            into.extend_from_slice(&available[..taken]);
            inner.start += taken;
            read += taken;
            if done {
                return Ok(read);
            }
        }
    }

    /// Append the next `len` bytes to `into` (a literal); fewer only at the end of the
    /// stream. Returns how many were appended.
    pub fn read_literal(&self, len: usize, into: &mut Vec<u8>) -> io::Result<usize> {
        let mut inner = self.0.borrow_mut();
        let mut read = 0;
        while read < len {
            if !inner.fill()? {
                break;
            }
            let taken = (inner.end - inner.start).min(len - read);
            into.extend_from_slice(&inner.buf[inner.start..inner.start + taken]);
            inner.start += taken;
            read += taken;
        }
        Ok(read)
    }
}

impl<S: Read> Buffered<S> {
    /// Make sure unread bytes are buffered: false at the end of the stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start < self.end {
            return Ok(true);
        }
        loop {
            match self.stream.read(&mut self.buf) {
                Ok(n) => {
                    self.start = 0;
                    self.end = n;
                    return Ok(n > 0);
                }
                // As `BufRead::read_until` does, which the crate reads with.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<S: Read> Read for Feed<S> {
    /// What the crate reads: never past the end of a line, so that the crate's own
    /// buffer is empty whenever it has consumed a whole line (see the module comment).
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let mut inner = self.0.borrow_mut();
        if out.is_empty() || !inner.fill()? {
            return Ok(0);
        }
        let available = &inner.buf[inner.start..inner.end];
        let line = memchr(b'\n', available).map_or(available.len(), |i| i + 1);
        let n = line.min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        inner.start += n;
        Ok(n)
    }
}

impl<S: Write> Write for Feed<S> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut inner = self.0.borrow_mut();
        let n = inner.stream.write(bytes)?;
        inner.scan_tags(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().stream.flush()
    }
}

impl<S> Buffered<S> {
    /// Note the tag of each command line written: [`super::fetch`] checks the answer's
    /// tag against it, as the crate does. Only `a<digits> ` counts, so a continuation
    /// line (a SASL response) never leaves anything here.
    fn scan_tags(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.tag = match (self.tag, b) {
                (_, b'\n') => TagScan::LineStart,
                (TagScan::LineStart, TAG_PREFIX) => TagScan::Digits(Some(0)),
                (TagScan::Digits(n), b'0'..=b'9') => TagScan::Digits(
                    n.and_then(|n| n.checked_mul(10))
                        .and_then(|n| n.checked_add(u32::from(b - b'0'))),
                ),
                (TagScan::Digits(n), b' ') => {
                    self.last_tag = n;
                    TagScan::Rest
                }
                _ => TagScan::Rest,
            };
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::script::Script;

    #[test]
    fn the_crate_is_handed_at_most_one_line_per_read() {
        let (script, _) = Script::new("* 1 EXISTS\r\na1 OK done\r\nrest");
        let mut feed = Feed::new(script);
        let mut read = |len: usize| {
            let mut out = vec![0; len];
            let n = feed.read(&mut out).unwrap();
            out.truncate(n);
            out
        };
        assert_eq!(read(100), b"* 1 EXISTS\r\n");
        assert_eq!(read(4), b"a1 O");
        assert_eq!(read(100), b"K done\r\n");
        let mut line = Vec::new();
        assert_eq!(feed.read_line(&mut line).unwrap(), 4);
        assert_eq!(line, b"rest");
        assert_eq!(feed.read(&mut [0; 10]).unwrap(), 0);
        assert_eq!(feed.read_line(&mut line).unwrap(), 0);
    }

    #[test]
    fn lines_and_literals_are_read_across_buffer_refills() {
        let body = "x".repeat(CAPACITY + 10);
        let text = format!(
            "* 1 FETCH (BODY[] {{{}}}\r\n{body})\r\na2 OK\r\n",
            body.len()
        );
        let (script, _) = Script::new(&text);
        let feed = Feed::new(script);
        let mut response = Vec::new();
        feed.read_line(&mut response).unwrap();
        assert_eq!(
            feed.read_literal(body.len(), &mut response).unwrap(),
            body.len()
        );
        feed.read_line(&mut response).unwrap();
        assert_eq!(response, text.strip_suffix("a2 OK\r\n").unwrap().as_bytes());
        let mut rest = Vec::new();
        assert_eq!(feed.read_literal(100, &mut rest).unwrap(), 7);
        assert_eq!(rest, b"a2 OK\r\n");
    }

    #[test]
    fn the_tag_of_the_last_command_line_is_kept_across_partial_writes() {
        let (script, written) = Script::new("");
        let mut feed = Feed::new(script);
        assert_eq!(feed.last_tag(), None);
        feed.write_all(b"a1").unwrap();
        feed.write_all(b"2 UID FETCH 1 (UID)\r\n").unwrap();
        assert_eq!(feed.last_tag(), Some(12));
        // A SASL continuation line, even one that looks like a tag up to a point.
        feed.write_all(b"a13dGVzdA==\r\n").unwrap();
        feed.write_all(b"x7 NOOP\r\n").unwrap();
        assert_eq!(feed.last_tag(), Some(12));
        feed.write_all(b"a99999999999 NOOP\r\n").unwrap();
        assert_eq!(feed.last_tag(), None, "a tag past u32 is no tag");
        assert!(written.borrow().ends_with(b"a99999999999 NOOP\r\n"));
    }
}
