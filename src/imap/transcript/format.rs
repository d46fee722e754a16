//! The transcript's text syntax: how bytes are escaped into readable lines and back, what
//! each kind of line looks like, and the per-line digests. Both the writer and the reader
//! use only this module for syntax, so the two cannot drift apart.

use std::io;

use sha2::{Digest as _, Sha256};

/// First line of every transcript; the number is the format version.
pub(super) const HEADER: &str = "# soar-imap IMAP transcript, format 1";

/// What [`HEADER`] looks like for any version, to tell "other version" from "not a transcript".
pub(super) const HEADER_PREFIX: &str = "# soar-imap IMAP transcript, format ";

/// Comment lines written under the header, for whoever opens the file.
pub(super) const LEGEND: &[&str] = &[
    "# S: server line, C: client line, each ending in CRLF; S- / C-: exact bytes with no CRLF",
    "# (a trailing \\n is a bare LF). S! EOF: the server closed; S! error: a read failed.",
    "# @: a note on the connection. Escapes: \\\\ \\r \\n \\t \\xNN; \\<redacted> hides credentials.",
    "# To replay an edited transcript, delete the \"== digests\" block at the end.",
];

/// Stands for client bytes that were not recorded (credentials). Content backslashes are
/// always escaped as `\\`, so real content can never produce this sequence.
pub(super) const REDACTED: &[u8] = b"\\<redacted>";

/// Starts the header of each connection: `== connection 2: STARTTLS`.
pub(super) const CONNECTION: &[u8] = b"== connection ";

/// The line that opens the digests block.
pub(super) const DIGESTS: &[u8] = b"== digests";

/// Digests per line of the digests block.
pub(super) const DIGESTS_PER_LINE: usize = 16;

/// A recorded server close (a read returned no bytes).
pub(super) const EOF_LINE: &[u8] = b"S! EOF";

/// Prefix of a recorded failed read: `S! error TimedOut: connection timed out`.
pub(super) const ERROR_PREFIX: &[u8] = b"S! error ";

/// Who sent a piece.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// The IMAP server (bytes the client read).
    Server,
    /// The client (bytes the connector wrote).
    Client,
}

/// The line prefix of a piece: `S: ` for CRLF-terminated pieces (the CRLF is implied and
/// not written), `S- ` for any other piece (written exactly).
pub(super) fn piece_prefix(side: Side, crlf: bool) -> &'static [u8] {
    match (side, crlf) {
        (Side::Server, true) => b"S: ",
        (Side::Server, false) => b"S- ",
        (Side::Client, true) => b"C: ",
        (Side::Client, false) => b"C- ",
    }
}

/// Characters that are valid UTF-8 but would make the file misleading to read or to
/// split into lines (C1 controls, Unicode line separators, byte order mark, bidi
/// controls): written as `\xNN` bytes like control characters.
fn hidden(c: char) -> bool {
    matches!(c,
        '\u{80}'..='\u{9f}'
        | '\u{200e}' | '\u{200f}'
        | '\u{2028}' | '\u{2029}'
        | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}'
        | '\u{feff}')
}

fn push_hex_byte(b: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(&[
        b'\\',
        b'x',
        HEX[usize::from(b >> 4)],
        HEX[usize::from(b & 15)],
    ]);
}

/// Append `bytes` escaped: `\\`, `\r`, `\n`, `\t`, `\xNN` for other control bytes, for
/// bytes that are not valid UTF-8 and for [`hidden`] characters; everything else as is.
/// A final space becomes `\x20`, so an editor trimming trailing blanks cannot change
/// the content (format=flowed mail ends many lines in a space).
pub(super) fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    escape_part_into(bytes, true, out);
}

/// [`escape_into`] for a part of a line: a final space is escaped only when the part
/// ends the line (`at_end`), not before a redaction marker.
pub(super) fn escape_part_into(bytes: &[u8], at_end: bool, out: &mut Vec<u8>) {
    let (body, trailing_space) = match bytes.split_last() {
        Some((b' ', body)) if at_end => (body, true),
        _ => (bytes, false),
    };
    for chunk in body.utf8_chunks() {
        let valid = chunk.valid();
        let raw = valid.as_bytes();
        let mut run = 0;
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if (0x20..0x7f).contains(&b) && b != b'\\' {
                i += 1;
                continue;
            }
            out.extend_from_slice(&raw[run..i]);
            if b.is_ascii() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    _ => push_hex_byte(b, out),
                }
                i += 1;
            } else {
                // `i` is a char boundary: every byte before it in `valid` was handled
                // whole, and ASCII bytes never occur inside a multi-byte character.
                let c = valid.get(i..).and_then(|s| s.chars().next());
                let width = c.map_or(1, char::len_utf8);
                let encoded = raw.get(i..i + width).unwrap_or_default();
                if c.is_some_and(hidden) {
                    for &e in encoded {
                        push_hex_byte(e, out);
                    }
                } else {
                    out.extend_from_slice(encoded);
                }
                i += width;
            }
            run = i;
        }
        out.extend_from_slice(&raw[run..]);
        for &b in chunk.invalid() {
            push_hex_byte(b, out);
        }
    }
    if trailing_space {
        out.extend_from_slice(b"\\x20");
    }
}

/// `bytes` escaped, as a string (for messages); `at_end` as for [`escape_part_into`].
pub(super) fn escape(bytes: &[u8], at_end: bool) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    escape_part_into(bytes, at_end, &mut out);
    // Escaping leaves only valid UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decode escaped `text` onto `out`. When `allow_marker`, one [`REDACTED`] marker may
/// appear; its position in `out` is returned.
pub(super) fn unescape_into(
    text: &[u8],
    allow_marker: bool,
    out: &mut Vec<u8>,
) -> Result<Option<usize>, String> {
    let mut marker = None;
    let mut rest = text;
    while let Some(at) = rest.iter().position(|&b| b == b'\\') {
        out.extend_from_slice(&rest[..at]);
        let escape = &rest[at..];
        let (byte, used) = match escape.get(1) {
            Some(b'\\') => (b'\\', 2),
            Some(b'r') => (b'\r', 2),
            Some(b'n') => (b'\n', 2),
            Some(b't') => (b'\t', 2),
            Some(b'x') => match (
                escape.get(2).copied().and_then(hex_value),
                escape.get(3).copied().and_then(hex_value),
            ) {
                (Some(high), Some(low)) => ((high << 4) | low, 4),
                _ => {
                    return Err(format!(
                        "\"{}\" is not an escape: \\x takes two hex digits",
                        String::from_utf8_lossy(&escape[..escape.len().min(4)])
                    ));
                }
            },
            Some(b'<') if escape.starts_with(REDACTED) => {
                if !allow_marker {
                    return Err("\\<redacted> can only stand in a client line".into());
                }
                if marker.is_some() {
                    return Err("a line holds at most one \\<redacted>".into());
                }
                marker = Some(out.len());
                rest = &escape[REDACTED.len()..];
                continue;
            }
            Some(_) => {
                let shown: String = String::from_utf8_lossy(&escape[1..])
                    .chars()
                    .take(1)
                    .collect();
                return Err(format!(
                    "\"\\{shown}\" is not an escape (the escapes are \\\\ \\r \\n \\t \\xNN \\<redacted>)"
                ));
            }
            None => return Err("the line ends in a lone backslash (write \\\\)".into()),
        };
        out.push(byte);
        rest = &escape[used..];
    }
    out.extend_from_slice(rest);
    Ok(marker)
}

/// One line of a transcript file, by its leading characters.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Line<'a> {
    /// Empty, or a `#` comment: ignored.
    Ignored,
    /// `== connection N: mode`.
    Connection {
        /// The number as written.
        number: &'a [u8],
        /// The mode, escaped.
        mode: &'a [u8],
    },
    /// `== digests`.
    Digests,
    /// `@ key value`.
    Note {
        /// The key.
        key: &'a [u8],
        /// The value, escaped.
        value: &'a [u8],
    },
    /// `S:`, `S-`, `C:`, `C-` and the escaped content.
    Piece {
        /// Who sent it.
        side: Side,
        /// `:` (CRLF implied) or `-` (exact).
        crlf: bool,
        /// The content, escaped.
        content: &'a [u8],
    },
    /// `S! EOF`.
    Eof,
    /// `S! error Kind: message`.
    ReadError {
        /// The `io::ErrorKind` name.
        kind: &'a [u8],
        /// The message, escaped.
        message: &'a [u8],
    },
    /// Anything else.
    Unknown,
}

/// Classify one line (without its line end).
pub(super) fn classify(line: &[u8]) -> Line<'_> {
    if line.is_empty() || line.starts_with(b"#") {
        return Line::Ignored;
    }
    if let Some(rest) = line.strip_prefix(CONNECTION) {
        return match rest.iter().position(|&b| b == b':') {
            Some(colon) => Line::Connection {
                number: &rest[..colon],
                mode: rest[colon + 1..]
                    .strip_prefix(b" ")
                    .unwrap_or(&rest[colon + 1..]),
            },
            None => Line::Unknown,
        };
    }
    if line.trim_ascii_end() == DIGESTS {
        return Line::Digests;
    }
    if let Some(rest) = line.strip_prefix(b"@ ") {
        let (key, value) = match rest.iter().position(|&b| b == b' ') {
            Some(space) => (&rest[..space], &rest[space + 1..]),
            None => (rest, &b""[..]),
        };
        return Line::Note { key, value };
    }
    if line.trim_ascii_end() == EOF_LINE {
        return Line::Eof;
    }
    if let Some(rest) = line.strip_prefix(ERROR_PREFIX) {
        let colon = rest.iter().position(|&b| b == b':').unwrap_or(rest.len());
        let message = rest.get(colon + 1..).unwrap_or_default();
        return Line::ReadError {
            kind: &rest[..colon],
            message: message.strip_prefix(b" ").unwrap_or(message),
        };
    }
    let side = match line.first() {
        Some(b'S') => Side::Server,
        Some(b'C') => Side::Client,
        _ => return Line::Unknown,
    };
    let crlf = match line.get(1) {
        Some(b':') => true,
        Some(b'-') => false,
        _ => return Line::Unknown,
    };
    // "S:" alone is an empty line whose blank an editor trimmed.
    match line.get(2) {
        None => Line::Piece {
            side,
            crlf,
            content: b"",
        },
        Some(b' ') => Line::Piece {
            side,
            crlf,
            content: &line[3..],
        },
        Some(_) => Line::Unknown,
    }
}

/// The `io::ErrorKind`s a recorded read error can name; anything else replays as `Other`.
const ERROR_KINDS: &[io::ErrorKind] = &[
    io::ErrorKind::NotFound,
    io::ErrorKind::PermissionDenied,
    io::ErrorKind::ConnectionRefused,
    io::ErrorKind::ConnectionReset,
    io::ErrorKind::HostUnreachable,
    io::ErrorKind::NetworkUnreachable,
    io::ErrorKind::ConnectionAborted,
    io::ErrorKind::NotConnected,
    io::ErrorKind::AddrInUse,
    io::ErrorKind::AddrNotAvailable,
    io::ErrorKind::NetworkDown,
    io::ErrorKind::BrokenPipe,
    io::ErrorKind::AlreadyExists,
    io::ErrorKind::WouldBlock,
    io::ErrorKind::TimedOut,
    io::ErrorKind::WriteZero,
    io::ErrorKind::Interrupted,
    io::ErrorKind::Unsupported,
    io::ErrorKind::UnexpectedEof,
    io::ErrorKind::OutOfMemory,
    io::ErrorKind::InvalidInput,
    io::ErrorKind::InvalidData,
    io::ErrorKind::Other,
];

/// The name an error kind is written under.
pub(super) fn error_kind_name(kind: io::ErrorKind) -> String {
    format!("{kind:?}")
}

/// The error kind a name stands for.
pub(super) fn error_kind(name: &[u8]) -> io::ErrorKind {
    ERROR_KINDS
        .iter()
        .copied()
        .find(|kind| error_kind_name(*kind).as_bytes() == name)
        .unwrap_or(io::ErrorKind::Other)
}

/// A line's digest: the first 4 bytes of its SHA-256.
pub(super) fn digest(line: &[u8]) -> [u8; 4] {
    let hash = Sha256::digest(line);
    [hash[0], hash[1], hash[2], hash[3]]
}

/// Append a digest as 8 lowercase hex digits.
pub(super) fn push_digest(digest: [u8; 4], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in digest {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// Read 8 hex digits back.
pub(super) fn parse_digest(token: &[u8]) -> Option<[u8; 4]> {
    if token.len() != 8 {
        return None;
    }
    let mut digest = [0u8; 4];
    for (i, pair) in token.chunks_exact(2).enumerate() {
        digest[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(digest)
}

/// At most this many characters of a line go into a message.
const SHOWN: usize = 160;

/// A transcript line or escaped piece, shortened for a message.
pub(super) fn shorten(text: &str) -> String {
    if text.chars().count() <= SHOWN {
        return text.to_owned();
    }
    let head: String = text.chars().take(SHOWN).collect();
    format!("{head}… ({} characters)", text.chars().count())
}

/// Two escaped strings for a "expected ..., sent ..." message: whole when short, else a
/// window around the first difference, so the difference is always in view.
pub(super) fn contrast(expected: &str, sent: &str) -> (String, String) {
    let expected: Vec<char> = expected.chars().collect();
    let sent: Vec<char> = sent.chars().collect();
    if expected.len() <= SHOWN && sent.len() <= SHOWN {
        return (expected.iter().collect(), sent.iter().collect());
    }
    let common = expected
        .iter()
        .zip(&sent)
        .take_while(|(a, b)| a == b)
        .count();
    let from = common.saturating_sub(SHOWN / 3);
    let window = |text: &[char]| {
        let to = text.len().min(from + SHOWN);
        let mut shown = String::new();
        if from > 0 {
            shown.push('…');
        }
        shown.extend(text.get(from..to).unwrap_or_default());
        if to < text.len() {
            shown.push('…');
        }
        shown
    };
    (window(&expected), window(&sent))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(bytes: &[u8]) -> Vec<u8> {
        let mut escaped = Vec::new();
        escape_into(bytes, &mut escaped);
        assert!(
            std::str::from_utf8(&escaped).is_ok(),
            "escaped text is UTF-8"
        );
        assert!(!escaped.contains(&b'\n') && !escaped.contains(&b'\r'));
        assert!(!escaped.ends_with(b" "));
        let mut back = Vec::new();
        assert_eq!(unescape_into(&escaped, false, &mut back), Ok(None));
        back
    }

    #[test]
    fn escapes_controls_invalid_utf8_and_hidden_characters_and_keeps_text() {
        let mut out = Vec::new();
        escape_into("a\\b\r\n\t\0\x7f é\u{2028}\u{85} ".as_bytes(), &mut out);
        out.extend_from_slice(b"|");
        escape_into(&[0xff, b'x', 0xc3], &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\\\\b\\r\\n\\t\\x00\\x7f é\\xe2\\x80\\xa8\\xc2\\x85\\x20|\\xffx\\xc3"
        );
    }

    #[test]
    fn every_byte_and_awkward_sequences_round_trip() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(round_trip(&all), all);
        for case in [
            &b""[..],
            b" ",
            b"  ",
            b"\\",
            b"\\<redacted>",
            b"\\x41",
            "é".as_bytes(),
            &"é".as_bytes()[..1],
            b"\xf0\x9f\x98",
            "👍🏽‍".as_bytes(),
        ] {
            assert_eq!(round_trip(case), case);
        }
    }

    #[test]
    fn unescape_reports_bad_escapes_and_markers() {
        let mut out = Vec::new();
        assert!(unescape_into(b"a\\q", false, &mut out).is_err());
        assert!(unescape_into(b"a\\x4", false, &mut out).is_err());
        assert!(unescape_into(b"a\\xg0", false, &mut out).is_err());
        assert!(unescape_into(b"a\\", false, &mut out).is_err());
        assert!(unescape_into(b"a\\<redacted>", false, &mut out).is_err());
        assert!(unescape_into(b"\\<redacted>\\<redacted>", true, &mut out).is_err());
        assert!(unescape_into(b"\\<other>", true, &mut out).is_err());
        out.clear();
        assert_eq!(
            unescape_into(b"a1 LOGIN \\<redacted>\\n", true, &mut out),
            Ok(Some(9))
        );
        assert_eq!(out, b"a1 LOGIN \n");
        out.clear();
        assert_eq!(
            unescape_into(b"\\X41\\xe9", false, &mut out),
            Err(
                "\"\\X\" is not an escape (the escapes are \\\\ \\r \\n \\t \\xNN \\<redacted>)"
                    .into()
            )
        );
    }

    #[test]
    fn classifies_lines() {
        assert_eq!(classify(b""), Line::Ignored);
        assert_eq!(classify(b"# note"), Line::Ignored);
        assert_eq!(
            classify(b"== connection 2: implicit TLS"),
            Line::Connection {
                number: b"2",
                mode: b"implicit TLS"
            }
        );
        assert_eq!(classify(b"== digests"), Line::Digests);
        assert_eq!(
            classify(b"@ tls TLSv1.3 X"),
            Line::Note {
                key: b"tls",
                value: b"TLSv1.3 X"
            }
        );
        assert_eq!(
            classify(b"S: x"),
            Line::Piece {
                side: Side::Server,
                crlf: true,
                content: b"x"
            }
        );
        assert_eq!(
            classify(b"C-"),
            Line::Piece {
                side: Side::Client,
                crlf: false,
                content: b""
            }
        );
        assert_eq!(classify(b"S! EOF"), Line::Eof);
        assert_eq!(
            classify(b"S! error TimedOut: timed out"),
            Line::ReadError {
                kind: b"TimedOut",
                message: b"timed out"
            }
        );
        assert_eq!(classify(b"S:x"), Line::Unknown);
        assert_eq!(classify(b"X: x"), Line::Unknown);
        assert_eq!(classify(b"== connection"), Line::Unknown);
    }

    #[test]
    fn error_kinds_and_digests_read_back() {
        assert_eq!(error_kind(b"TimedOut"), io::ErrorKind::TimedOut);
        assert_eq!(error_kind(b"NoSuchKind"), io::ErrorKind::Other);
        let mut hex = Vec::new();
        push_digest(digest(b"S: * OK"), &mut hex);
        assert_eq!(parse_digest(&hex), Some(digest(b"S: * OK")));
        assert_eq!(parse_digest(b"0123456"), None);
        assert_eq!(parse_digest(b"0123456g"), None);
    }

    #[test]
    fn contrast_keeps_the_difference_in_view() {
        let expected = format!("{}A{}", "x".repeat(500), "y".repeat(500));
        let sent = format!("{}B{}", "x".repeat(500), "y".repeat(500));
        let (e, s) = contrast(&expected, &sent);
        assert!(e.contains("xA") && s.contains("xB"), "{e} / {s}");
        assert!(e.starts_with('…') && e.ends_with('…'));
        assert_eq!(contrast("ab", "ac"), ("ab".into(), "ac".into()));
    }
}
