//! Which client bytes are credentials, so they never reach a transcript (or a replay
//! error message).
//!
//! The rules, matched case-insensitively on the client's lines:
//! - `<tag> LOGIN <anything>`: everything after `LOGIN ` is a credential;
//! - `<tag> AUTHENTICATE <MECH> <initial-response>` (SASL-IR): the initial response is;
//! - after `<tag> LOGIN` or `<tag> AUTHENTICATE`, every client line up to the server's
//!   tagged completion for that tag (`<tag> OK|NO|BAD`) is redacted whole: the SASL
//!   exchange, the empty line that cancels it after a `+ <error>` challenge, and the
//!   literals of a `LOGIN {5}` alike.
//!
//! Server lines are never redacted. The client side arrives in pieces (a line may be cut
//! where the client reads before finishing it), so the redactor tracks the line being
//! sent and says, for each piece, which of its bytes to hide.

use std::ops::Range;

/// How much of a client line is kept to recognise the command: the tag and command word
/// of any line the connector sends fit with room to spare.
const HEAD_MAX: usize = 1024;

/// Follows one connection's conversation and picks out credentials.
#[derive(Clone, Debug, Default)]
pub(super) struct Redactor {
    /// Bytes of the current client line seen so far (0: at a line start).
    line_len: usize,
    /// The first [`HEAD_MAX`] bytes of the current client line.
    head: Vec<u8>,
    /// Where the credential starts in the current client line, once known.
    offset: Option<usize>,
    /// After LOGIN or AUTHENTICATE: the tag whose completion ends whole-line redaction.
    auth_tag: Option<Vec<u8>>,
    /// The first bytes of the current server line, while `auth_tag` is set.
    server_head: Vec<u8>,
}

impl Redactor {
    /// A client piece, in order. Returns the bytes of `piece` to replace by the redaction
    /// marker (possibly empty, to show that the line carried a credential there), never
    /// including the line end.
    pub(super) fn client_piece(&mut self, piece: &[u8]) -> Option<Range<usize>> {
        if self.line_len == 0 {
            self.head.clear();
            // A line sent while an authentication is under way is a SASL payload.
            self.offset = self.auth_tag.is_some().then_some(0);
        }
        let room = HEAD_MAX.saturating_sub(self.head.len());
        self.head
            .extend_from_slice(piece.get(..room.min(piece.len())).unwrap_or_default());
        let start = self.line_len;
        self.line_len = self.line_len.saturating_add(piece.len());
        if self.offset.is_none() {
            self.offset = credential_offset(&self.head);
        }
        let end = piece.len()
            - if piece.ends_with(b"\r\n") {
                2
            } else {
                usize::from(piece.ends_with(b"\n"))
            };
        let hidden = self.offset.and_then(|offset| {
            let from = offset.saturating_sub(start);
            (from <= end).then_some(from..end)
        });
        if piece.ends_with(b"\n") {
            if self.auth_tag.is_none()
                && let Some((tag, word)) = command(&self.head)
                && (word.eq_ignore_ascii_case(b"LOGIN")
                    || word.eq_ignore_ascii_case(b"AUTHENTICATE"))
            {
                self.auth_tag = Some(tag.to_vec());
                self.server_head.clear();
            }
            self.line_len = 0;
        }
        hidden
    }

    /// Bytes the server sent, in order: watched for the completion of an authentication.
    pub(super) fn server_bytes(&mut self, mut bytes: &[u8]) {
        let Some(tag) = self.auth_tag.as_deref() else {
            return;
        };
        // "<tag> BAD" and the byte after it decide.
        let cap = tag.len() + 5;
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|&b| b == b'\n');
            let line_part = &bytes[..newline.map_or(bytes.len(), |i| i + 1)];
            let room = cap.saturating_sub(self.server_head.len());
            self.server_head
                .extend_from_slice(&line_part[..room.min(line_part.len())]);
            let Some(i) = newline else {
                return;
            };
            if completes(&self.server_head, tag) {
                self.auth_tag = None;
                self.server_head.clear();
                return;
            }
            self.server_head.clear();
            bytes = &bytes[i + 1..];
        }
    }
}

/// The tag and command word of a client line (the word may end at a space or the line end).
fn command(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = line.iter().position(|&b| b == b' ')?;
    let (tag, rest) = (&line[..space], &line[space + 1..]);
    if tag.is_empty() {
        return None;
    }
    let word_end = rest
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
        .unwrap_or(rest.len());
    Some((tag, &rest[..word_end]))
}

/// Where the credential starts in a client line that begins `<tag> LOGIN ` or
/// `<tag> AUTHENTICATE <MECH> `; `None` while the line is not (yet) one of those.
fn credential_offset(line: &[u8]) -> Option<usize> {
    let (tag, word) = command(line)?;
    let after_word = tag.len() + 1 + word.len();
    if line.get(after_word) != Some(&b' ') {
        return None;
    }
    if word.eq_ignore_ascii_case(b"LOGIN") {
        return Some(after_word + 1);
    }
    if word.eq_ignore_ascii_case(b"AUTHENTICATE") {
        let mechanism = &line[after_word + 1..];
        let space = mechanism.iter().position(|&b| b == b' ')?;
        if mechanism[..space].contains(&b'\r') || mechanism[..space].contains(&b'\n') {
            return None;
        }
        return Some(after_word + 1 + space + 1);
    }
    None
}

/// Whether a server line (its first bytes) is the tagged completion `<tag> OK|NO|BAD`.
fn completes(head: &[u8], tag: &[u8]) -> bool {
    let Some(rest) = head
        .strip_prefix(tag)
        .and_then(|rest| rest.strip_prefix(b" "))
    else {
        return false;
    };
    let word_end = rest
        .iter()
        .position(|&b| matches!(b, b' ' | b'\r' | b'\n'))
        .unwrap_or(rest.len());
    let word = &rest[..word_end];
    [&b"OK"[..], b"NO", b"BAD"]
        .iter()
        .any(|status| word.eq_ignore_ascii_case(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces with the redacted bytes replaced by `<R>`.
    fn shown(redactor: &mut Redactor, piece: &[u8]) -> String {
        let mut out = piece.to_vec();
        if let Some(range) = redactor.client_piece(piece) {
            out.splice(range, b"<R>".iter().copied());
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn login_arguments_are_hidden_whatever_the_casing_or_quoting() {
        let mut r = Redactor::default();
        assert_eq!(
            shown(&mut r, b"a1 LOGIN \"user\" \"p a\\\"ss\"\r\n"),
            "a1 LOGIN <R>\r\n"
        );
        r.server_bytes(b"a1 OK Logged in\r\n");
        assert_eq!(shown(&mut r, b"a2 SELECT x\r\n"), "a2 SELECT x\r\n");
        let mut r = Redactor::default();
        assert_eq!(shown(&mut r, b"X9 lOgIn user pass\n"), "X9 lOgIn <R>\n");
        let mut r = Redactor::default();
        assert_eq!(shown(&mut r, b"a1 LOGINX y\r\n"), "a1 LOGINX y\r\n");
        assert_eq!(shown(&mut r, b"a1 LOGIN\r\n"), "a1 LOGIN\r\n");
    }

    #[test]
    fn a_line_cut_into_pieces_is_hidden_from_the_credential_on() {
        let mut r = Redactor::default();
        assert_eq!(shown(&mut r, b"a1 LOG"), "a1 LOG");
        assert_eq!(shown(&mut r, b"IN us"), "IN <R>");
        assert_eq!(shown(&mut r, b"er pass"), "<R>");
        assert_eq!(shown(&mut r, b"\r\n"), "<R>\r\n");
    }

    #[test]
    fn sasl_ir_and_the_whole_exchange_until_the_tagged_completion() {
        let mut r = Redactor::default();
        assert_eq!(
            shown(&mut r, b"a1 authenticate XOAUTH2 dXNlcj1=\r\n"),
            "a1 authenticate XOAUTH2 <R>\r\n"
        );
        r.server_bytes(b"+ eyJzdGF0dXMiOiI0MDEifQ==\r\n");
        assert_eq!(shown(&mut r, b"\r\n"), "<R>\r\n");
        // A partial line of the server is not taken for the completion.
        r.server_bytes(b"* a1 OK no\r\na1 N");
        assert_eq!(shown(&mut r, b"more\r\n"), "<R>\r\n");
        r.server_bytes(b"O [AUTHENTICATIONFAILED] Invalid credentials\r\n");
        assert_eq!(shown(&mut r, b"a2 LOGOUT\r\n"), "a2 LOGOUT\r\n");
    }

    #[test]
    fn authenticate_without_initial_response_then_multi_step() {
        let mut r = Redactor::default();
        assert_eq!(
            shown(&mut r, b"a1 AUTHENTICATE PLAIN\r\n"),
            "a1 AUTHENTICATE PLAIN\r\n"
        );
        r.server_bytes(b"+ \r\n");
        assert_eq!(shown(&mut r, b"AHUAcA==\r\n"), "<R>\r\n");
        r.server_bytes(b"+ more\r\n");
        assert_eq!(shown(&mut r, b"c2Vjb25k\r\n"), "<R>\r\n");
        r.server_bytes(b"a1 bad what\r\n");
        assert_eq!(shown(&mut r, b"a2 NOOP\r\n"), "a2 NOOP\r\n");
    }

    #[test]
    fn login_with_literals_hides_the_literal_lines() {
        let mut r = Redactor::default();
        assert_eq!(shown(&mut r, b"a1 LOGIN {4}\r\n"), "a1 LOGIN <R>\r\n");
        r.server_bytes(b"+ Ready\r\n");
        assert_eq!(shown(&mut r, b"user {4}\r\n"), "<R>\r\n");
        r.server_bytes(b"+ Ready\r\n");
        assert_eq!(shown(&mut r, b"pass\r\n"), "<R>\r\n");
        r.server_bytes(b"a1 OK\r\n");
        assert_eq!(shown(&mut r, b"a2 NOOP\r\n"), "a2 NOOP\r\n");
    }

    #[test]
    fn other_tags_do_not_complete_the_authentication() {
        let mut r = Redactor::default();
        shown(&mut r, b"a10 AUTHENTICATE PLAIN\r\n");
        r.server_bytes(b"a1 OK\r\na100 OK\r\na10OK\r\n");
        assert_eq!(shown(&mut r, b"secret\r\n"), "<R>\r\n");
    }
}
