//! Link text that names another site than the link goes to: the classic phishing
//! deception `<a href="http://evil.example.net/">https://paypal.com</a>`, named on the
//! href's URL Artifact as `cef.displayedURL`.

use std::borrow::Cow;

use super::domains::{normalize_host, registrable_domain};
use super::starts_with_ignore_case;

/// Longest link text that is looked at: a URL, not a paragraph.
const MAX_TEXT_LEN: usize = 2048;

/// The link text, trimmed, when it reads as a URL or a domain (`https://paypal.com`,
/// `www.paypal.com/login`) of another registrable domain than `href`'s host; `None` when
/// the text is prose ("Click here"), names the same site, or the href has no host.
pub(super) fn displayed_elsewhere<'t>(text: &'t str, href: &str) -> Option<&'t str> {
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\u{200b}');
    if text.is_empty() || text.len() > MAX_TEXT_LEN || text.contains(char::is_whitespace) {
        return None;
    }
    let shown =
        if starts_with_ignore_case(text, "http://") || starts_with_ignore_case(text, "https://") {
            host_of(text)?
        } else {
            // a bare name as link text: the host is everything before a path, query or port
            let name = &text[..text.find(['/', '?', '#', ':']).unwrap_or(text.len())];
            if name.contains('@') {
                return None;
            }
            Cow::Owned(normalize_host(name)?.into_owned())
        };
    let target = host_of(href)?;
    (site(&shown) != site(&target)).then_some(text)
}

/// The lowercased host of an absolute URL (no userinfo, port, brackets or root dot).
fn host_of(url: &str) -> Option<Cow<'_, str>> {
    let (host_port, _) = super::urls::split_authority(url)?;
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed.split_once(']')?.0,
        None => host_port.split_once(':').map_or(host_port, |(h, _)| h),
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some(super::domains::lowercase(host))
}

/// The registrable domain of a host (`login.paypal.co.uk` gives `paypal.co.uk`), or the
/// host itself for IPs and single labels.
fn site(host: &str) -> Cow<'_, str> {
    registrable_domain(host).map_or(Cow::Borrowed(host), Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_naming_another_site_is_deceptive() {
        assert_eq!(
            displayed_elsewhere(" https://paypal.com ", "http://evil.example.net/"),
            Some("https://paypal.com")
        );
        assert_eq!(
            displayed_elsewhere("www.PayPal.com/signin", "https://evil.example.net/x"),
            Some("www.PayPal.com/signin")
        );
        assert_eq!(
            displayed_elsewhere("https://bank.example.com/", "http://203.0.113.9/login"),
            Some("https://bank.example.com/")
        );
        // an IP is its own site: the list's default rule would make `0.5` of both
        assert_eq!(
            displayed_elsewhere("http://10.1.0.5/", "http://10.2.0.5/x"),
            Some("http://10.1.0.5/")
        );
    }

    #[test]
    fn the_same_registrable_domain_is_not_deceptive() {
        assert_eq!(
            displayed_elsewhere("https://paypal.com", "https://www.paypal.com/signin"),
            None
        );
        assert_eq!(
            displayed_elsewhere("login.bank.co.uk", "https://secure.BANK.co.uk./x"),
            None
        );
    }

    #[test]
    fn prose_addresses_and_hostless_text_are_not_link_names() {
        for text in [
            "Click here",
            "Verify your account",
            "",
            "bob@paypal.com",
            "file.txt",
        ] {
            assert_eq!(
                displayed_elsewhere(text, "https://evil.example.net/"),
                None,
                "{text}"
            );
        }
        assert_eq!(
            displayed_elsewhere("https://", "https://evil.example.net/"),
            None
        );
        assert_eq!(
            displayed_elsewhere("https://paypal.com", "https:///x"),
            None
        );
    }
}
