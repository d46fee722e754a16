//! URLs: `http`/`https` candidates from text and HTML attributes, trimmed and validated the
//! way the reference's Django `URLValidator` did, but keeping IDN hosts and `~|{}` paths.

use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;

use super::domains::normalize_host;
use super::{ExtractOptions, Indicators, MAX_URL_LEN, Pattern, UrlFacts, find_all, insert, unwrap};

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
/// up to whitespace, a control or zero-width character, `<`, `>`, `"`, `'` or a backtick.
/// These are the matches of
/// ``(?i-u:https?)://[^\s\p{Cc}<>"'`\u{200B}-\u{200D}\u{2060}\u{FEFF}]*``, found from
/// each `://` instead: the regex engine read every byte of every body to find them.
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
    while let Some(&b) = bytes.get(i) {
        if b.is_ascii() {
            if b <= b' ' || matches!(b, 0x7f | b'<' | b'>' | b'"' | b'\'' | b'`') {
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
            out.warnings
                .insert(format!("{warning}: {}", shortened(url)));
        }
        if !unwrapping.rewriters.is_empty() {
            if record(&unwrapping.url, opts, out) {
                let facts = UrlFacts {
                    wrapped: Some(url.to_owned()),
                    rewriter: Some(unwrapping.rewriters.join(" > ")),
                    displayed: None,
                };
                if opts.urls {
                    out.note_url(unwrapping.url.clone(), facts);
                }
                return Some(Cow::Owned(unwrapping.url));
            }
            out.warnings.insert(format!(
                "a link unwrapped from {} is not a valid URL, kept as written: {}",
                unwrapping.rewriters.join(" > "),
                shortened(url)
            ));
        }
    }
    record(url, opts, out).then_some(Cow::Borrowed(url))
}

/// Records `url` and its host's domain if the URL is valid; says whether it was.
fn record(url: &str, opts: ExtractOptions, out: &mut Indicators) -> bool {
    if url.len() > MAX_URL_LEN && url.chars().count() > MAX_URL_LEN {
        return false;
    }
    let Some(host) = host_of(url) else {
        return false;
    };
    if opts.urls {
        insert(&mut out.urls, url);
    }
    if opts.domains
        && let Host::Domain(domain) = host
    {
        insert(&mut out.domains, &domain);
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

/// Drops trailing sentence punctuation and closing brackets that have no opening partner
/// inside the URL: `(see http://a.example.com/x).` ends at `/x`, while
/// `https://en.wikipedia.org/wiki/Foo_(bar)` keeps its `)`.
fn trim_end(candidate: &str) -> &str {
    // unmatched closers, counted once so trimming stays linear
    let mut excess = [0_i32; 3];
    for &b in candidate.as_bytes() {
        if let Some((i, delta)) = bracket(char::from(b)) {
            excess[i] -= delta;
        }
    }
    let mut url = candidate;
    while let Some(c) = url.chars().next_back() {
        let strip = match bracket(c) {
            Some((i, -1)) if excess[i] > 0 => {
                excess[i] -= 1;
                true
            }
            Some(_) => false,
            None => is_trailing_punctuation(c),
        };
        if !strip {
            break;
        }
        url = &url[..url.len() - c.len_utf8()];
    }
    url
}

/// Bracket kind and direction: `+1` opens, `-1` closes.
fn bracket(c: char) -> Option<(usize, i32)> {
    match c {
        '(' => Some((0, 1)),
        ')' => Some((0, -1)),
        '[' => Some((1, 1)),
        ']' => Some((1, -1)),
        '{' => Some((2, 1)),
        '}' => Some((2, -1)),
        _ => None,
    }
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

/// The host of a URL, once the URL passed the checks that Django's `URLValidator` made.
#[derive(Debug, PartialEq, Eq)]
enum Host<'a> {
    /// Lowercased; borrowed from the URL when it already was.
    Domain(Cow<'a, str>),
    Ip,
    Localhost,
}

/// Parses `scheme://[userinfo@]host[:port][/?#...]` and checks the host: an IPv4, a
/// bracketed IPv6, `localhost`, or a valid domain (see `domains::is_valid_domain`).
fn host_of(url: &str) -> Option<Host<'_>> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len())];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
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
    normalize_host(host).map(Host::Domain)
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
    /// that make, break and end URLs.
    #[test]
    fn text_urls_are_the_matches_of_the_pattern() {
        const PIECES: [&str; 30] = [
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
        ];
        let re =
            Regex::new(r#"(?i-u:https?)://[^\s\p{Cc}<>"'`\u{200B}-\u{200D}\u{2060}\u{FEFF}]*"#)
                .unwrap();
        for text in crate::extract::pseudo_random_texts(0x2545_f491_4f6c_dd1d, &PIECES, 30, 20_000)
        {
            let expected: Vec<&str> = re.find_iter(&text).map(|m| m.as_str()).collect();
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
    fn single_label_and_unknown_suffix_hosts_are_rejected() {
        assert!(
            urls("http://intranet/ http://server.local/x http://x.invalid/ https://file.txt")
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
        assert_eq!(host_of("http://"), None);
        assert_eq!(host_of("http://[::1"), None);
    }
}
