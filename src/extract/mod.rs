//! Indicator extraction: IPs, hashes, URLs and domains from email text, HTML and trace headers.
//!
//! The rules follow the reference app (`splunk-imap-behaviour.md` §4.4) and fix the bugs
//! its §10.4 lists: text is refanged first (`hxxp`, `[.]`, `[at]`), URLs come from HTML
//! attributes *and* text, IDN hosts and `~|{}` paths are kept, trailing punctuation is
//! trimmed, domains are checked against the bundled Public Suffix List, IPv4 is word-bounded
//! with valid octets, IPv6 is taken only as whole valid addresses, and SHA-512 is a hash.
//! Beyond the reference: a URL ends before a bracket it did not open, its host needs no
//! public suffix (`http://server.local/` is a URL but not a domain), an IPv4 written as four
//! labels of a domain name (`1.2.3.4.host.example.net`) is an IP, and a hex-only code path
//! (`a::b`) is not an IPv6.
//!
//! Candidates are found in time linear in the text: URLs with the `regex` crate's
//! automata, hex and IP-shaped runs by hand (`runs`), from the bytes every such run must
//! hold. What a pattern cannot state without look-around stays in code next to it: which
//! characters may touch an indicator, and the validation of each candidate (`std::net`,
//! the Public Suffix List, URL trimming). Each candidate is bounded before it is validated
//! (`MAX_URL_LEN`, `MAX_RUN_LEN`), so a hostile body cannot make extraction slow.

mod cap;
mod deception;
mod domains;
mod hashes;
mod headers;
mod html;
mod ips;
mod refang;
mod runs;
mod unwrap;
mod urls;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::{Match, Regex};

pub use cap::Cap;
use cap::Class;
pub use domains::domain_of_address;
pub(crate) use domains::registrable_domain;
pub use headers::{scan_ip_header, scan_received_from};
pub use html::scan_html;

/// Longest URL kept, in characters (Django's `URLValidator` limit, which the reference used).
const MAX_URL_LEN: usize = 2048;

/// Longest whitespace-free run a word-level rule looks at; longer runs are blobs, not indicators.
const MAX_RUN_LEN: usize = 64 * 1024;

/// Which indicator classes to extract (from the asset's `extract_*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "one independent switch per asset flag, as the API other modules code against"
)]
pub struct ExtractOptions {
    /// `http`/`https` URLs (URL Artifact, `requestURL`).
    pub urls: bool,
    /// Registrable domains (Domain Artifact, `destinationDnsDomain`).
    pub domains: bool,
    /// IPv4 and IPv6 addresses (IP Artifact, `sourceAddress`).
    pub ips: bool,
    /// MD5, SHA-1, SHA-256 and SHA-512 hex digests (Hash Artifact, `fileHash`).
    pub hashes: bool,
}

impl ExtractOptions {
    /// Every indicator class.
    pub const ALL: ExtractOptions = ExtractOptions {
        urls: true,
        domains: true,
        ips: true,
        hashes: true,
    };
    /// No indicator class: every scan is a no-op.
    pub const NONE: ExtractOptions = ExtractOptions {
        urls: false,
        domains: false,
        ips: false,
        hashes: false,
    };

    fn any(self) -> bool {
        self.urls || self.domains || self.ips || self.hashes
    }
}

/// Indicators found in one or more texts; sets are sorted for deterministic output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Indicators {
    /// IPv4 as written, IPv6 in canonical compressed lowercase form.
    pub ips: BTreeSet<String>,
    /// Hex digests, case as written.
    pub hashes: BTreeSet<String>,
    /// URLs as written (after refanging).
    pub urls: BTreeSet<String>,
    /// Domains, lowercased (IDN hosts stay in Unicode).
    pub domains: BTreeSet<String>,
    /// What is known about some of `urls` besides their text, by URL.
    pub url_facts: BTreeMap<String, UrlFacts>,
    /// What could not be read (a wrapped link that does not decode), for the container's
    /// `parse_warnings`; not an indicator.
    pub warnings: BTreeSet<String>,
    /// How many distinct values of all four classes, and warnings, may still be added (no
    /// limit by default). A container's places share one cap, handed from one to the next
    /// ([`crate::artifacts::FoundIndicators::scan_elsewhere`]), so it bounds the container.
    pub cap: Cap,
}

/// What a URL Artifact says besides the URL: how the analyst saw it in the email.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlFacts {
    /// The gateway-rewritten link the URL was recovered from (`cef.wrappedURL`).
    pub wrapped: Option<String>,
    /// The rewriters that wrapped it, outermost first, joined by ` > ` (`cef.urlRewriter`).
    pub rewriter: Option<String>,
    /// Link text naming another site than the link goes to (`cef.displayedURL`).
    pub displayed: Option<String>,
}

impl UrlFacts {
    /// Adds what `other` knows. When both know a field the smaller value wins, so the
    /// result does not depend on the order the URL's occurrences were scanned in.
    pub fn merge(&mut self, other: UrlFacts) {
        fn least(mine: &mut Option<String>, theirs: Option<String>) {
            if let Some(theirs) = theirs
                && mine.as_ref().is_none_or(|m| theirs < *m)
            {
                *mine = Some(theirs);
            }
        }
        // wrapper and rewriter describe one occurrence: they move together
        if other.wrapped.is_some() && (self.wrapped.is_none() || other.wrapped < self.wrapped) {
            self.wrapped = other.wrapped;
            self.rewriter = other.rewriter;
        }
        least(&mut self.displayed, other.displayed);
    }
}

impl Indicators {
    /// Whether no indicator of any class was found.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
            && self.hashes.is_empty()
            && self.urls.is_empty()
            && self.domains.is_empty()
    }

    /// Adds every indicator of `other` (the per-email union over bodies and headers). Its
    /// values were admitted by the cap they were found under; `self.cap` is left as it is.
    pub fn extend(&mut self, mut other: Indicators) {
        self.ips.append(&mut other.ips);
        self.hashes.append(&mut other.hashes);
        self.urls.append(&mut other.urls);
        self.domains.append(&mut other.domains);
        self.warnings.append(&mut other.warnings);
        for (url, facts) in other.url_facts {
            self.note_url(url, facts);
        }
    }

    /// Adds `value` to `class` unless it is there already or the cap refuses it. Allocates
    /// only for a value that is new here and kept (bodies repeat indicators).
    fn add(&mut self, class: Class, value: &str) {
        let set = match class {
            Class::Ip => &mut self.ips,
            Class::Hash => &mut self.hashes,
            Class::Url => &mut self.urls,
            Class::Domain => &mut self.domains,
        };
        if !set.contains(value) && self.cap.admit(class, value) {
            set.insert(value.to_owned());
        }
    }

    /// Adds the warning `text` if it is there already or the cap admits it.
    fn warn(&mut self, text: String) {
        if !self.warnings.contains(&text) && self.cap.admit_warning(&text) {
            self.warnings.insert(text);
        }
    }

    /// Records what is known about `url` (already in `urls`).
    pub(crate) fn note_url(&mut self, url: String, facts: UrlFacts) {
        self.url_facts.entry(url).or_default().merge(facts);
    }
}

/// Plain-text body (text/plain, or any text): URLs, email-address domains, IPs, hashes.
///
/// Defanged indicators are refanged first; a bare domain that was written defanged
/// (`evil[.]com`) is taken as a domain, while plain bare words (`file.txt`) are not.
pub fn scan_text(text: &str, opts: &ExtractOptions, out: &mut Indicators) {
    if !opts.any() {
        return;
    }
    let refanged = refang::refang(text);
    scan_live(&refanged.text, *opts, out, true);
    if opts.domains {
        domains::scan_defanged_words(&refanged.text, &refanged.dot_marks, out);
    }
}

/// Runs the plain-text rules on already refanged text; `find_urls` is off for attribute
/// values that the HTML walker validates as whole URLs itself.
fn scan_live(text: &str, opts: ExtractOptions, out: &mut Indicators, find_urls: bool) {
    if find_urls && (opts.urls || opts.domains) {
        urls::scan_text(text, opts, out);
    }
    if opts.domains {
        domains::scan_addresses(text, out);
    }
    if opts.ips {
        ips::scan(text, out);
    }
    if opts.hashes {
        hashes::scan(text, out);
    }
}

/// A built-in pattern, compiled on first use. It is `None` only if the pattern does not
/// compile, which each scanner's tests rule out; the scanner then finds nothing.
type Pattern = LazyLock<Option<Regex>>;

/// Every match of `pattern` in `text`, left to right and not overlapping.
fn find_all<'t>(pattern: &'static Pattern, text: &'t str) -> impl Iterator<Item = Match<'t>> {
    pattern.iter().flat_map(move |re| re.find_iter(text))
}

/// A character that glues to an indicator: a neighbour like this means "part of a longer word".
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// ASCII case-insensitive prefix test (schemes, `mailto:`, `data:`).
fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Index of the first byte at or after `from` that satisfies `pred`. Whole 32-byte blocks
/// without a hit are skipped with a branch-free test the compiler vectorises (ten times
/// faster than `position` on prose, which holds few of the bytes a scanner starts from);
/// `pred` should combine comparisons with `|`, not `||` or `matches!`, to stay branch-free.
pub(crate) fn find_byte(bytes: &[u8], from: usize, pred: impl Fn(u8) -> bool) -> Option<usize> {
    const BLOCK: usize = 32;
    let rest = bytes.get(from..)?;
    let mut skipped = 0;
    for block in rest.chunks_exact(BLOCK) {
        let hits = block.iter().fold(0_u8, |hits, &b| hits | u8::from(pred(b)));
        if hits != 0 {
            break;
        }
        skipped += BLOCK;
    }
    rest[skipped..]
        .iter()
        .position(|&b| pred(b))
        .map(|i| from + skipped + i)
}

/// The character that ends right before byte `i` (which must be a char boundary).
fn char_before(text: &str, i: usize) -> Option<char> {
    text.get(..i)?.chars().next_back()
}

/// The character that starts at byte `i` (which must be a char boundary).
fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..)?.chars().next()
}

/// Reproducible texts for the tests that compare a scanner with a reference over many
/// inputs: `count` strings, each of fewer than `max_pieces` pieces of `pieces`, chosen by
/// a fixed linear congruential sequence from `seed` (no randomness in the crate).
#[cfg(test)]
pub(crate) fn pseudo_random_texts(
    seed: u64,
    pieces: &[&str],
    max_pieces: usize,
    count: usize,
) -> Vec<String> {
    let mut state = seed;
    let mut next = |bound: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(state >> 33).unwrap_or(0) % bound
    };
    (0..count)
        .map(|_| {
            let len = next(max_pieces);
            (0..len).map(|_| pieces[next(pieces.len())]).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str) -> Indicators {
        let mut out = Indicators::default();
        scan_text(text, &ExtractOptions::ALL, &mut out);
        out
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_phishing_body_yields_every_class_sorted() {
        let out = scan(
            "Hi, login at https://Login.Evil-Bank.com/verify?id=7 or mail help@evil-bank.com.\n\
             Sent from 198.51.100.23, payload md5 d41d8cd98f00b204e9800998ecf8427e.",
        );
        assert_eq!(out.urls, set(&["https://Login.Evil-Bank.com/verify?id=7"]));
        assert_eq!(out.domains, set(&["evil-bank.com", "login.evil-bank.com"]));
        assert_eq!(out.ips, set(&["198.51.100.23"]));
        assert_eq!(out.hashes, set(&["d41d8cd98f00b204e9800998ecf8427e"]));
    }

    #[test]
    fn options_switch_classes_off_independently() {
        let text =
            "https://a.example.com/ 10.0.0.1 bob@b.example.org d41d8cd98f00b204e9800998ecf8427e";
        let mut out = Indicators::default();
        scan_text(text, &ExtractOptions::NONE, &mut out);
        assert!(out.is_empty());

        let only_domains = ExtractOptions {
            domains: true,
            ..ExtractOptions::NONE
        };
        scan_text(text, &only_domains, &mut out);
        assert!(out.urls.is_empty() && out.ips.is_empty() && out.hashes.is_empty());
        assert_eq!(out.domains, set(&["a.example.com", "b.example.org"]));

        let only_ips = ExtractOptions {
            ips: true,
            ..ExtractOptions::NONE
        };
        let mut out = Indicators::default();
        scan_text(text, &only_ips, &mut out);
        assert_eq!(out.ips, set(&["10.0.0.1"]));
        assert!(out.domains.is_empty() && out.urls.is_empty() && out.hashes.is_empty());
    }

    #[test]
    fn extend_unions_and_dedupes() {
        let mut a = scan("1.1.1.1 https://a.example.com/");
        a.extend(scan("1.1.1.1 8.8.8.8"));
        assert_eq!(a.ips, set(&["1.1.1.1", "8.8.8.8"]));
        assert_eq!(a.urls, set(&["https://a.example.com/"]));
        assert!(!a.is_empty());
    }

    #[test]
    fn defanged_report_is_refanged_before_every_rule() {
        let out = scan(
            "IOCs: hxxps://evil[.]example[.]com/payload, 203[.]0[.]113[.]7, \
             contact: admin[at]evil[.]example[.]net",
        );
        assert_eq!(out.urls, set(&["https://evil.example.com/payload"]));
        assert_eq!(out.ips, set(&["203.0.113.7"]));
        assert_eq!(out.domains, set(&["evil.example.com", "evil.example.net"]));
    }

    #[test]
    fn bare_words_are_domains_only_when_written_defanged() {
        let out = scan("Open file.txt, then example.com, then evil[.]example.net.");
        assert_eq!(out.domains, set(&["evil.example.net"]));
        assert!(out.urls.is_empty());
    }

    #[test]
    fn output_is_deterministic_whatever_the_input_order() {
        let a = scan("https://b.example.com/ https://a.example.com/ 9.9.9.9 1.1.1.1");
        let b = scan("1.1.1.1 9.9.9.9 https://a.example.com/ https://b.example.com/");
        assert_eq!(a, b);
        let ips: Vec<_> = a.ips.iter().cloned().collect();
        assert_eq!(ips, ["1.1.1.1", "9.9.9.9"]);
    }

    #[test]
    fn empty_and_binary_junk_text_is_harmless() {
        assert!(scan("").is_empty());
        assert!(scan("\u{fffd}\u{fffd}\0\0:::...@@@[[[(((").is_empty());
    }

    #[test]
    fn a_huge_blob_is_scanned_in_linear_time() {
        // 4 MiB of a worst-case mix for every scanner; must finish quickly and find nothing
        let blob = "a:1.2:ab@cd.[.]hxxp://(".repeat(4 * 1024 * 1024 / 23);
        let out = scan(&blob);
        assert!(out.urls.is_empty() && out.hashes.is_empty());
    }

    #[test]
    fn long_runs_of_each_candidate_shape_are_scanned_in_linear_time() {
        // one candidate spanning the whole text, or one per few bytes: a search that went
        // quadratic on either would not finish
        for piece in [
            "0123456789abcdef",
            "ab:",
            "1:2 ",
            "1.",
            "1.2.3.4 ",
            "http://x",
            "x://",
            "a@b.",
            // one host name holding an IPv4 every few bytes, and many short ones
            "1.2.3.4.a.",
            "1.2.3.4.b.c ",
            // a URL cut by a bracket every few bytes
            "http://x)",
        ] {
            let blob = piece.repeat(256 * 1024 / piece.len());
            let out = scan(&blob);
            assert!(out.urls.is_empty() && out.hashes.is_empty(), "{piece}");
        }
    }

    #[test]
    fn arbitrary_mixes_of_tricky_pieces_never_panic() {
        const PIECES: [&str; 37] = [
            "{",
            "}",
            ".com",
            "[.]",
            "hxxp",
            "://",
            "@",
            ":",
            "::",
            ".",
            "1",
            "255",
            "a",
            "f",
            "é",
            "例",
            "\u{3000}",
            "\u{a0}",
            "(",
            ")",
            "[",
            "]",
            "<",
            ">",
            "%",
            "IPv6:",
            " ",
            "\n",
            "\"",
            "'",
            "mailto:",
            "<a href=",
            "<!--",
            "-->",
            "http://",
            "example.com",
            "/",
        ];
        for text in crate::extract::pseudo_random_texts(0x2545_f491_4f6c_dd1d, &PIECES, 40, 3000) {
            let mut out = Indicators::default();
            scan_text(&text, &ExtractOptions::ALL, &mut out);
            scan_html(&text, &ExtractOptions::ALL, &mut out);
            scan_received_from(&text, &ExtractOptions::ALL, &mut out);
            scan_ip_header(&text, &ExtractOptions::ALL, &mut out);
            let _ = domain_of_address(&text);
        }
    }

    #[test]
    fn char_helpers_respect_multibyte_boundaries() {
        let s = "é1";
        assert_eq!(char_before(s, 2), Some('é'));
        assert_eq!(char_at(s, 2), Some('1'));
        assert_eq!(char_before(s, 0), None);
        assert_eq!(char_at(s, 3), None);
        assert!(is_word_char('é') && is_word_char('_') && !is_word_char('-'));
    }
}
