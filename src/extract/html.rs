//! HTML bodies: link attributes plus the whole text, in one pass over html5gum's tokens.
//!
//! The reference looked at `href`/`src` only when a body had links, and then never at its
//! text, so a plain-text URL next to a link was lost. Here both always run. Comments are
//! scanned too: Outlook's `<!--[if mso]>` blocks carry real links that Outlook users click.

use std::borrow::Cow;
use std::convert::Infallible;

use html5gum::emitters::callback::{CallbackEmitter, CallbackEvent};
use html5gum::{Span, Tokenizer};

use super::domains::domain_of_address;
use super::{
    Class, ExtractOptions, Indicators, UrlFacts, deception, refang, scan_live, scan_text,
    starts_with_ignore_case, urls,
};

/// HTML body: `href` (except `mailto:`, whose domain goes to domains), `src`, `action`,
/// `background`, link text that is a URL, and the whole text run through the plain-text
/// rules; a few text-bearing attributes (`content` of a meta refresh, `style`, `alt`) get the
/// plain-text rules as well.
pub fn scan_html(html: &str, opts: &ExtractOptions, out: &mut Indicators) {
    if !opts.any() {
        return;
    }
    let comments = scan_markup(html, *opts, out, true);
    // Comment content is markup too (Outlook's `<!--[if mso]>` buttons): tokenize it
    // once more so its attributes are entity-decoded like any other; comments inside
    // comments are plain text.
    for comment in comments {
        scan_markup(&comment, *opts, out, false);
    }
}

/// Tokenize `html`, scan links and text; returns the comments when `collect_comments`
/// (else comment text is scanned as text).
fn scan_markup(
    html: &str,
    opts: ExtractOptions,
    out: &mut Indicators,
    collect_comments: bool,
) -> Vec<String> {
    let mut walker = Walker {
        opts,
        out,
        text: String::with_capacity(html.len() / 2),
        attribute: Attribute::Skip,
        href: false,
        value: Vec::new(),
        comments: collect_comments.then(Vec::new),
        anchor: None,
    };
    let mut emitter = CallbackEmitter::new(
        |event: CallbackEvent<'_>, _: Span<()>| -> Option<Infallible> {
            walker.on_event(&event);
            None
        },
    );
    // script, style and title content is raw text, not markup
    emitter.naively_switch_states(true);
    let Ok(()) = Tokenizer::new_with_emitter(html, emitter).finish();
    walker.flush_attribute();
    walker.close_anchor();
    let Walker {
        text,
        out,
        comments,
        ..
    } = walker;
    scan_text(&text, &opts, out);
    comments.unwrap_or_default()
}

/// Which rule an attribute value gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attribute {
    /// A link target: a whole URL, a `mailto:` address, or nothing.
    Link,
    /// Free text that may hold URLs: plain-text rules.
    Text,
    /// Everything else. Namespaces and schemas (`xmlns`, `itemtype`) would add a
    /// `www.w3.org` URL to nearly every Outlook mail, and `class`/`id` values look like hashes.
    Skip,
}

impl Attribute {
    fn of(name: &[u8]) -> Attribute {
        match name {
            b"href" | b"src" | b"action" | b"background" | b"formaction" | b"poster"
            | b"longdesc" => Attribute::Link,
            // meta refresh `content="0;url=..."`, CSS `url(...)`, image sets and link pings
            b"content" | b"style" | b"srcset" | b"ping" | b"alt" | b"title" | b"value" => {
                Attribute::Text
            }
            _ => Attribute::Skip,
        }
    }
}

struct Walker<'a> {
    opts: ExtractOptions,
    out: &'a mut Indicators,
    /// The document's text, with a line break wherever a tag breaks the flow.
    text: String,
    attribute: Attribute,
    /// Whether the pending attribute is an `href` (of an `<a>`, while one is open).
    href: bool,
    /// Raw bytes of the pending attribute value.
    value: Vec<u8>,
    /// Comments to tokenize afterwards, on the first pass only.
    comments: Option<Vec<String>>,
    /// The `<a>` being read: its link target and its visible text so far.
    anchor: Option<Anchor>,
}

/// An open `<a>` element, kept to compare what it shows with where it goes.
#[derive(Default)]
struct Anchor {
    /// The URL recorded for its `href`.
    href: Option<String>,
    /// Its text, up to `MAX_ANCHOR_TEXT` bytes.
    text: String,
}

/// Link text longer than this is prose, not a URL shown in place of another.
const MAX_ANCHOR_TEXT: usize = 4096;

impl Walker<'_> {
    fn on_event(&mut self, event: &CallbackEvent<'_>) {
        match *event {
            CallbackEvent::OpenStartTag { name } | CallbackEvent::EndTag { name } => {
                self.flush_attribute();
                if name == b"a" {
                    // an `<a>` inside an unclosed one closes it, as browsers do
                    self.close_anchor();
                    if matches!(event, CallbackEvent::OpenStartTag { .. }) {
                        self.anchor = Some(Anchor::default());
                    }
                }
                if !is_inline(name) {
                    self.text.push('\n');
                }
            }
            CallbackEvent::AttributeName { name } => {
                self.flush_attribute();
                self.attribute = Attribute::of(name);
                self.href = name == b"href";
            }
            CallbackEvent::AttributeValue { value } => self.value.extend_from_slice(value),
            CallbackEvent::CloseStartTag { .. } => {
                self.flush_attribute();
                self.href = false;
            }
            CallbackEvent::String { value } => {
                let value = String::from_utf8_lossy(value);
                if let Some(anchor) = &mut self.anchor
                    && anchor.text.len() + value.len() <= MAX_ANCHOR_TEXT
                {
                    anchor.text.push_str(&value);
                }
                self.text.push_str(&value);
            }
            CallbackEvent::Comment { value } => {
                let value = String::from_utf8_lossy(value);
                if let Some(comments) = &mut self.comments {
                    comments.push(value.into_owned());
                } else {
                    self.text.push('\n');
                    self.text.push_str(&value);
                    self.text.push('\n');
                }
            }
            CallbackEvent::Doctype { .. } | CallbackEvent::Error(_) => {}
        }
    }

    /// Runs the pending attribute value through its rule.
    fn flush_attribute(&mut self) {
        if self.value.is_empty() {
            return;
        }
        if self.attribute == Attribute::Skip {
            self.value.clear();
            return;
        }
        let raw = std::mem::take(&mut self.value);
        let value = String::from_utf8_lossy(&raw);
        self.scan_attribute(&value);
        // reuse the buffer's allocation for the next value
        self.value = raw;
        self.value.clear();
    }

    fn scan_attribute(&mut self, value: &str) {
        let value = value.trim();
        // inline images and fonts are content, not indicators, and can be megabytes
        if starts_with_ignore_case(value, "data:") {
            return;
        }
        if self.attribute == Attribute::Text {
            scan_text(value, &self.opts, self.out);
            return;
        }
        let live = refang::refang(value).text;
        if starts_with_ignore_case(&live, "mailto:") {
            if self.opts.domains {
                add_mailto_domains(&live["mailto:".len()..], self.out);
            }
        } else if self.opts.urls || self.opts.domains {
            let url = urls::scan_attribute(&live, self.opts, self.out);
            if self.href
                && let Some(anchor) = self.anchor.as_mut().filter(|a| a.href.is_none())
            {
                anchor.href = url.map(Cow::into_owned);
            }
        }
        scan_live(&live, self.opts, self.out, false);
    }

    /// Ends the open `<a>`, if any: link text that names another site than the link's
    /// target is noted on the target's URL.
    fn close_anchor(&mut self) {
        let Some(Anchor {
            href: Some(href),
            text,
        }) = self.anchor.take()
        else {
            return;
        };
        if !self.opts.urls || !self.out.urls.contains(&href) {
            return;
        }
        if let Some(shown) = deception::displayed_elsewhere(&text, &href) {
            let facts = UrlFacts {
                displayed: Some(shown.to_owned()),
                ..UrlFacts::default()
            };
            self.out.note_url(href, facts);
        }
    }
}

/// `mailto:a@x.example.com,b@y.example.org?subject=...`: every recipient's domain.
fn add_mailto_domains(recipients: &str, out: &mut Indicators) {
    let recipients = recipients.split('?').next().unwrap_or_default();
    for address in recipients.split([',', ';']) {
        if let Some(domain) = domain_of_address(address) {
            out.add(Class::Domain, &domain);
        }
    }
}

/// Inline formatting tags do not break words when rendered, so they do not break the text
/// either: `<span>https://</span><b>evil.example.com</b>` is one URL on screen. Every other
/// tag (`a`, `br`, `p`, `td`...) does, so that `</td><td>` cannot glue two cells into one URL.
fn is_inline(name: &[u8]) -> bool {
    const INLINE: [&[u8]; 28] = [
        b"b", b"i", b"u", b"s", b"em", b"strong", b"span", b"font", b"small", b"big", b"sub",
        b"sup", b"strike", b"mark", b"abbr", b"code", b"tt", b"wbr", b"ins", b"del", b"kbd",
        b"samp", b"var", b"cite", b"dfn", b"bdi", b"bdo", b"label",
    ];
    INLINE.contains(&name)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn scan(html: &str) -> Indicators {
        let mut out = Indicators::default();
        scan_html(html, &ExtractOptions::ALL, &mut out);
        out
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn link_text_naming_another_site_is_noted_on_the_href() {
        let out = scan(
            r#"<a href="http://evil.example.net/login"> <b>https://paypal.com</b> </a>
               <a href="https://www.paypal.com/signin">https://paypal.com</a>
               <a href="https://evil.example.org/">Click here</a>
               <a href="https://a.example.com/">www.bank.example.co.uk<a href="https://b.example.com/">b.example.com</a>"#,
        );
        let displayed = |url: &str| out.url_facts.get(url).and_then(|f| f.displayed.as_deref());
        assert_eq!(
            displayed("http://evil.example.net/login"),
            Some("https://paypal.com")
        );
        assert_eq!(
            displayed("https://a.example.com/"),
            Some("www.bank.example.co.uk")
        );
        // the same site, prose, and a link text equal to its own host name nothing
        assert_eq!(displayed("https://www.paypal.com/signin"), None);
        assert_eq!(displayed("https://evil.example.org/"), None);
        assert_eq!(displayed("https://b.example.com/"), None);
        assert_eq!(out.url_facts.len(), 2);
        // the displayed text's own URL is still an artifact of its own
        assert!(out.urls.contains("https://paypal.com"));
    }

    #[test]
    fn plain_text_urls_are_found_next_to_links() {
        // the reference's HTML mode missed the second URL
        let out = scan(
            r#"<p><a href="https://a.example.com/login">Log in</a> or paste https://b.example.org/x</p>"#,
        );
        assert_eq!(
            out.urls,
            set(&["https://a.example.com/login", "https://b.example.org/x"])
        );
        assert_eq!(out.domains, set(&["a.example.com", "b.example.org"]));
    }

    #[test]
    fn link_attributes_are_collected() {
        let out = scan(
            r#"<img src="https://img.example.com/p.png"><form action="https://post.example.net/s">
               <table background="http://bg.example.org/t.gif"></table><a href='HTTPS://Up.Example.com/A'>x</a>"#,
        );
        assert_eq!(
            out.urls,
            set(&[
                "HTTPS://Up.Example.com/A",
                "http://bg.example.org/t.gif",
                "https://img.example.com/p.png",
                "https://post.example.net/s"
            ])
        );
    }

    #[test]
    fn entities_in_attributes_and_text_are_decoded() {
        let out = scan(
            r#"<a href="https://example.com/?a=1&amp;b=2">https://example.org/?c=3&amp;d=4</a>"#,
        );
        assert_eq!(
            out.urls,
            set(&[
                "https://example.com/?a=1&b=2",
                "https://example.org/?c=3&d=4"
            ])
        );
    }

    #[test]
    fn mailto_gives_the_recipient_domain_not_a_url() {
        let out = scan(
            r#"<a href="mailto:Help@Evil.Example.com?subject=hi%20there">mail</a><a href="MAILTO:a@x.example.org,b@y.example.net">2</a>"#,
        );
        assert!(out.urls.is_empty());
        assert_eq!(
            out.domains,
            set(&["evil.example.com", "x.example.org", "y.example.net"])
        );
    }

    #[test]
    fn relative_and_script_links_are_not_urls() {
        let out = scan(
            r##"<a href="/local">a</a><a href="#top">b</a><a href="javascript:void(0)">c</a><a href="cid:img1">d</a>"##,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn link_text_split_by_inline_tags_is_one_url() {
        let out = scan(
            r#"<a href="https://safe.example.com/"><span>https://</span><b>evil.example.net</b>/login</a>"#,
        );
        assert_eq!(
            out.urls,
            set(&[
                "https://evil.example.net/login",
                "https://safe.example.com/"
            ])
        );
    }

    #[test]
    fn block_tags_keep_neighbouring_cells_apart() {
        let out = scan(
            "<table><tr><td>http://a.example.com/x</td><td>next</td></tr></table><p>1.2.3.4</p><p>5</p>",
        );
        assert_eq!(out.urls, set(&["http://a.example.com/x"]));
        assert_eq!(out.ips, set(&["1.2.3.4"]));
    }

    #[test]
    fn text_rules_run_over_the_visible_text() {
        let out = scan(
            "<html><head><title>Invoice</title><style>p{color:red}</style></head><body>\
             <p>Server&nbsp;203.0.113.9 sent d41d8cd98f00b204e9800998ecf8427e to bob@corp.example.com</p>\
             <div>IOC: evil[.]example[.]org and hxxp://bad[.]example[.]com/x</div></body></html>",
        );
        assert_eq!(out.ips, set(&["203.0.113.9"]));
        assert_eq!(out.hashes, set(&["d41d8cd98f00b204e9800998ecf8427e"]));
        assert_eq!(out.urls, set(&["http://bad.example.com/x"]));
        assert_eq!(
            out.domains,
            set(&["bad.example.com", "corp.example.com", "evil.example.org"])
        );
    }

    #[test]
    fn entities_in_conditional_comment_attributes_are_decoded() {
        let out = scan(
            r#"<!--[if mso]><v:roundrect href="https://safe.example.com/?url=x&amp;data=1"></v:roundrect><![endif]-->
               <a href="https://safe.example.com/?url=x&amp;data=1">open</a>"#,
        );
        assert_eq!(out.urls, set(&["https://safe.example.com/?url=x&data=1"]));
    }

    #[test]
    fn script_content_and_outlook_conditional_comments_are_scanned() {
        let out = scan(
            r#"<script>var u = "https://tracker.example.com/t.js";</script>
               <!--[if mso]><v:roundrect href="https://mso.example.net/btn"></v:roundrect><![endif]-->"#,
        );
        assert_eq!(
            out.urls,
            set(&[
                "https://mso.example.net/btn",
                "https://tracker.example.com/t.js"
            ])
        );
    }

    #[test]
    fn meta_refresh_and_style_urls_are_found() {
        let out = scan(
            r#"<meta http-equiv="refresh" content="0;url=https://redirect.example.com/p">
               <div style="background:url(https://css.example.org/bg.png)">x</div>"#,
        );
        assert_eq!(
            out.urls,
            set(&[
                "https://css.example.org/bg.png",
                "https://redirect.example.com/p"
            ])
        );
    }

    #[test]
    fn namespaces_schemas_and_identifiers_are_not_indicators() {
        let out = scan(
            r#"<html xmlns:o="urn:schemas-microsoft-com:office:office" xmlns="http://www.w3.org/TR/REC-html40">
               <!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1.dtd">
               <div itemscope itemtype="http://schema.org/EmailMessage" id="d41d8cd98f00b204e9800998ecf8427e"
                    class="10.0.0.1">Hello</div></html>"#,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn ips_and_hashes_in_link_attributes_are_found() {
        let out =
            scan(r#"<a href="http://198.51.100.7/d41d8cd98f00b204e9800998ecf8427e.exe">x</a>"#);
        assert_eq!(out.ips, set(&["198.51.100.7"]));
        assert_eq!(out.hashes, set(&["d41d8cd98f00b204e9800998ecf8427e"]));
        assert_eq!(
            out.urls,
            set(&["http://198.51.100.7/d41d8cd98f00b204e9800998ecf8427e.exe"])
        );
    }

    #[test]
    fn data_uris_are_skipped() {
        let out = scan(
            r#"<img src="data:image/png;base64,aHR0cDovL2V4YW1wbGUuY29tLw== http://x.example.com/">"#,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn defanged_hrefs_are_refanged() {
        let out = scan(r#"<a href="hxxps://evil[.]example[.]com/a">x</a>"#);
        assert_eq!(out.urls, set(&["https://evil.example.com/a"]));
    }

    #[test]
    fn broken_html_does_not_stop_extraction() {
        let out = scan(
            "<div><a href=https://a.example.com/x>unclosed <p attr=>http://b.example.org/y</i></div",
        );
        assert_eq!(
            out.urls,
            set(&["http://b.example.org/y", "https://a.example.com/x"])
        );
    }

    #[test]
    fn options_are_honoured() {
        let mut out = Indicators::default();
        scan_html(
            r#"<a href="https://a.example.com/">1.2.3.4</a>"#,
            &ExtractOptions::NONE,
            &mut out,
        );
        assert!(out.is_empty());
        let opts = ExtractOptions {
            ips: true,
            ..ExtractOptions::NONE
        };
        scan_html(
            r#"<a href="https://a.example.com/">1.2.3.4</a>"#,
            &opts,
            &mut out,
        );
        assert_eq!(out.ips, set(&["1.2.3.4"]));
        assert!(out.urls.is_empty() && out.domains.is_empty());
    }
}
