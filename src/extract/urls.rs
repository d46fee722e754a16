//! URLs: `http`/`https` candidates from text and HTML attributes, trimmed and validated the
//! way the reference's Django `URLValidator` did, but keeping IDN hosts, `~|{}` paths and
//! hosts under suffixes the Public Suffix List does not know, and ending a URL before any
//! closing bracket it did not open.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

use super::domains::{is_host_name, is_registrable, lowercase};
use super::{Class, ExtractOptions, Indicators, MAX_URL_LEN, Pattern, UrlFacts, find_all, unwrap};

/// A URL that starts an attribute value: as in text (see [`text_urls`]), but an apostrophe
/// is part of it, since the attribute's own quoting already delimited the value.
static ATTRIBUTE_URL: Pattern = LazyLock::new(|| {
    Regex::new(r#"\A(?i-u:https?)://[^\s\p{Cc}<>"`\u{200B}-\u{200D}\u{2060}\u{FEFF}]*"#).ok()
});

/// Scans running text for URLs. A URL nested in another one's query is part of it, as in
/// the reference.
pub(super) fn scan_text(text: &str, opts: ExtractOptions, out: &mut Indicators) {
    for url in text_urls(text) {
        let _ = accept(url, opts, out);
    }
}

/// URLs in running text, left to right: `http://` or `https://` (scheme in any ASCII case),
/// up to whitespace, a control or zero-width character, `<`, `>`, `"`, `'`, a backtick, or
/// a closing bracket that nothing in the URL opened (see [`Brackets`]). Without that last
/// stop these are the matches of
/// ``(?i-u:https?)://[^\s\p{Cc}<>"'`\u{200B}-\u{200D}\u{2060}\u{FEFF}]*``, found from
/// each `://` instead: the regex engine read every byte of every body to find them. The
/// search goes on right after the stop, so `[a](https://x.example/1)[b](https://y.example/2)`
/// gives both links and a bracket costs no second pass.
fn text_urls(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(colon) = super::find_byte(bytes, from, |b| b == b':') {
            from = colon + 1;
            if bytes.get(colon + 1..colon + 3) != Some(b"//") {
                continue;
            }
            let scheme = |s: &[u8]| {
                colon
                    .checked_sub(s.len())
                    .filter(|&start| bytes[start..colon].eq_ignore_ascii_case(s))
            };
            // the earliest start wins: `https` before `http`
            let Some(start) = scheme(b"https").or_else(|| scheme(b"http")) else {
                continue;
            };
            let end = url_end(text, colon + 3);
            from = end;
            return Some(&text[start..end]);
        }
        None
    })
}

/// Where a URL whose rest starts at byte `i` ends: ASCII bytes are tested as they are,
/// other characters decoded.
fn url_end(text: &str, mut i: usize) -> usize {
    let bytes = text.as_bytes();
    let mut brackets = Brackets::default();
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            if b <= b' '
                || matches!(b, 0x7f | b'<' | b'>' | b'"' | b'\'' | b'`')
                || brackets.closes_unopened(b)
            {
                return i;
            }
            i += 1;
        } else {
            match text[i..].chars().next() {
                Some(c) if !ends_url(c) => i += c.len_utf8(),
                _ => return i,
            }
        }
    }
    i
}

/// A character a URL in text stops before.
fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '<' | '>' | '"' | '\'' | '`' | '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}'
        )
}

/// Takes an attribute value (`href`, `src`...) as a URL if it is one; returns the URL
/// recorded (unwrapped), for the link-text check.
pub(super) fn scan_attribute<'v>(
    value: &'v str,
    opts: ExtractOptions,
    out: &mut Indicators,
) -> Option<Cow<'v, str>> {
    let value = value.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let url = find_all(&ATTRIBUTE_URL, value).next()?;
    accept(url.as_str(), opts, out)
}

/// Open bracket depths along a URL, to find the first closing bracket that nothing in the
/// URL opened: the URL ends before it. `https://example.com/x][X` ends at `/x`, markdown's
/// `[text](https://example.com/x)` and `(see https://example.com/x).` at `/x`, while
/// `https://en.wikipedia.org/wiki/Foo_(bar)_baz`, `https://example.com/a[1]/b` and
/// `http://[2001:db8::1]/` keep theirs. One counter per kind, not a stack: crossed pairs
/// (`([)]`) pass as balanced, since prose does not wrap a URL that way, and counters need
/// no allocation.
///
/// `}` is treated like `)` and `]`: a raw `}` with no `{` before it closes a template or
/// markup around the URL (`\href{https://x.example/a}{text}`, `{url: https://x.example/a}`)
/// far more often than it is part of a path, where it would be percent-encoded.
#[derive(Default)]
struct Brackets {
    /// Open `(`, `[` and `{`, in that order.
    depth: [u32; 3],
}

impl Brackets {
    /// Counts `b` and says whether it closes a bracket that is not open.
    fn closes_unopened(&mut self, b: u8) -> bool {
        let (kind, opens) = match b {
            b'(' => (0, true),
            b')' => (0, false),
            b'[' => (1, true),
            b']' => (1, false),
            b'{' => (2, true),
            b'}' => (2, false),
            _ => return false,
        };
        let depth = &mut self.depth[kind];
        if opens {
            *depth = depth.saturating_add(1);
            false
        } else if *depth == 0 {
            true
        } else {
            *depth -= 1;
            false
        }
    }
}

/// Trims a candidate, validates it, and records the URL and its host's domain; returns
/// the URL recorded, if any. A link a mail gateway rewrote is recorded as the original
/// URL, with the wrapper noted beside it: the gateway's host is no indicator.
fn accept<'c>(
    candidate: &'c str,
    opts: ExtractOptions,
    out: &mut Indicators,
) -> Option<Cow<'c, str>> {
    // A run far beyond the limit is junk; don't even trim it.
    if candidate.len() > MAX_URL_LEN * 4 {
        return None;
    }
    let url = trim_end(candidate);
    if url.len() > MAX_URL_LEN && url.chars().count() > MAX_URL_LEN {
        return None;
    }
    if let Some(unwrapping) = unwrap::unwrap(url) {
        if let Some(warning) = unwrapping.warning {
            out.warn(format!("{warning}: {}", shortened(url)));
        }
        if !unwrapping.rewriters.is_empty() {
            if record(&unwrapping.url, opts, out) {
                let facts = UrlFacts {
                    wrapped: Some(url.to_owned()),
                    rewriter: Some(unwrapping.rewriters.join(" > ")),
                    displayed: None,
                };
                // a URL the cap left out gets no facts either: they would be kept for nothing
                if opts.urls && out.urls.contains(&unwrapping.url) {
                    out.note_url(unwrapping.url.clone(), facts);
                }
                return Some(Cow::Owned(unwrapping.url));
            }
            out.warn(format!(
                "a link unwrapped from {} is not a valid URL, kept as written: {}",
                unwrapping.rewriters.join(" > "),
                shortened(url)
            ));
        }
    }
    record(url, opts, out).then_some(Cow::Borrowed(url))
}

/// Records `url` and its host's domain if the URL is valid (each unless the cap leaves it
/// out); says whether it was valid.
fn record(url: &str, opts: ExtractOptions, out: &mut Indicators) -> bool {
    if url.len() > MAX_URL_LEN && url.chars().count() > MAX_URL_LEN {
        return false;
    }
    let Some(host) = host_of(url) else {
        return false;
    };
    if opts.urls {
        out.add(Class::Url, url);
    }
    if opts.domains
        && let Host::Domain(domain) = host
    {
        out.add(Class::Domain, &domain);
    }
    true
}

/// A URL cut to a length a warning can quote.
fn shortened(url: &str) -> String {
    const QUOTED: usize = 200;
    match url.char_indices().nth(QUOTED) {
        Some((cut, _)) => format!("{}...", &url[..cut]),
        None => url.to_owned(),
    }
}

/// Ends the URL before its first closing bracket that nothing in it opened (text
/// candidates already stop there; attribute values are cut here), then drops trailing
/// sentence punctuation: `(see http://a.example.com/x).` ends at `/x`, while
/// `https://en.wikipedia.org/wiki/Foo_(bar)` keeps its `)`. Every bracket left is balanced,
/// so the punctuation is the only thing to trim.
fn trim_end(candidate: &str) -> &str {
    let mut brackets = Brackets::default();
    let cut = candidate
        .bytes()
        .position(|b| brackets.closes_unopened(b))
        .unwrap_or(candidate.len());
    // brackets are ASCII, so `cut` is a character boundary
    candidate[..cut].trim_end_matches(is_trailing_punctuation)
}

/// Punctuation that ends a sentence around a URL rather than the URL itself (ASCII, and the
/// typographic quotes and CJK punctuation mail clients insert).
fn is_trailing_punctuation(c: char) -> bool {
    const TYPOGRAPHIC: &str = "\u{ab}\u{bb}\u{2026}\u{3001}\u{3002}\u{300d}\u{300f}\u{ff01}\u{ff09}\u{ff0c}\u{ff0e}\u{ff1a}\u{ff1b}\u{ff1f}";
    matches!(c, '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"')
        // curly single and double quotes
        || ('\u{2018}'..='\u{201f}').contains(&c)
        || (!c.is_ascii() && TYPOGRAPHIC.contains(c))
}

/// The host of a URL, once the URL passed the checks that Django's `URLValidator` made
/// (with one exception, [`Host::Unlisted`]).
#[derive(Debug, PartialEq, Eq)]
enum Host<'a> {
    /// A domain under a public suffix: lowercased, borrowed from the URL when it already was.
    Domain(Cow<'a, str>),
    /// A well-formed host name of two or more labels whose suffix the Public Suffix List
    /// does not know (`sharepoint.corp`, `server.local`, `x.invalid`). Django rejected it,
    /// but after an explicit `http(s)://` it is a link someone can follow (an intranet
    /// lure, a split-horizon name), so it is a URL; it is not a Domain Artifact.
    Unlisted,
    Ip,
    Localhost,
}

/// Parses `scheme://[userinfo@]host[:port][/?#...]` and checks the host: an IPv4, a
/// bracketed IPv6, `localhost`, a valid domain (see `domains::is_valid_domain`) or a host
/// name of two or more labels under an unlisted suffix (see `domains::is_host_name`).
/// Single-label names other than `localhost` (`http://intranet/`) are not URLs.
fn host_of(url: &str) -> Option<Host<'_>> {
    let (host_port, _) = split_authority(url)?;
    if let Some(bracketed) = host_port.strip_prefix('[') {
        let (ip, port) = bracketed.split_once(']')?;
        ip.parse::<Ipv6Addr>().ok()?;
        return (port.is_empty() || valid_port(port.strip_prefix(':')?)).then_some(Host::Ip);
    }
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if valid_port(port) => host,
        Some(_) => return None,
        None => host_port,
    };
    if host.parse::<Ipv4Addr>().is_ok() {
        return Some(Host::Ip);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Some(Host::Localhost);
    }
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = lowercase(host);
    if !is_host_name(&host) {
        None
    } else if is_registrable(&host) {
        Some(Host::Domain(host))
    } else {
        Some(Host::Unlisted)
    }
}

/// The `host[:port]` of `scheme://[userinfo@]host[:port]...` (the userinfo dropped) and the
/// text after the authority. The authority ends at `/`, `?`, `#` or `\`, as browsers end
/// it, so `https://evil.example\@gateway.example/` is evil.example's: the one reading of a
/// URL's host that validation, unwrapping and the link-text check share.
pub(super) fn split_authority(url: &str) -> Option<(&str, &str)> {
    let (_, tail) = url.split_once("://")?;
    let (authority, rest) = tail.split_at(tail.find(['/', '?', '#', '\\']).unwrap_or(tail.len()));
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some((host_port, rest))
}

fn valid_port(port: &str) -> bool {
    (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u32>().is_ok_and(|p| p <= 65535)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<String> {
        let mut out = Indicators::default();
        scan_text(text, ExtractOptions::ALL, &mut out);
        out.urls.into_iter().collect()
    }

    fn domains(text: &str) -> Vec<String> {
        let mut out = Indicators::default();
        scan_text(text, ExtractOptions::ALL, &mut out);
        out.domains.into_iter().collect()
    }

    fn attribute(value: &str) -> Vec<String> {
        let mut out = Indicators::default();
        let _ = scan_attribute(value, ExtractOptions::ALL, &mut out);
        out.urls.into_iter().collect()
    }

    #[test]
    fn a_gateway_wrapped_link_gives_the_original_url_and_no_gateway_domain() {
        let wrapped = "https://nam12.safelinks.protection.outlook.com/?url=https%3A%2F%2Flogin.evil-bank.com%2Fverify%3Fid%3D7&data=05%7C02%7Cbob%40example.com&reserved=0";
        let mut out = Indicators::default();
        scan_text(
            &format!("Open {wrapped} now."),
            ExtractOptions::ALL,
            &mut out,
        );
        assert_eq!(
            out.urls.iter().collect::<Vec<_>>(),
            ["https://login.evil-bank.com/verify?id=7"]
        );
        assert_eq!(
            out.domains.iter().collect::<Vec<_>>(),
            ["login.evil-bank.com"]
        );
        let facts = &out.url_facts["https://login.evil-bank.com/verify?id=7"];
        assert_eq!(facts.wrapped.as_deref(), Some(wrapped));
        assert_eq!(facts.rewriter.as_deref(), Some("microsoft_safelinks"));
        assert!(out.warnings.is_empty());
    }

    #[test]
    fn a_malformed_wrapper_stays_as_written_with_a_warning() {
        let wrapped = "https://urldefense.com/v3/__https://evil.example.net/**Z__;QQ!!x!y$";
        let mut out = Indicators::default();
        scan_text(wrapped, ExtractOptions::ALL, &mut out);
        assert_eq!(out.urls.iter().collect::<Vec<_>>(), [wrapped]);
        assert!(out.url_facts.is_empty());
        let warnings: Vec<_> = out.warnings.iter().collect();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("Proofpoint") && warnings[0].contains("urldefense.com"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_mimecast_link_cannot_be_unwrapped_offline_and_stays() {
        assert_eq!(
            urls("https://protect-eu.mimecast.com/s/AbCdEfGh?domain=evil.example.net"),
            ["https://protect-eu.mimecast.com/s/AbCdEfGh?domain=evil.example.net"]
        );
    }

    #[test]
    fn the_patterns_compile() {
        assert!(ATTRIBUTE_URL.is_some());
    }

    /// The hand-written finder against the regex it replaced, on texts mixed from pieces
    /// that make, break and end URLs: each match is cut before its first unopened closing
    /// bracket, and the search resumes there.
    #[test]
    fn text_urls_are_the_matches_of_the_pattern_cut_at_unopened_brackets() {
        const PIECES: [&str; 36] = [
            "http",
            "HTTPS",
            "hTtP",
            "s",
            "x",
            "://",
            ":",
            "/",
            "//",
            "a.example.com",
            " ",
            "\t",
            "\u{85}",
            "\u{a0}",
            "\u{2028}",
            "\u{3000}",
            "\u{200b}",
            "\u{2060}",
            "\u{feff}",
            "\u{200e}",
            "\u{7f}",
            "\0",
            "<",
            ">",
            "\"",
            "'",
            "`",
            "é",
            "ſ",
            "例",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
        ];
        let re =
            Regex::new(r#"(?i-u:https?)://[^\s\p{Cc}<>"'`\u{200B}-\u{200D}\u{2060}\u{FEFF}]*"#)
                .unwrap();
        // the first closer whose kind has no opener before it, counted naively
        let cut = |url: &str| {
            let mut depth = [0_i32; 3];
            for (i, c) in url.char_indices() {
                let Some(kind) = "([{".find(c).or_else(|| ")]}".find(c)) else {
                    continue;
                };
                if "([{".contains(c) {
                    depth[kind] += 1;
                } else if depth[kind] == 0 {
                    return i;
                } else {
                    depth[kind] -= 1;
                }
            }
            url.len()
        };
        for text in crate::extract::pseudo_random_texts(0x2545_f491_4f6c_dd1d, &PIECES, 30, 20_000)
        {
            let mut expected = Vec::new();
            let mut at = 0;
            while let Some(m) = re.find_at(&text, at) {
                let len = cut(m.as_str());
                expected.push(&text[m.start()..m.start() + len]);
                at = m.start() + len;
            }
            assert_eq!(text_urls(&text).collect::<Vec<_>>(), expected, "{text:?}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive_and_url_kept_as_written() {
        assert_eq!(
            urls("go HTTPS://Example.COM/Path/To?Q=A"),
            ["HTTPS://Example.COM/Path/To?Q=A"]
        );
        assert_eq!(domains("go HTTPS://Example.COM/Path"), ["example.com"]);
    }

    #[test]
    fn only_http_and_https_count() {
        assert!(
            urls("ftp://example.com/x file:///etc/passwd javascript://x mailto:a@b.com").is_empty()
        );
    }

    #[test]
    fn idn_hosts_are_kept_whole() {
        assert_eq!(
            urls("see https://bücher.example.org/x now"),
            ["https://bücher.example.org/x"]
        );
        assert_eq!(
            domains("see https://Bücher.example.org/x now"),
            ["bücher.example.org"]
        );
        assert_eq!(urls("http://пример.рф/"), ["http://пример.рф/"]);
    }

    #[test]
    fn tilde_pipe_and_braces_stay_in_paths() {
        assert_eq!(
            urls("http://example.com/~user/a|b/{id}"),
            ["http://example.com/~user/a|b/{id}"]
        );
    }

    #[test]
    fn trailing_sentence_punctuation_is_trimmed() {
        assert_eq!(
            urls("(see http://a.example.com/x)."),
            ["http://a.example.com/x"]
        );
        assert_eq!(
            urls("Visit https://example.com/a, then https://example.org/b!"),
            ["https://example.com/a", "https://example.org/b"]
        );
        assert_eq!(
            urls("Really? https://example.com/q?... yes"),
            ["https://example.com/q"]
        );
        assert_eq!(
            urls("[link](https://example.com/md)"),
            ["https://example.com/md"]
        );
        assert_eq!(
            urls("«https://example.com/fr» “https://example.org/en”"),
            ["https://example.com/fr", "https://example.org/en"]
        );
    }

    #[test]
    fn balanced_brackets_belong_to_the_url() {
        assert_eq!(
            urls("https://en.wikipedia.org/wiki/Foo_(bar)"),
            ["https://en.wikipedia.org/wiki/Foo_(bar)"]
        );
        assert_eq!(
            urls("(https://en.wikipedia.org/wiki/Foo_(bar))"),
            ["https://en.wikipedia.org/wiki/Foo_(bar)"]
        );
        assert_eq!(
            urls("{\"u\": \"x\"} {https://example.com/{a}}"),
            ["https://example.com/{a}"]
        );
        assert_eq!(
            urls("[https://example.com/a[1]]"),
            ["https://example.com/a[1]"]
        );
        assert_eq!(
            urls("https://en.wikipedia.org/wiki/Foo_(bar)_baz and https://example.com/a[1]/b"),
            [
                "https://en.wikipedia.org/wiki/Foo_(bar)_baz",
                "https://example.com/a[1]/b"
            ]
        );
        assert_eq!(
            urls("http://[2001:db8::1]/x(y)"),
            ["http://[2001:db8::1]/x(y)"]
        );
    }

    #[test]
    fn an_unopened_closing_bracket_ends_the_url_wherever_it_is() {
        assert_eq!(urls("https://example.com/x][X"), ["https://example.com/x"]);
        assert_eq!(urls("https://example.com/a)b"), ["https://example.com/a"]);
        assert_eq!(urls("https://example.com/a}b"), ["https://example.com/a"]);
        assert_eq!(
            urls("[text](https://example.com/x)"),
            ["https://example.com/x"]
        );
        // the search goes on after the bracket: glued markdown links are both found
        assert_eq!(
            urls("[a](https://example.com/1)[b](https://example.org/2)"),
            ["https://example.com/1", "https://example.org/2"]
        );
        assert_eq!(
            urls(r"\href{https://example.com/a}{text}"),
            ["https://example.com/a"]
        );
        // counters are per kind: a `(` does not open a `]`
        assert_eq!(
            urls("https://example.com/a(b]c)"),
            ["https://example.com/a(b"]
        );
        // sentence punctuation before the bracket is still trimmed
        assert_eq!(
            urls("(see https://example.com/x.)"),
            ["https://example.com/x"]
        );
    }

    #[test]
    fn unopened_closing_brackets_end_attribute_urls_too() {
        assert_eq!(
            attribute("https://example.com/x][X"),
            ["https://example.com/x"]
        );
        assert_eq!(
            attribute("https://example.com/a(1)/b"),
            ["https://example.com/a(1)/b"]
        );
    }

    #[test]
    fn urls_stop_at_markup_quotes_and_whitespace() {
        assert_eq!(
            urls(
                "<https://a.example.com/x>\"https://b.example.com/y\"'https://c.example.com/z'`https://d.example.com/w`"
            ),
            [
                "https://a.example.com/x",
                "https://b.example.com/y",
                "https://c.example.com/z",
                "https://d.example.com/w"
            ]
        );
        assert_eq!(
            urls("https://example.com/a\u{a0}b https://example.org/c\u{200b}d"),
            ["https://example.com/a", "https://example.org/c"]
        );
    }

    #[test]
    fn every_stop_character_ends_a_url_and_no_other_does() {
        let stops = [
            ' ', '\t', '\n', '\u{b}', '\u{c}', '\r', '\0', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}',
            '\u{a0}', '\u{1680}', '\u{2000}', '\u{2028}', '\u{3000}', '\u{200b}', '\u{200c}',
            '\u{200d}', '\u{2060}', '\u{feff}', '<', '>', '"', '`', '\'',
        ];
        for c in stops {
            let text = format!("https://example.com/a{c}b");
            assert_eq!(urls(&text), ["https://example.com/a"], "{text:?}");
        }
        for c in ['\u{200e}', '\u{180e}', '\u{ad}', 'é', '例', '|', '^', '\\'] {
            let text = format!("https://example.com/a{c}b");
            assert_eq!(urls(&text), [text.as_str()], "{text:?}");
        }
    }

    #[test]
    fn scheme_letters_match_in_ascii_case_only() {
        // Unicode case folding would take the long s `ſ` for an `s`
        assert!(urls("httpſ://example.com/ HTTPſ://example.com/").is_empty());
        assert!(attribute("httpſ://example.com/").is_empty());
    }

    #[test]
    fn single_label_hosts_are_rejected() {
        assert!(urls("http://intranet/ https://Intranet:8080/x http://wpad./").is_empty());
    }

    #[test]
    fn unknown_suffix_hosts_are_urls_but_not_domains() {
        let text = "https://sharepoint.corp/sites/x https://portal.example/login \
                    http://Server.Local/x http://x.invalid/ https://file.txt";
        assert_eq!(
            urls(text),
            [
                "http://Server.Local/x",
                "http://x.invalid/",
                "https://file.txt",
                "https://portal.example/login",
                "https://sharepoint.corp/sites/x"
            ]
        );
        assert!(domains(text).is_empty());
    }

    #[test]
    fn unknown_suffix_hosts_still_need_well_formed_labels() {
        // a last label no TLD could be: numeric ones are what URL parsers read as (bad) IPv4
        assert!(
            urls(
                "http://bad_host.local/ http://-a.corp/ http://a..corp/ http://1.2.3.999/ \
                 http://a.0x7f/ http://10.0.0.256/ http://internet.e-mail"
            )
            .is_empty()
        );
    }

    #[test]
    fn localhost_and_ip_hosts_are_urls_but_not_domains() {
        let text = "http://localhost:8080/a http://10.1.2.3/b http://[2001:db8::1]:443/c";
        assert_eq!(
            urls(text),
            [
                "http://10.1.2.3/b",
                "http://[2001:db8::1]:443/c",
                "http://localhost:8080/a"
            ]
        );
        assert!(domains(text).is_empty());
    }

    #[test]
    fn underscores_bad_ports_and_bad_ips_are_rejected() {
        assert!(urls("http://bad_host.example.com/ http://example.com:99999/ http://example.com:/ http://999.1.1.1/ http://[zz::1]/").is_empty());
    }

    #[test]
    fn userinfo_is_allowed_and_the_host_comes_after_it() {
        assert_eq!(
            domains("http://user:pass@evil.example.net/x"),
            ["evil.example.net"]
        );
    }

    #[test]
    fn a_trailing_root_dot_is_dropped_from_the_domain() {
        assert_eq!(domains("http://example.com./x"), ["example.com"]);
    }

    #[test]
    fn overlong_urls_are_ignored() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(urls(&long).is_empty());
        let limit = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN - 20));
        assert_eq!(urls(&limit).len(), 1);
    }

    #[test]
    fn a_nested_url_is_part_of_its_parent() {
        assert_eq!(
            urls("https://r.example.com/?u=https://evil.example.net/"),
            ["https://r.example.com/?u=https://evil.example.net/"]
        );
    }

    #[test]
    fn glued_schemes_are_still_found() {
        assert_eq!(
            urls("url=https://example.com/a xhttp://example.org/b"),
            ["http://example.org/b", "https://example.com/a"]
        );
    }

    #[test]
    fn attribute_values_keep_apostrophes_and_skip_relative_links() {
        assert_eq!(
            attribute("  https://example.com/it's"),
            ["https://example.com/it's"]
        );
        assert!(attribute("/relative/path").is_empty());
        assert!(attribute("#top").is_empty());
        assert!(attribute("javascript:alert(1)").is_empty());
        assert_eq!(
            attribute("HTTP://example.com/x y"),
            ["HTTP://example.com/x"]
        );
    }

    #[test]
    fn hosts_are_parsed_from_the_authority_only() {
        assert_eq!(
            host_of("http://a.example.com?x=y.z"),
            Some(Host::Domain("a.example.com".into()))
        );
        assert_eq!(
            host_of("http://a.example.com#f"),
            Some(Host::Domain("a.example.com".into()))
        );
        assert_eq!(host_of("http://1.2.3.4:80"), Some(Host::Ip));
        assert_eq!(host_of("http://LOCALHOST"), Some(Host::Localhost));
        assert_eq!(host_of("http://Server.Local./x"), Some(Host::Unlisted));
        assert_eq!(host_of("http://intranet/"), None);
        assert_eq!(host_of("http://"), None);
        assert_eq!(host_of("http://[::1"), None);
    }
}
