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
    let mut out = Vec::new();
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

/// The registrable domain of a host name (`mail.evil.co.uk` gives `evil.co.uk`), lowercased,
/// after dropping `[...]` and one root dot; `None` for IP literals and names the Public Suffix
/// List cannot split (single labels such as `localhost`).
///
/// Names under a suffix the list does not know still get one (its default `*` rule), so an
/// invented or internal TLD compares like any other.
fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() || host.contains(':') {
        return None;
    }
    let host = host.to_lowercase();
    psl::domain_str(&host).map(str::to_owned)
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

    #[test]
    fn registrable_domains_follow_the_public_suffix_list() {
        assert_eq!(
            registrable_domain("Mail.Evil.CO.UK.").as_deref(),
            Some("evil.co.uk")
        );
        assert_eq!(
            registrable_domain("BN8NAM12FT066.mail.protection.outlook.com").as_deref(),
            Some("outlook.com")
        );
        assert_eq!(registrable_domain("localhost"), None);
        assert_eq!(registrable_domain("[192.0.2.1]"), None);
        assert_eq!(registrable_domain("2603:10b6:5:1b4::23"), None);
        assert_eq!(registrable_domain(""), None);
    }
}
