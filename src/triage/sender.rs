//! Sender tricks: a Reply-To or Return-Path in another organisation than the From address,
//! and a display name that shows an address of another organisation.
//!
//! "Another organisation" means another registrable domain (Public Suffix List):
//! `billing.example.co.uk` and `mail.example.co.uk` are the same sender, `example.co.uk` and
//! `example-support.co.uk` are not.

use crate::artifacts::email::header_value;
use crate::extract::registrable_domain;
use crate::mime::{RawHeader, headers::decode_words};

/// The sender tricks a header block shows, in this order, each at most once:
/// `"reply_to_domain"`, `"return_path_domain"`, `"display_name_address"`; empty when none
/// holds, and always empty without a From address.
///
/// From and Reply-To are read where the Email Artifact reads them (the last occurrence,
/// which `fromEmail` and `emailHeaders` show); Return-Path is the topmost one, the one the
/// final delivery added. An empty `Return-Path: <>` (bounces) is no mismatch.
pub fn sender_mismatches(headers: &[RawHeader]) -> Vec<&'static str> {
    let mut out = Vec::new();
    let Some(from) = header_value(headers, "from") else {
        return out;
    };
    let from_boxes = mailboxes_lenient(from);
    // The first mailbox with an address is the author a client displays.
    let Some((from_display, from_domain)) = from_boxes.iter().find_map(|m| {
        let domain = m.address.as_deref().and_then(address_domain)?;
        Some((m.display.as_str(), domain))
    }) else {
        return out;
    };

    let reply_to = header_value(headers, "reply-to")
        .map(mailboxes_lenient)
        .unwrap_or_default();
    if reply_to
        .iter()
        .any(|m| differs(m.address.as_deref(), &from_domain))
    {
        out.push("reply_to_domain");
    }

    let return_path = headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("return-path"))
        .map(|h| mailboxes_lenient(&h.value))
        .unwrap_or_default();
    if return_path
        .first()
        .is_some_and(|m| differs(m.address.as_deref(), &from_domain))
    {
        out.push("return_path_domain");
    }

    if addresses_in_text(from_display).any(|domain| domain != from_domain) {
        out.push("display_name_address");
    }
    out
}

/// Whether `address` has a registrable domain other than `from_domain`; an address
/// without a usable domain (`<>`, `undisclosed`) is no evidence either way.
fn differs(address: Option<&str>, from_domain: &str) -> bool {
    address
        .and_then(address_domain)
        .is_some_and(|domain| domain != from_domain)
}

/// The registrable domain of an address's domain part (after the last `@`).
fn address_domain(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    registrable_domain(domain.trim())
}

/// One mailbox of an address list: its display text (phrase, quoted strings and
/// comments, RFC 2047-decoded) and its address as written, if it has one.
#[derive(Debug, Default, PartialEq, Eq)]
struct Mailbox {
    display: String,
    address: Option<String>,
}

/// The mailboxes of an address header value; when the raw value yields no address, the
/// RFC 2047-decoded value is read instead (some senders encode a whole `Name <address>`).
fn mailboxes_lenient(value: &str) -> Vec<Mailbox> {
    let boxes = mailboxes(value);
    if boxes.iter().any(|m| m.address.is_some()) || !value.contains("=?") {
        return boxes;
    }
    mailboxes(&decode_words(value))
}

/// Parses an address list leniently: mailboxes are separated by `,` (or a group's `;`)
/// outside quotes, comments and angle brackets; the address is the last `<...>`, or without
/// one the first bare word holding an `@`; everything else is display text.
///
/// The structure is read on the raw value and only the display text is decoded
/// afterwards, so an encoded word that decodes to `<`, `,` or `"` cannot move the address.
fn mailboxes(value: &str) -> Vec<Mailbox> {
    let mut out = Vec::new();
    let mut current = Scan::default();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if current.in_quote || current.comment_depth > 0 => {
                if let Some(next) = chars.next() {
                    current.push_aux(next);
                }
            }
            '"' if current.comment_depth == 0 && !current.in_angle => {
                current.in_quote = !current.in_quote;
                current.aux.push(' ');
            }
            _ if current.in_quote => current.aux.push(c),
            '(' if !current.in_angle => {
                if current.comment_depth > 0 {
                    current.aux.push(c);
                }
                current.comment_depth += 1;
                current.aux.push(' ');
            }
            ')' if current.comment_depth > 0 => {
                current.comment_depth -= 1;
                if current.comment_depth > 0 {
                    current.aux.push(c);
                }
                current.aux.push(' ');
            }
            _ if current.comment_depth > 0 => current.aux.push(c),
            '<' if !current.in_angle => {
                current.in_angle = true;
                current.angle.clear();
                current.has_angle = true;
            }
            '>' if current.in_angle => current.in_angle = false,
            _ if current.in_angle => current.angle.push(c),
            ',' | ';' => out.push(std::mem::take(&mut current).finish()),
            _ => current.phrase.push(c),
        }
    }
    out.push(current.finish());
    out.retain(|m| m.address.is_some() || !m.display.trim().is_empty());
    out
}

/// The state of one mailbox while scanning.
#[derive(Debug, Default)]
struct Scan {
    /// Text outside quotes, comments and angle brackets (phrase words or a bare address).
    phrase: String,
    /// Inner text of quoted strings and comments.
    aux: String,
    /// Inner text of the last `<...>`.
    angle: String,
    has_angle: bool,
    in_quote: bool,
    in_angle: bool,
    comment_depth: usize,
}

impl Scan {
    fn push_aux(&mut self, c: char) {
        self.aux.push(c);
    }

    fn finish(self) -> Mailbox {
        let (address, phrase) = if self.has_angle {
            (Some(self.angle.trim().to_owned()), self.phrase)
        } else {
            // `bob@example.com (Bob)`: the bare word with an `@` is the address.
            let mut address = None;
            let mut rest = Vec::new();
            for word in self.phrase.split_whitespace() {
                if address.is_none() && word.contains('@') {
                    address = Some(word.to_owned());
                } else {
                    rest.push(word);
                }
            }
            (address, rest.join(" "))
        };
        let display = decode_words(format!("{phrase} {}", self.aux).trim());
        Mailbox {
            display,
            address: address.filter(|a| !a.is_empty()),
        }
    }
}

/// The registrable domains of the email addresses written in `text` (a display name), in
/// order.
fn addresses_in_text(text: &str) -> impl Iterator<Item = String> + '_ {
    text.match_indices('@').filter_map(move |(at, _)| {
        let local_ok = text[..at].chars().next_back().is_some_and(is_local_char);
        let domain: String = text[at + 1..]
            .chars()
            .take_while(|&c| c.is_alphanumeric() || c == '.' || c == '-')
            .collect();
        let domain = domain.trim_end_matches('.');
        if !local_ok || !domain.contains('.') {
            return None;
        }
        registrable_domain(domain)
    })
}

/// A character that can end the local part of an address (RFC 5322 atext, and `.`).
fn is_local_char(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatches(headers: &[(&str, &str)]) -> Vec<&'static str> {
        let headers: Vec<_> = headers
            .iter()
            .map(|(n, v)| RawHeader {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect();
        sender_mismatches(&headers)
    }

    #[test]
    fn a_clean_sender_has_no_mismatch() {
        // Subdomains of one registrable domain are one sender (an ESP's bounce host, a
        // corporate reply desk).
        assert!(
            mismatches(&[
                ("Return-Path", "<bounce+2f1a@mail.example.co.uk>"),
                ("From", "\"Example Billing\" <billing@example.co.uk>"),
                ("Reply-To", "Help Desk <help@support.example.co.uk>"),
            ])
            .is_empty()
        );
    }

    #[test]
    fn every_trick_at_once_in_fixed_order() {
        assert_eq!(
            mismatches(&[
                ("Return-Path", "<bounce@mailer-cloud.net>"),
                (
                    "From",
                    "\"paypal.com support <service@paypal.com>\" <x7@evil-login.com>"
                ),
                ("Reply-To", "collect@account-verify-center.com"),
            ]),
            [
                "reply_to_domain",
                "return_path_domain",
                "display_name_address"
            ]
        );
    }

    /// The phishing fixture's inner message (`fixtures/eml/phishing/001-reported-attached-eml.eml`).
    #[test]
    fn reply_to_elsewhere() {
        assert_eq!(
            mismatches(&[
                (
                    "From",
                    "\"IT Service Desk\" <it-servicedesk@examp1e-support.com>"
                ),
                ("Reply-To", "helpdesk@account-verify-center.com"),
            ]),
            ["reply_to_domain"]
        );
    }

    #[test]
    fn any_differing_reply_to_address_counts() {
        assert_eq!(
            mismatches(&[
                ("From", "Alice <alice@example.com>"),
                (
                    "Reply-To",
                    "Alice <alice@example.com>,\r\n \"Bob, B.\" <bob@elsewhere.example.net>"
                ),
            ]),
            ["reply_to_domain"]
        );
    }

    #[test]
    fn empty_return_path_is_no_mismatch_and_topmost_return_path_counts() {
        assert!(
            mismatches(&[
                ("Return-Path", "<>"),
                ("From", "MAILER-DAEMON@mx.example.com")
            ])
            .is_empty()
        );
        assert_eq!(
            mismatches(&[
                ("Return-Path", "<owner@lists.example.org>"),
                ("Return-Path", "<a@example.com>"),
                ("From", "a@example.com"),
            ]),
            ["return_path_domain"]
        );
    }

    #[test]
    fn display_name_address_is_found_after_rfc2047_decoding() {
        // `PayPal <service@paypal.com>` encoded in the display name.
        assert_eq!(
            mismatches(&[(
                "From",
                "=?utf-8?B?UGF5UGFsIDxzZXJ2aWNlQHBheXBhbC5jb20+?= <noreply@evil-login.com>"
            )]),
            ["display_name_address"]
        );
        // A display name holding the sender's own address is no trick.
        assert!(mismatches(&[("From", "\"bob@example.com\" <bob@example.com>")]).is_empty());
        // A domain alone in the display name is not an address.
        assert!(mismatches(&[("From", "paypal.com support <x@evil-login.com>")]).is_empty());
    }

    #[test]
    fn old_style_comment_display_names_are_read() {
        assert_eq!(
            mismatches(&[("From", "x@evil-login.com (PayPal <service@paypal.com>)")]),
            ["display_name_address"]
        );
    }

    #[test]
    fn a_fully_encoded_from_is_decoded_for_its_address() {
        // "Support" <support@bank.example.com>, all in one encoded word.
        assert_eq!(
            mismatches(&[
                (
                    "From",
                    "=?utf-8?Q?=22Support=22_=3Csupport=40bank=2Eexample=2Ecom=3E?="
                ),
                ("Reply-To", "drop@evil-login.com"),
            ]),
            ["reply_to_domain"]
        );
    }

    #[test]
    fn no_from_address_gives_nothing() {
        let tricks = [
            ("Reply-To", "a@evil.example.net"),
            ("Return-Path", "<b@evil.example.net>"),
        ];
        assert!(mismatches(&tricks).is_empty());
        assert!(mismatches(&[("From", "undisclosed"), tricks[0], tricks[1]]).is_empty());
        assert!(mismatches(&[("From", "<>"), tricks[0]]).is_empty());
    }

    #[test]
    fn the_last_from_is_the_one_compared() {
        assert_eq!(
            mismatches(&[
                ("From", "a@evil.example.net"),
                ("From", "b@example.com"),
                ("Reply-To", "c@evil.example.net"),
            ]),
            ["reply_to_domain"]
        );
    }

    #[test]
    fn mailbox_parsing_is_lenient() {
        let boxes = mailboxes(
            "\"Doe, J. (Sales)\" <j@a.example>, k@b.example (K <not@c.example>), Group: l@d.example;, <>",
        );
        let addresses: Vec<_> = boxes.iter().map(|m| m.address.as_deref()).collect();
        assert_eq!(
            addresses,
            [
                Some("j@a.example"),
                Some("k@b.example"),
                Some("l@d.example")
            ]
        );
        assert_eq!(boxes[0].display, "Doe, J. (Sales)");
        assert_eq!(boxes[1].display, "K <not@c.example>");
        // Unbalanced everything: still mailboxes, no panic.
        for junk in [
            "\"",
            "(",
            "<",
            ">",
            ")",
            "<<a@b>",
            "\"a\\",
            "(((a@b.example",
            "@",
            "é@ü.example",
        ] {
            let _ = mailboxes(junk);
            let _ = mismatches(&[("From", junk), ("Reply-To", junk), ("Return-Path", junk)]);
        }
    }

    #[test]
    fn hostile_values_never_panic() {
        const PIECES: [&str; 14] = [
            "a",
            "@",
            ".",
            "example.com",
            "<",
            ">",
            "\"",
            "(",
            ")",
            ",",
            ";",
            "\\",
            "=?utf-8?Q?x?=",
            "é",
        ];
        for text in crate::extract::pseudo_random_texts(0x005e_4de5, &PIECES, 30, 2000) {
            let _ = mismatches(&[("From", &text), ("Reply-To", &text), ("Return-Path", &text)]);
        }
    }
}
