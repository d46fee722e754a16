//! Header triage: pure verdicts an analyst wants first on a reported email, read from its
//! header block alone (no DNS, no network).
//!
//! - `authentication`: the receiver's SPF, DKIM and DMARC results (`Authentication-Results`,
//!   `Received-SPF`) and one verdict over them;
//! - `sender`: sender tricks (Reply-To, Return-Path or a display name pointing elsewhere);
//! - `received`: the `Received` chain as hops, which of them are internal, and the
//!   originating IP (the host that handed the mail to the receiving system).
//!
//! Every function is total: any header values (folded, truncated, hostile) give a result,
//! never a panic, in time linear in the header text.

pub mod authentication;
pub mod received;
pub mod sender;

pub use authentication::{EmailAuthentication, Verdict, email_authentication};
pub use received::{Hop, originating_ip, received_chain};
pub use sender::sender_mismatches;

/// One lexical item of a structured header value (RFC 5322 §3.2: words, comments, quoted
/// strings), with `;` and `=` as their own items because every header read here uses them
/// as separators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lexeme<'a> {
    /// A run of text without white space, `(`, `"`, `;` or `=`.
    Word(&'a str),
    /// The inside of a `(comment)`, nested comments included; an unclosed one runs to the end.
    Comment(&'a str),
    /// The inside of a `"quoted string"` (escapes kept); an unclosed one runs to the end.
    Quoted(&'a str),
    /// `;`
    Semicolon,
    /// `=`
    Equals,
}

/// A lexeme and the byte offset just past it (where the date of a `Received` starts).
type Spanned<'a> = (Lexeme<'a>, usize);

/// Splits a header value into lexemes, left to right, in one pass.
///
/// Folding line breaks count as white space. Every delimiter is ASCII, so each slice
/// boundary is a character boundary whatever the value holds.
fn lex(value: &str) -> Vec<Spanned<'_>> {
    let bytes = value.as_bytes();
    // About one lexeme per 8 bytes in real headers: sized once instead of grown 4 times.
    let mut out = Vec::with_capacity(value.len() / 8 + 4);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b if b.is_ascii_whitespace() => i += 1,
            b';' => {
                i += 1;
                out.push((Lexeme::Semicolon, i));
            }
            b'=' => {
                i += 1;
                out.push((Lexeme::Equals, i));
            }
            b'(' => {
                let end = comment_end(bytes, i);
                let inner_end = if end > i + 1 && bytes[end - 1] == b')' {
                    end - 1
                } else {
                    end
                };
                out.push((Lexeme::Comment(&value[i + 1..inner_end]), end));
                i = end;
            }
            b'"' => {
                let end = quoted_end(bytes, i);
                let inner_end = if end > i + 1 && bytes[end - 1] == b'"' {
                    end - 1
                } else {
                    end
                };
                out.push((Lexeme::Quoted(&value[i + 1..inner_end]), end));
                i = end;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !matches!(bytes[i], b'(' | b'"' | b';' | b'=')
                {
                    i += 1;
                }
                out.push((Lexeme::Word(&value[start..i]), i));
            }
        }
    }
    out
}

/// The offset just past the `)` that closes the comment opening at `start`, honouring
/// nesting and `\` quoting (RFC 5322 §3.2.2); the end of the text if it never closes. A
/// `"` inside a comment is ordinary text.
fn comment_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0_usize;
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start) {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    bytes.len()
}

/// The offset just past the `"` that closes the quoted string opening at `start`; the end
/// of the text if it never closes. Parentheses inside are ordinary text.
fn quoted_end(bytes: &[u8], start: usize) -> usize {
    let mut escaped = false;
    for (i, &b) in bytes.iter().enumerate().skip(start + 1) {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return i + 1,
            _ => {}
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexes_words_comments_quotes_and_separators() {
        let lexemes: Vec<_> = lex("a=b (c (d) \"e) f;\"x(y\" ;")
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(
            lexemes,
            [
                Lexeme::Word("a"),
                Lexeme::Equals,
                Lexeme::Word("b"),
                Lexeme::Comment("c (d) \"e"),
                Lexeme::Word("f"),
                Lexeme::Semicolon,
                Lexeme::Quoted("x(y"),
                Lexeme::Semicolon,
            ]
        );
    }

    #[test]
    fn unclosed_comments_and_quotes_run_to_the_end() {
        let lexemes: Vec<_> = lex("a (b (c) d").into_iter().map(|(l, _)| l).collect();
        assert_eq!(lexemes, [Lexeme::Word("a"), Lexeme::Comment("b (c) d")]);
        let lexemes: Vec<_> = lex("\"a\\\" b").into_iter().map(|(l, _)| l).collect();
        assert_eq!(lexemes, [Lexeme::Quoted("a\\\" b")]);
        assert_eq!(lex("("), [(Lexeme::Comment(""), 1)]);
        assert_eq!(lex(")"), [(Lexeme::Word(")"), 1)]);
        assert_eq!(lex("\""), [(Lexeme::Quoted(""), 1)]);
    }

    #[test]
    fn multibyte_text_is_sliced_on_character_boundaries() {
        let lexemes: Vec<_> = lex("é=ü (ß) \"日本\";")
            .into_iter()
            .map(|(l, _)| l)
            .collect();
        assert_eq!(
            lexemes,
            [
                Lexeme::Word("é"),
                Lexeme::Equals,
                Lexeme::Word("ü"),
                Lexeme::Comment("ß"),
                Lexeme::Quoted("日本"),
                Lexeme::Semicolon,
            ]
        );
    }

    /// The root header block of a fixture email, as the walk reports it.
    fn root_headers(raw: &[u8]) -> Vec<crate::mime::RawHeader> {
        let mut root = Vec::new();
        crate::mime::walk(raw, 1, &mut |event| {
            if let crate::mime::Event::Message { depth: 0, headers } = event {
                root = headers;
            }
        });
        root
    }

    /// What `fixtures/eml/README.md` promises for one `triage/` fixture.
    struct Promise {
        raw: &'static [u8],
        /// `(spf, dkim, dmarc, verdict)`, `None` for no `emailAuthentication`.
        auth: Option<[&'static str; 4]>,
        mismatches: &'static [&'static str],
        origin: Option<&'static str>,
        internal: &'static [bool],
    }

    fn check(name: &str, promise: &Promise) {
        let headers = root_headers(promise.raw);
        let word = |v: &Option<String>| v.clone().unwrap_or_else(|| "null".to_owned());
        let got = email_authentication(&headers).map(|a| {
            let verdict = serde_json::to_value(a.verdict).unwrap_or_default();
            [
                word(&a.spf),
                word(&a.dkim),
                word(&a.dmarc),
                verdict.as_str().unwrap_or_default().to_owned(),
            ]
        });
        let want = promise.auth.map(|a| a.map(str::to_owned));
        assert_eq!(got, want, "{name} authentication");
        assert_eq!(
            sender_mismatches(&headers),
            promise.mismatches,
            "{name} mismatches"
        );
        let hops = received_chain(&headers);
        let flags: Vec<bool> = hops.iter().map(|h| h.internal).collect();
        assert_eq!(flags, promise.internal, "{name} internal hops: {hops:#?}");
        assert_eq!(
            originating_ip(&hops),
            promise.origin,
            "{name} originating IP"
        );
    }

    /// The `triage/` rows of `fixtures/eml/README.md`, as data.
    const PROMISES: [(&str, Promise); 9] = [
        (
            "010",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/010-auth-pass-gmail.eml"),
                auth: Some(["pass", "pass", "pass", "pass"]),
                mismatches: &[],
                origin: Some("198.51.100.25"),
                internal: &[true, false, true],
            },
        ),
        (
            "011",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/011-auth-m365-fail.eml"),
                auth: Some(["fail", "none", "fail", "fail"]),
                mismatches: &[],
                origin: Some("203.0.113.47"),
                internal: &[true, true, true, false],
            },
        ),
        (
            "012",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/012-auth-softfail-suspicious.eml"),
                auth: Some(["softfail", "pass", "none", "suspicious"]),
                mismatches: &[],
                origin: Some("198.51.100.77"),
                internal: &[true, false],
            },
        ),
        (
            "013",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/013-auth-none-undetermined.eml"),
                auth: Some(["none", "null", "null", "undetermined"]),
                mismatches: &[],
                origin: Some("198.51.100.140"),
                internal: &[false],
            },
        ),
        (
            "014",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/014-auth-dkim-policy.eml"),
                auth: Some(["pass", "policy", "pass", "suspicious"]),
                mismatches: &[],
                origin: Some("203.0.113.150"),
                internal: &[false],
            },
        ),
        (
            "015",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/015-auth-bestguesspass.eml"),
                auth: Some(["pass", "pass", "bestguesspass", "pass"]),
                mismatches: &[],
                origin: Some("198.51.100.61"),
                internal: &[true, true, true, false],
            },
        ),
        (
            "016",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/016-sender-mismatches.eml"),
                auth: None,
                mismatches: &[
                    "reply_to_domain",
                    "return_path_domain",
                    "display_name_address",
                ],
                origin: Some("203.0.113.71"),
                internal: &[false],
            },
        ),
        (
            "017",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/017-received-m365-chain.eml"),
                auth: Some(["pass", "pass", "pass", "pass"]),
                mismatches: &[],
                origin: Some("203.0.113.88"),
                internal: &[true, true, true, false, true],
            },
        ),
        (
            "018",
            Promise {
                raw: include_bytes!("../../fixtures/eml/triage/018-received-gmail-chain.eml"),
                auth: Some(["pass", "neutral", "pass", "undetermined"]),
                mismatches: &[],
                origin: Some("198.51.100.140"),
                internal: &[true, false, true, true],
            },
        ),
    ];

    #[test]
    fn triage_fixtures_show_what_the_readme_says() {
        for (name, promise) in &PROMISES {
            check(name, promise);
        }
    }
}
