//! Domains: validation against the bundled Public Suffix List, email-address domains, and
//! bare domains that were written defanged.

use std::borrow::Cow;

use psl::Psl as _;

use super::{Class, Indicators, MAX_RUN_LEN, char_before, is_word_char};

/// Longest host name in characters (RFC 1035 §2.3.4, counted on the Unicode form).
const MAX_HOST_LEN: usize = 253;
/// Longest label in characters (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// The domain of an email address (`a@Mail.Example.COM` gives `mail.example.com`), if it is a
/// valid registrable domain (not an IP).
///
/// The domain is the text after the last `@`, as in the reference; angle brackets and one
/// trailing dot are tolerated.
pub fn domain_of_address(address: &str) -> Option<String> {
    let (_, domain) = address.trim().rsplit_once('@')?;
    let domain = domain.trim_end().trim_end_matches('>');
    normalize_host(domain).map(Cow::into_owned)
}

/// Lowercases `host`, drops one trailing root dot, and returns it if it is a valid domain.
pub(super) fn normalize_host(host: &str) -> Option<Cow<'_, str>> {
    let host = host.strip_suffix('.').unwrap_or(host);
    let host = lowercase(host);
    is_valid_domain(&host).then_some(host)
}

/// Whether a lowercase host name is a domain worth an artifact: a well-formed host name
/// (see [`is_host_name`]) under a suffix the Public Suffix List knows, with a label of its
/// own in front of an ICANN suffix.
///
/// A private PSL entry (`github.io`, `s3.amazonaws.com`) is accepted on its own: it is a
/// registered name under an ICANN suffix, and malware is hosted there.
pub(super) fn is_valid_domain(host: &str) -> bool {
    is_host_name(host) && is_registrable(host)
}

/// The Public Suffix List half of [`is_valid_domain`], for a name that passed
/// [`is_host_name`].
pub(super) fn is_registrable(host: &str) -> bool {
    let Some(suffix) = psl::List.suffix(host.as_bytes()) else {
        return false;
    };
    match suffix.typ() {
        None => false,
        Some(psl::Type::Private) => true,
        Some(psl::Type::Icann) => host.len() > suffix.as_bytes().len(),
    }
}

/// Whether a lowercase host name is well formed, whatever its suffix: at least two labels
/// of LDH (or IDN) characters within the RFC 1035 lengths, no `_`, and a last label shaped
/// like a top-level domain (see [`is_tld_shaped`]). The URL rule takes such a host
/// (`server.local`) after an explicit scheme; a domain must also pass the Public Suffix
/// List ([`is_valid_domain`]).
pub(super) fn is_host_name(host: &str) -> bool {
    if host.is_empty() || host.len() > MAX_HOST_LEN * 4 {
        return false;
    }
    let mut labels = 0;
    let mut chars = 0;
    let mut last = "";
    for label in host.split('.') {
        labels += 1;
        let len = if label.is_ascii() {
            label.len()
        } else {
            label.chars().count()
        };
        chars += len + 1;
        if len == 0
            || len > MAX_LABEL_LEN
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.chars().all(is_label_char)
        {
            return false;
        }
        last = label;
    }
    labels >= 2 && chars - 1 <= MAX_HOST_LEN && is_tld_shaped(last)
}

/// Whether a (valid, lowercase) label can be a top-level domain: ASCII letters only, or an
/// IDN (`xn--p1ai`, `рф`), as every TLD is (RFC 3696 §2, ICANN's string rules), so the
/// Public Suffix List loses nothing to it. It keeps out what only looks like a name under
/// an unknown suffix: a numeric last label, which URL parsers read as a bad IPv4
/// (`1.2.3.999`, `a.0x7f`), and placeholders such as Internet Explorer's
/// `<!-- saved from url=(0022)http://internet.e-mail -->` in saved HTML mail.
fn is_tld_shaped(label: &str) -> bool {
    label.bytes().all(|b| b.is_ascii_lowercase()) || label.starts_with("xn--") || !label.is_ascii()
}

/// The registrable domain of a host name (`mail.evil.co.uk` gives `evil.co.uk`), lowercased,
/// after dropping `[...]` and one root dot; `None` for IP literals and names the Public Suffix
/// List cannot split (single labels such as `localhost`).
///
/// Names under a suffix the list does not know still get one (its default `*` rule), so an
/// invented or internal TLD compares like any other.
pub(crate) fn registrable_domain(host: &str) -> Option<String> {
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.parse::<std::net::IpAddr>().is_ok() || host.contains(':') {
        return None;
    }
    // hop hosts come lowercased already: copied only when there is something to fold
    psl::domain_str(&lowercase(host)).map(str::to_owned)
}

/// A character allowed in a (lowercased) label: LDH for ASCII, and for IDN any non-ASCII
/// character that is not space, control or punctuation. Combining marks must pass, so a
/// positive Unicode-letter test would reject valid Indic or Thai names.
fn is_label_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    }
    !(c.is_whitespace() || c.is_control() || is_unicode_punctuation(c))
}

/// Non-ASCII punctuation that ends a host in running text (quotes, dashes, CJK full stops).
fn is_unicode_punctuation(c: char) -> bool {
    matches!(c,
        '\u{a0}'..='\u{bf}' | '\u{d7}' | '\u{f7}'
        | '\u{2000}'..='\u{206f}'
        | '\u{3000}'..='\u{303f}'
        | '\u{fe30}'..='\u{fe4f}'
        | '\u{ff00}'..='\u{ff0f}' | '\u{ff1a}'..='\u{ff20}' | '\u{ff3b}'..='\u{ff40}'
        | '\u{ff5b}'..='\u{ff65}'
        | '\u{feff}' | '\u{fffd}')
}

/// Lowercases without allocating when the text has no uppercase letter.
pub(super) fn lowercase(s: &str) -> Cow<'_, str> {
    let has_upper = if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.chars().any(char::is_uppercase)
    };
    if has_upper {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// A character that can be part of a domain run in text; `_` is included so that a name
/// containing it is rejected whole instead of yielding its tail.
pub(super) fn is_run_char(c: char) -> bool {
    c == '.'
        || c == '_'
        || c.is_ascii_alphanumeric()
        || c == '-'
        || (!c.is_ascii() && is_label_char(c))
}

/// Adds the domain of every email address in `text`: the text after the last `@` of an
/// `@`-run that follows a local-part character (`a@@b.example.com` and `"x y"@b.example.com`
/// count, as in the reference).
pub(super) fn scan_addresses(text: &str, out: &mut Indicators) {
    for (at, _) in text.match_indices('@') {
        let Some(before) = char_before(text, at) else {
            continue;
        };
        if !(is_word_char(before) || matches!(before, '.' | '%' | '+' | '-' | '"' | '\'')) {
            continue;
        }
        let rest = text[at..].trim_start_matches('@');
        let run_len = rest.find(|c: char| !is_run_char(c)).unwrap_or(rest.len());
        if run_len > MAX_HOST_LEN * 4 {
            continue;
        }
        let domain = rest[..run_len].trim_end_matches(['.', '-']);
        if let Some(domain) = normalize_host(domain) {
            out.add(Class::Domain, &domain);
        }
    }
}

/// Adds bare domains that were written defanged (`evil[.]com`, `(evil[.]com)`,
/// `evil[.]com/path`). `dot_marks` are the refanged dots; a plain `file.txt` is never a
/// candidate. Words holding `://` or `@` are left to the URL and address rules, and a name
/// right after `/` or `\` is a path segment, not a host.
pub(super) fn scan_defanged_words(text: &str, dot_marks: &[usize], out: &mut Indicators) {
    let mut done_until = 0;
    for &mark in dot_marks {
        if mark < done_until {
            continue;
        }
        let word_start = text[..mark]
            .rfind(char::is_whitespace)
            .map_or(0, |i| i + char_len_at(text, i));
        let word_end = text[mark..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| mark + i);
        done_until = word_end;
        let word = &text[word_start..word_end];
        if word.len() > MAX_RUN_LEN || word.contains("://") || word.contains('@') {
            continue;
        }
        // the domain-shaped run inside the word that holds this mark and the marks after it
        let mut cursor = mark;
        while cursor < word_end {
            let start = text[..cursor]
                .rfind(|c: char| !is_run_char(c))
                .map_or(0, |i| i + char_len_at(text, i));
            let start = start.max(word_start);
            let end = text[cursor..]
                .find(|c: char| !is_run_char(c))
                .map_or(text.len(), |i| cursor + i);
            if !matches!(char_before(text, start), Some('/' | '\\'))
                && let Some(domain) = normalize_host(text[start..end].trim_matches(['.', '-']))
            {
                out.add(Class::Domain, &domain);
            }
            // later marks in the same run are covered; look for the next run holding a mark
            match dot_marks.iter().find(|&&m| m > end && m < word_end) {
                Some(&next) => cursor = next,
                None => break,
            }
        }
    }
}

fn char_len_at(text: &str, i: usize) -> usize {
    text[i..].chars().next().map_or(1, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::refang::refang;

    fn valid(host: &str) -> bool {
        is_valid_domain(host)
    }

    fn addresses(text: &str) -> Vec<String> {
        let mut out = Indicators::default();
        scan_addresses(text, &mut out);
        out.domains.into_iter().collect()
    }

    fn defanged(text: &str) -> Vec<String> {
        let r = refang(text);
        let mut out = Indicators::default();
        scan_defanged_words(&r.text, &r.dot_marks, &mut out);
        out.domains.into_iter().collect()
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

    #[test]
    fn known_public_suffixes_make_valid_domains() {
        for host in [
            "example.com",
            "mail.example.co.uk",
            "bücher.example.org",
            "пример.рф",
            "xn--e1afmkfd.xn--p1ai",
            "a-b.example.net",
        ] {
            assert!(valid(host), "{host}");
        }
    }

    #[test]
    fn file_names_and_internal_names_are_not_domains() {
        for host in [
            "file.txt",
            "invoice.pdf",
            "foo.local",
            "x.invalid",
            "host.corp",
            "report.docx",
        ] {
            assert!(!valid(host), "{host}");
        }
    }

    #[test]
    fn malformed_hosts_are_rejected() {
        for host in [
            "com",
            "co.uk",
            "a..example.com",
            ".example.com",
            "-a.example.com",
            "a-.example.com",
            "a_b.example.com",
            "a b.example.com",
            "1.2.3.4",
            "example.com:80",
            "",
        ] {
            assert!(!valid(host), "{host:?}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(!valid(&long_label));
        let long_host = format!("{}com", "abcdefghi.".repeat(26));
        assert!(!valid(&long_host));
    }

    #[test]
    fn host_names_need_good_labels_but_no_public_suffix() {
        for host in [
            "server.local",
            "x.invalid",
            "sharepoint.corp",
            "a-1.b2.internal",
            "a.xn--zz",
            "a.例子",
        ] {
            assert!(is_host_name(host) && !valid(host), "{host}");
        }
        assert!(is_host_name("example.com") && valid("example.com"));
        for host in [
            "intranet",
            "a_b.local",
            "a..local",
            "-a.local",
            "a.local.",
            "1.2.3.4",
            "1.2.3.999",
            "a.0x7f",
            "a.1a",
            "internet.e-mail",
            "",
        ] {
            assert!(!is_host_name(host), "{host:?}");
        }
    }

    #[test]
    fn private_suffix_hosting_is_kept_because_malware_lives_there() {
        assert!(valid("s3.amazonaws.com"));
        assert!(valid("github.io"));
        assert!(valid("evil.github.io"));
        assert!(valid("evil.blogspot.com"));
    }

    #[test]
    fn address_domain_is_lowercased_after_the_last_at() {
        assert_eq!(
            domain_of_address("a@Mail.Example.COM").as_deref(),
            Some("mail.example.com")
        );
        assert_eq!(
            domain_of_address("<bob@Example.ORG>").as_deref(),
            Some("example.org")
        );
        assert_eq!(
            domain_of_address("\"a@b\"@relay.example.net").as_deref(),
            Some("relay.example.net")
        );
        assert_eq!(
            domain_of_address("bob@example.com.").as_deref(),
            Some("example.com")
        );
    }

    #[test]
    fn address_domain_is_never_an_ip_or_unknown_suffix() {
        assert_eq!(domain_of_address("bob@10.0.0.1"), None);
        assert_eq!(domain_of_address("bob@[10.0.0.1]"), None);
        assert_eq!(domain_of_address("bob@server.local"), None);
        assert_eq!(domain_of_address("no-at-sign.example.com"), None);
        assert_eq!(domain_of_address("bob@"), None);
    }

    #[test]
    fn addresses_in_text_give_their_domains() {
        assert_eq!(
            addresses("Write to Bob.Smith+tag@Mail.Example.com, or jane@example.org."),
            ["example.org", "mail.example.com"]
        );
        assert_eq!(addresses("double a@@b.example.com"), ["b.example.com"]);
        assert_eq!(
            addresses("quoted \"john doe\"@example.net"),
            ["example.net"]
        );
        assert_eq!(addresses("chained a@b@c.example.com"), ["c.example.com"]);
        assert_eq!(
            addresses("idn user@bücher.example.org"),
            ["bücher.example.org"]
        );
    }

    #[test]
    fn non_addresses_give_nothing() {
        assert!(addresses("@twitter_handle and @example.com alone").is_empty());
        assert!(
            addresses("bob@10.1.2.3 bob@[10.1.2.3] bob@host.local bob@under_score.example.com")
                .is_empty()
        );
    }

    #[test]
    fn a_defanged_bare_domain_is_an_intended_indicator() {
        assert_eq!(defanged("block evil[.]com now"), ["evil.com"]);
        assert_eq!(
            defanged("(evil(.)example[.]net), \"x[dot]example.org\"."),
            ["evil.example.net", "x.example.org"]
        );
        assert_eq!(
            defanged("evil[.]com/login.php and evil[.]org:8080"),
            ["evil.com", "evil.org"]
        );
        assert_eq!(
            defanged("domain=phish[.]example.com"),
            ["phish.example.com"]
        );
    }

    #[test]
    fn plain_bare_words_are_not_domains() {
        assert!(defanged("open file.txt or example.com, see readme.md").is_empty());
    }

    #[test]
    fn defanged_words_that_are_not_domains_give_nothing() {
        assert!(defanged("10[.]0[.]0[.]1 file[.]txt host[.]local /path/to/evil[.]zip").is_empty());
        // URLs and addresses are handled by their own rules
        assert!(defanged("hxxp://evil[.]com bob[at]evil[.]org").is_empty());
    }

    #[test]
    fn unicode_spaces_around_a_defanged_domain_are_word_breaks() {
        assert_eq!(
            defanged("\u{3000}evil[.]com\u{a0}next\u{2003}bad[.]example.org"),
            ["bad.example.org", "evil.com"]
        );
    }

    #[test]
    fn a_defanged_word_longer_than_the_run_guard_is_skipped() {
        let blob = format!("{}evil[.]com", "a-".repeat(MAX_RUN_LEN / 2));
        assert!(defanged(&blob).is_empty());
        assert_eq!(
            defanged(&format!("{} evil[.]com", "a-".repeat(MAX_RUN_LEN / 2))),
            ["evil.com"]
        );
    }

    #[test]
    fn several_defanged_domains_in_one_word_are_all_found() {
        assert_eq!(
            defanged("a[.]example.com,b[.]example.org"),
            ["a.example.com", "b.example.org"]
        );
    }

    #[test]
    fn lowercase_borrows_when_nothing_changes() {
        assert!(matches!(lowercase("example.com"), Cow::Borrowed(_)));
        assert_eq!(lowercase("ÉXample.COM"), "éxample.com");
    }
}
