//! The answer to one `UID FETCH`, read off the [`Feed`] a response at a time: a literal
//! (the message) is read in one piece, not a line at a time with a parse per line.
//!
//! Everything else is what `imap::Session::uid_fetch` does, so a session behaves and
//! fails as it did through the crate: each response is parsed with the crate's parser
//! (`imap_proto`) at the line ends where the crate would parse it, the same answers end
//! a command, and a failure is reported in the crate's words (see [`Failure::words`]).

use std::io::{Read, Write};

use imap_proto::{AttributeValue, MessageSection, Response, SectionPath, Status};

use super::feed::Feed;

/// Why a FETCH failed.
#[derive(Debug)]
pub enum Failure {
    /// An error the crate reports this way too (I/O, lost connection, unexpected answer).
    Imap(::imap::Error),
    /// The server's tagged `NO`.
    No(String),
    /// The server's tagged `BAD`.
    Bad(String),
    /// A tagged `BYE`, or an answer the parser rejects (the crate reports both as BYE).
    Bye(String),
    /// An answer with another command's tag.
    TagMismatch {
        /// The tag number of the command sent.
        expect: u32,
        /// The tag number answered, or the whole tag when it is not `a<number>`.
        actual: Result<u32, Vec<u8>>,
    },
}

impl Failure {
    /// What `super::server_words` says of the crate's error for the same failure.
    pub fn words(&self) -> String {
        match self {
            Failure::Imap(error) => super::server_words(error),
            Failure::No(information) | Failure::Bad(information) => information.clone(),
            Failure::Bye(information) => {
                format!("the server closed the session: {information}")
            }
            // The crate's `Error::TagMismatch` display: the struct's `Debug`.
            Failure::TagMismatch { expect, actual } => {
                format!("Mismatched Tag: TagMismatch {{ expect: {expect}, actual: {actual:?} }}")
            }
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Failure::Imap(::imap::Error::Io(error))
    }
}

/// The crate's words when a tagged answer gives no text.
const NO_EXPLANATION: &str = "no explanation given";

/// One `FETCH` response as the crate's `Fetch` would describe it.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The last `UID` in the response.
    pub uid: Option<u32>,
    /// The last `RFC822.SIZE` in the response.
    pub size: Option<u32>,
    /// The first `BODY[]` or `RFC822`, else the first `BODY[HEADER]` or `RFC822.HEADER`
    /// (`Fetch::body()`, then `Fetch::header()`).
    pub data: Option<Vec<u8>>,
}

/// Send `UID FETCH <uid_set> <query>` through the crate (which numbers the tag) and read
/// the answer here: every `FETCH` response, in the order received.
pub fn uid_fetch<S: Read + Write>(
    session: &mut ::imap::Session<Feed<S>>,
    feed: &Feed<S>,
    uid_set: &str,
    query: &str,
) -> Result<Vec<Fetched>, Failure> {
    let mut answer = Answer::start(session, feed, uid_set, query)?;
    let mut fetched = Vec::new();
    while let Some(one) = answer.next(feed)? {
        fetched.push(one);
    }
    Ok(fetched)
}

/// The answer to a `UID FETCH` being read, a `FETCH` response at a time: the messages of
/// a large fetch are taken as they arrive, while the rest of the answer waits in the
/// connection (the server is held back by TCP, not by anything kept in memory here).
///
/// It reads as `Connection::read_response` and then `Fetches::parse` do: the tagged
/// status decides, and any answer that is neither a FETCH nor one the crate accepts as
/// unsolicited fails the command, once the tagged answer is in. Until [`Answer::next`]
/// has returned `None` or an error, no other command may be sent on the connection.
#[derive(Debug)]
pub struct Answer {
    expect: Option<u32>,
    unexpected: Option<::imap::Error>,
    response: Vec<u8>,
}

impl Answer {
    /// Send `UID FETCH <uid_set> <query>` through the crate (which numbers the tag).
    pub fn start<S: Read + Write>(
        session: &mut ::imap::Session<Feed<S>>,
        feed: &Feed<S>,
        uid_set: &str,
        query: &str,
    ) -> Result<Self, Failure> {
        session
            .run_command(format!("UID FETCH {uid_set} {query}"))
            .map_err(Failure::Imap)?;
        Ok(Self {
            expect: feed.last_tag(),
            unexpected: None,
            response: Vec::new(),
        })
    }

    /// The next `FETCH` response, or `None` once the tagged `OK` has come.
    pub fn next<S: Read>(&mut self, feed: &Feed<S>) -> Result<Option<Fetched>, Failure> {
        loop {
            read_response(feed, &mut self.response)?;
            // `read_response` returns only what parses.
            let Ok((_, parsed)) = imap_proto::parser::parse_response(&self.response) else {
                return Err(Failure::Bye(NO_EXPLANATION.to_owned()));
            };
            match parsed {
                Response::Done {
                    tag,
                    status,
                    information,
                    ..
                } => {
                    if let Some(expect) = self
                        .expect
                        .filter(|e| tag.as_bytes() != format!("a{e}").as_bytes())
                    {
                        // The crate's reading of the tag it did not expect.
                        let actual = tag.0.trim_start_matches('a').parse::<u32>();
                        let actual = actual.map_err(|_| tag.as_bytes().to_vec());
                        return Err(Failure::TagMismatch { expect, actual });
                    }
                    let words = || {
                        information
                            .map_or_else(|| NO_EXPLANATION.to_owned(), std::borrow::Cow::into_owned)
                    };
                    return match status {
                        Status::Ok => self
                            .unexpected
                            .take()
                            .map_or(Ok(None), |e| Err(Failure::Imap(e))),
                        Status::No => Err(Failure::No(words())),
                        Status::Bad => Err(Failure::Bad(words())),
                        Status::Bye => Err(Failure::Bye(words())),
                        // A tagged PREAUTH: what the crate makes of a status it does not
                        // expect.
                        Status::PreAuth => Err(Failure::Imap(::imap::Error::Parse(
                            ::imap::error::ParseError::Invalid(std::mem::take(&mut self.response)),
                        ))),
                    };
                }
                Response::Fetch(_, attributes) => return Ok(Some(describe(&attributes))),
                other => {
                    // Unsolicited EXISTS, EXPUNGE, OK... are what the crate queues;
                    // others it fails with, after the tagged answer.
                    if let Err(other) = ::imap::types::UnsolicitedResponse::try_from(other) {
                        self.unexpected
                            .get_or_insert_with(|| ::imap::Error::from(other));
                    }
                }
            }
        }
    }
}

/// Read one whole response into `response`. The crate parses the response so far at
/// every line end until it is complete; this parses at the same line ends except inside
/// a literal, where the crate's parse can only find the literal incomplete.
fn read_response<S: Read>(feed: &Feed<S>, response: &mut Vec<u8>) -> Result<(), Failure> {
    response.clear();
    loop {
        let line_start = response.len();
        if feed.read_line(response)? == 0 {
            return Err(Failure::Imap(::imap::Error::ConnectionLost));
        }
        match imap_proto::parser::parse_response(response) {
            Ok(_) => return Ok(()),
            Err(e) if e.is_incomplete() => {}
            Err(_) => return Err(Failure::Bye(NO_EXPLANATION.to_owned())),
        }
        if let Some(len) = announced_literal(&response[line_start..])
            && feed.read_literal(len, response)? < len
        {
            // The crate reads on to the end of the stream line by line, then finds it.
            return Err(Failure::Imap(::imap::Error::ConnectionLost));
        }
    }
}

/// The length in a line that ends with a literal's announcement (`... {123}\r\n`).
fn announced_literal(line: &[u8]) -> Option<usize> {
    let inside = line.strip_suffix(b"}\r\n")?;
    let open = inside.iter().rposition(|&b| b == b'{')?;
    let digits = &inside[open + 1..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // imap_proto reads the length as a u32 and fails on anything longer.
    std::str::from_utf8(digits)
        .ok()?
        .parse::<u32>()
        .ok()
        .and_then(|n| usize::try_from(n).ok())
}

/// The fields `Fetches::parse` sets eagerly, and `Fetch::body()` / `Fetch::header()`.
fn describe(attributes: &[AttributeValue<'_>]) -> Fetched {
    let mut uid = None;
    let mut size = None;
    for attribute in attributes {
        match attribute {
            AttributeValue::Uid(u) => uid = Some(*u),
            AttributeValue::Rfc822Size(s) => size = Some(*s),
            _ => {}
        }
    }
    let body = attributes.iter().find_map(|a| match a {
        AttributeValue::BodySection {
            section: None,
            data: Some(body),
            ..
        }
        | AttributeValue::Rfc822(Some(body)) => Some(body),
        _ => None,
    });
    let header = || {
        attributes.iter().find_map(|a| match a {
            AttributeValue::BodySection {
                section: Some(SectionPath::Full(MessageSection::Header)),
                data: Some(header),
                ..
            }
            | AttributeValue::Rfc822Header(Some(header)) => Some(header),
            _ => None,
        })
    };
    Fetched {
        uid,
        size,
        data: body.or_else(header).map(|d| d.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::imap::{Client, LiveSession, script::Script};

    /// What the crate's own `uid_fetch` gives for `replies` (after a LOGIN), in the
    /// shape of [`Fetched`], or the failure in `server_words`.
    fn through_the_crate(replies: &str) -> (Result<Vec<Fetched>, String>, Vec<u8>) {
        let (script, written) = Script::new(&format!("a1 OK LOGIN completed\r\n{replies}"));
        let Ok(mut session) = ::imap::Client::new(script).login("u", "p") else {
            panic!("login")
        };
        let fetched = session
            .uid_fetch("1:*", "(UID RFC822.SIZE BODY.PEEK[])")
            .map(|fetches| {
                fetches
                    .iter()
                    .map(|f| Fetched {
                        uid: f.uid,
                        size: f.size,
                        data: f.body().or_else(|| f.header()).map(<[u8]>::to_vec),
                    })
                    .collect()
            })
            .map_err(|e| super::super::server_words(&e));
        let written = written.borrow().clone();
        (fetched, written)
    }

    /// The same through [`uid_fetch`].
    fn read_here(replies: &str) -> (Result<Vec<Fetched>, String>, Vec<u8>) {
        let (script, written) = Script::new(&format!("a1 OK LOGIN completed\r\n{replies}"));
        let mut live = LiveSession::login(Client::new(script), "u", "p").unwrap();
        let fetched = uid_fetch(
            &mut live.session,
            &live.feed,
            "1:*",
            "(UID RFC822.SIZE BODY.PEEK[])",
        )
        .map_err(|e| e.words());
        let written = written.borrow().clone();
        (fetched, written)
    }

    /// Answers that a FETCH may meet, each read both ways.
    const ANSWERS: &[&str] = &[
        // Plain, in any attribute order, with unsolicited lines between.
        "* 3 EXISTS\r\n* 1 FETCH (RFC822.SIZE 5 UID 7 BODY[] {5}\r\nhello)\r\n* 2 FETCH (FLAGS (\\Seen))\r\n* 3 FETCH (UID 9 BODY[] {3}\r\nabc RFC822.SIZE 3)\r\na2 OK FETCH completed\r\n",
        // Line ends inside literals: CRLF, bare LF, at the very end, an empty literal.
        "* 1 FETCH (UID 1 BODY[] {12}\r\nab\r\ncd\nef\r\n\n)\r\n* 2 FETCH (UID 2 BODY[] {0}\r\n)\r\n* 3 FETCH (UID 3 BODY[] {2}\r\n\r\n)\r\na2 OK done\r\n",
        // A literal that looks like responses, and one announcing another literal.
        "* 1 FETCH (UID 1 BODY[] {27}\r\na2 OK fake\r\n* 9 FETCH {3}\r\n)\r\na2 OK real\r\n",
        // Two literals in one response; the header alone.
        "* 1 FETCH (UID 1 BODY[HEADER] {4}\r\nH: x BODY[TEXT] {4}\r\nbody)\r\n* 2 FETCH (UID 2 RFC822.HEADER {3}\r\nh\r\n)\r\na2 OK\r\n",
        // Repeated attributes: the last UID, the first body.
        "* 1 FETCH (UID 1 UID 4 RFC822.SIZE 1 RFC822.SIZE 2 BODY[] {1}\r\nx RFC822 {1}\r\ny)\r\na2 OK\r\n",
        // Text that ends like an announcement is no literal.
        "* OK [ALERT] see {5}\r\n* 1 FETCH (UID 1 BODY[] NIL)\r\na2 OK\r\n",
        // Refusals, with and without words.
        "a2 NO [SERVERBUG] Internal error\r\n",
        "* 1 FETCH (UID 1 BODY[] {3}\r\nabc)\r\na2 BAD Error in IMAP command\r\n",
        "a2 NO\r\n",
        "* BYE shutting down\r\na2 BYE going\r\n",
        // Another command's tag, or none the crate could number.
        "a1 OK stale\r\n",
        "b2 OK foreign\r\n",
        "a02 OK padded\r\n",
        // An answer the crate does not accept in a FETCH, before a good or a bad end.
        "* SEARCH 1 2\r\n* 1 FETCH (UID 1 BODY[] {1}\r\nx)\r\na2 OK\r\n",
        "+ go on\r\na2 NO later\r\n",
        // What the parser rejects: at once, or after a literal.
        "* 1 FETCH (UID x)\r\na2 OK\r\n",
        "* 1 FETCH (UID 1 BODY[] {3}\r\nabc garbage)\r\na2 OK\r\n",
        "* 1 FETCH (UID 1 BODY[] {99999999999}\r\nabc)\r\na2 OK\r\n",
        // The connection ends: between responses, in a line, in a literal.
        "* 1 FETCH (UID 1 BODY[] {1}\r\nx)\r\n",
        "* 1 FETCH (UID 1",
        "* 1 FETCH (UID 1 BODY[] {10}\r\nabc\r\n",
        "",
    ];

    #[test]
    fn every_answer_reads_as_the_crate_reads_it() {
        for answer in ANSWERS {
            assert_eq!(read_here(answer), through_the_crate(answer), "{answer:?}");
        }
    }

    #[test]
    fn every_answer_cut_short_anywhere_reads_as_the_crate_reads_it() {
        for answer in ANSWERS {
            for cut in 0..answer.len() {
                let answer = &answer[..cut];
                assert_eq!(read_here(answer), through_the_crate(answer), "{answer:?}");
            }
        }
    }

    #[test]
    fn the_next_command_finds_the_stream_where_the_fetch_left_it() {
        let (script, written) = Script::new(concat!(
            "a1 OK LOGIN completed\r\n",
            "* 1 FETCH (UID 1 BODY[] {5}\r\nhello)\r\na2 OK done\r\n",
            "* SEARCH 4 5\r\na3 OK searched\r\n",
        ));
        let mut live = LiveSession::login(Client::new(script), "u", "p").unwrap();
        let fetched = uid_fetch(&mut live.session, &live.feed, "1", "(UID BODY.PEEK[])").unwrap();
        assert_eq!(fetched[0].data.as_deref(), Some(&b"hello"[..]));
        let mut found: Vec<u32> = live
            .session
            .uid_search("ALL")
            .unwrap()
            .into_iter()
            .collect();
        found.sort_unstable();
        assert_eq!(found, [4, 5]);
        assert_eq!(
            String::from_utf8(written.borrow().clone()).unwrap(),
            "a1 LOGIN \"u\" \"p\"\r\na2 UID FETCH 1 (UID BODY.PEEK[])\r\na3 UID SEARCH ALL\r\n"
        );
    }

    #[test]
    fn announcements_are_read_only_at_the_end_of_a_line() {
        assert_eq!(announced_literal(b"* 1 FETCH (BODY[] {123}\r\n"), Some(123));
        assert_eq!(announced_literal(b"{0}\r\n"), Some(0));
        assert_eq!(announced_literal(b"{}\r\n"), None);
        assert_eq!(announced_literal(b"{12}\n"), None);
        assert_eq!(announced_literal(b"{1 2}\r\n"), None);
        assert_eq!(announced_literal(b"{4294967296}\r\n"), None);
        assert_eq!(announced_literal(b"{+5}\r\n"), None);
    }
}
