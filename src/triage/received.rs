//! The `Received` chain as hops, which hops are internal to a mail system, and the
//! originating IP: the host that handed the mail to the receiving system.
//!
//! Each MTA prepends its `Received` header (RFC 5321 §4.4), so the topmost hop is the most
//! recent. Walking down from the top, hops stay internal while the mail moves between the
//! receiver's own machines; the first external hop is the hand-off from outside, and its
//! from-IP is the last address in the chain that the receiver itself observed. Everything
//! below it was written by the sending side and may be forged.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use super::{Lexeme, lex};
use crate::extract::registrable_domain;
use crate::mime::RawHeader;

/// One `Received` header, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The sending host: the `from` word, or when that is an address literal or `unknown`,
    /// the reverse-DNS name in its comment; lowercased, root dot dropped.
    pub from_host: Option<String>,
    /// The sending IP as the receiving MTA saw it (in the `from` clause's comment, else an
    /// address literal as the `from` word), in canonical form.
    pub from_ip: Option<String>,
    /// The receiving host (the `by` word), lowercased, root dot dropped.
    pub by_host: Option<String>,
    /// The protocol words of the `with` clause (`ESMTPS`, `Microsoft SMTP Server`).
    pub with: Option<String>,
    /// The date after the last `;`, trimmed and unfolded, as written.
    pub date: Option<String>,
    /// Whether this hop moved the mail inside one mail system (see `received_chain`).
    pub internal: bool,
}

/// One hop per `Received` header, in header order (topmost = most recent first).
///
/// A hop is internal when:
/// - its from-IP is not a public address (private, loopback, link-local, shared
///   `100.64.0.0/10`, unique-local, unspecified, multicast, reserved, benchmarking), or
/// - its sending host shares a registrable domain with the `by` host of this hop or of any
///   more recent one (Microsoft 365 hands mail from `*.prod.outlook.com` to
///   `*.outlook.office365.com`: all of it is the receiving system), or
/// - it has no `from` clause (a local hand-off: Gmail's `by 2002:a05:... with SMTP`,
///   `(qmail 1 invoked by uid 0)`), or its `from` clause names neither an IP nor a
///   domain (`from user by host with local-bsmtp`).
///
/// For the domain test the reverse-DNS name in the `from` comment is preferred to the
/// `from` word, because the word is often the client's own HELO claim. Where no
/// reverse-DNS name is recorded (Microsoft 365), a sender that HELOs with one of the
/// receiver's domains makes its hop look internal; headers alone cannot tell.
pub fn received_chain(headers: &[RawHeader]) -> Vec<Hop> {
    let mut receiving_domains = BTreeSet::new();
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("received"))
        .map(|h| {
            let parsed = parse(&h.value);
            if let Some(domain) = parsed.by_host.as_deref().and_then(registrable_domain) {
                receiving_domains.insert(domain);
            }
            let sender_domain = parsed
                .reverse_dns
                .as_deref()
                .or(parsed.from_host.as_deref())
                .and_then(registrable_domain);
            let internal = !parsed.has_from
                || parsed.from_ip.is_some_and(is_internal_ip)
                || sender_domain
                    .as_ref()
                    .map_or(parsed.from_ip.is_none(), |d| receiving_domains.contains(d));
            Hop {
                from_host: parsed.from_host,
                from_ip: parsed.from_ip.map(|ip| ip.to_string()),
                by_host: parsed.by_host,
                with: parsed.with,
                date: parsed.date,
                internal,
            }
        })
        .collect()
}

/// The from-IP of the most recent (topmost) non-internal hop: the host that handed the
/// mail to the receiving system. `None` when every hop is internal, or when that hop
/// records no IP (the hops below it are the sender's word, not the receiver's).
pub fn originating_ip(hops: &[Hop]) -> Option<&str> {
    hops.iter()
        .find(|hop| !hop.internal)
        .and_then(|hop| hop.from_ip.as_deref())
}

/// What one `Received` value says, before the chain decides what is internal.
#[derive(Debug, Default)]
struct Parsed {
    has_from: bool,
    from_host: Option<String>,
    reverse_dns: Option<String>,
    from_ip: Option<IpAddr>,
    by_host: Option<String>,
    with: Option<String>,
    date: Option<String>,
}

/// The clause a word of a `Received` value belongs to (RFC 5321 §4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    Before,
    From,
    By,
    With,
    Other,
}

fn clause_keyword(word: &str) -> Option<Clause> {
    [
        ("from", Clause::From),
        ("by", Clause::By),
        ("with", Clause::With),
        ("id", Clause::Other),
        ("via", Clause::Other),
        ("for", Clause::Other),
    ]
    .into_iter()
    .find(|(k, _)| word.eq_ignore_ascii_case(k))
    .map(|(_, clause)| clause)
}

fn parse(value: &str) -> Parsed {
    // The lexer takes folding line breaks for white space, so only the date, kept as
    // text, needs unfolding.
    let lexemes = lex(value);
    // The date follows the last `;` outside comments (`(ORCPT <rfc822;a@b>)` holds one).
    let last_semicolon = lexemes.iter().rposition(|(l, _)| *l == Lexeme::Semicolon);
    let (clauses, date) = match last_semicolon {
        Some(i) => {
            let date = value.get(lexemes[i].1..).unwrap_or_default().trim();
            (&lexemes[..i], (!date.is_empty()).then(|| unfold(date)))
        }
        None => (&lexemes[..], None),
    };

    let mut parsed = Parsed {
        date,
        ..Parsed::default()
    };
    // The first word of the from clause is its host; the rest is junk some MTAs add.
    let mut from_word: Option<&str> = None;
    let mut from_comments: Vec<&str> = Vec::new();
    let mut with = String::new();
    // Clauses met so far, one bit each: a hop is parsed for every Received header of
    // every email, so it allocates only what it keeps.
    let mut seen = 0_u8;
    let bit = |clause: Clause| 1_u8 << (clause as u8);
    let mut clause = Clause::Before;
    for (lexeme, _) in clauses {
        match *lexeme {
            Lexeme::Word(word) => {
                if let Some(next) = clause_keyword(word) {
                    // A clause counts once: a second `from` or `by` is junk, not a new hop.
                    clause = if seen & bit(next) != 0 {
                        Clause::Other
                    } else {
                        seen |= bit(next);
                        next
                    };
                    continue;
                }
                match clause {
                    Clause::From => {
                        from_word.get_or_insert(word);
                    }
                    Clause::By if parsed.by_host.is_none() => {
                        parsed.by_host = Some(host_name(word));
                    }
                    Clause::With => {
                        if !with.is_empty() {
                            with.push(' ');
                        }
                        with.push_str(word);
                    }
                    _ => {}
                }
            }
            Lexeme::Comment(comment) if clause == Clause::From => from_comments.push(comment),
            _ => {}
        }
    }
    parsed.has_from = seen & bit(Clause::From) != 0;
    parsed.with = (!with.is_empty()).then_some(with);

    let word = from_word;
    parsed.reverse_dns = from_comments.first().and_then(|c| reverse_dns(c));
    parsed.from_ip = from_comments
        .iter()
        .find_map(|c| comment_ip(c))
        .or_else(|| word.and_then(literal_ip));
    parsed.from_host = match word {
        Some(w) if literal_ip(w).is_some() || w.eq_ignore_ascii_case("unknown") => {
            parsed.reverse_dns.clone()
        }
        Some(w) => Some(host_name(w)),
        None => None,
    };
    parsed
}

/// Unfolds a header text (RFC 5322 §2.2.3): the line breaks go, the white space after
/// them stays.
fn unfold(text: &str) -> String {
    text.replace(['\r', '\n'], "")
}

/// A host name as compared and shown: lowercased, one root dot dropped.
fn host_name(word: &str) -> String {
    word.strip_suffix('.').unwrap_or(word).to_lowercase()
}

/// The words of a comment, split at white space and at the punctuation MTAs put around
/// addresses (`[`, `]`, quotes, `<>`, `,`, `;`), with the client's HELO claims removed:
/// `helo=name`, `HELO name`, `"EHLO name"` name what the client said, not what the server saw.
fn observed_words(comment: &str) -> impl Iterator<Item = &str> {
    let mut words = comment
        .split(|c: char| {
            c.is_whitespace()
                || matches!(
                    c,
                    '[' | ']' | '(' | ')' | '"' | '\'' | '<' | '>' | ',' | ';'
                )
        })
        .filter(|w| !w.is_empty());
    std::iter::from_fn(move || {
        while let Some(word) = words.next() {
            // compared in place: lowercasing every word of every hop into a new string
            // cost more than the rest of the hop's parse
            let claim = |name: &str| {
                word.get(..name.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(name))
            };
            if ["helo", "ehlo", "helo=", "ehlo="]
                .iter()
                .any(|w| word.eq_ignore_ascii_case(w))
            {
                // the claimed name follows
                words.next();
            } else if !(claim("helo=") || claim("ehlo=")) {
                return Some(word);
            }
        }
        None
    })
}

/// The first IP the receiving MTA wrote in a `from` comment.
fn comment_ip(comment: &str) -> Option<IpAddr> {
    observed_words(comment).find_map(parse_ip)
}

/// The reverse-DNS name Postfix, Sendmail and Gmail write first in the `from` comment
/// (`(mail-sor-f41.google.com. [209.85.220.41])`); `unknown` and HELO names are not.
fn reverse_dns(comment: &str) -> Option<String> {
    let first = observed_words(comment).next()?;
    looks_like_host(first).then(|| host_name(first))
}

/// Whether a word is a dotted host name ending in an alphabetic label (so not an IP, a
/// version such as `TLSv1.3`, or an address).
fn looks_like_host(word: &str) -> bool {
    let word = word.strip_suffix('.').unwrap_or(word);
    let mut labels = word.split('.');
    let Some(last) = labels.next_back() else {
        return false;
    };
    word.contains('.')
        && last.starts_with(|c: char| c.is_alphabetic())
        && word.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_'))
        })
}

/// An address literal as the `from` word: `[192.0.2.1]`, `[IPv6:2001:db8::1]`, or bare.
fn literal_ip(word: &str) -> Option<IpAddr> {
    parse_ip(word.trim_start_matches('[').trim_end_matches(']'))
}

/// An IP written as MTAs write them: an `IPv6:` prefix, a root dot or a `:port` after an
/// IPv4 address are tolerated.
fn parse_ip(word: &str) -> Option<IpAddr> {
    let word = match word.get(..5) {
        Some(prefix) if prefix.eq_ignore_ascii_case("ipv6:") => &word[5..],
        _ => word,
    };
    let word = word.strip_suffix('.').unwrap_or(word);
    if let Ok(ip) = word.parse::<IpAddr>() {
        return Some(ip);
    }
    let (host, port) = word.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// Whether an address cannot be a public Internet sender: private, loopback, link-local,
/// shared (CGNAT), unique-local, unspecified, multicast, broadcast, reserved or
/// benchmarking ranges; IPv4-mapped IPv6 is judged as IPv4.
///
/// The documentation ranges (`192.0.2.0/24`, `198.51.100.0/24`, `203.0.113.0/24`,
/// `2001:db8::/32`) deliberately count as public: test fixtures use them as stand-ins
/// for public senders, and no real mail comes from them.
fn is_internal_ip(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_unspecified()
                || a == 0 // "this network", 0.0.0.0/8
                || (a == 100 && (b & 0xc0) == 64) // shared address space, 100.64.0.0/10
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
                || (a == 198 && (b & 0xfe) == 18) // benchmarking, 198.18.0.0/15
                || a >= 240 // reserved, 240.0.0.0/4
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || (s[0] & 0xffc0) == 0xfec0 // deprecated site-local, fec0::/10
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only, 100::/64
                || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking, 2001:2::/48
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(values: &[&str]) -> Vec<Hop> {
        let headers: Vec<_> = values
            .iter()
            .map(|v| RawHeader {
                name: "Received".to_owned(),
                value: (*v).to_owned(),
            })
            .collect();
        received_chain(&headers)
    }

    fn hop(value: &str) -> Hop {
        chain(&[value]).remove(0)
    }

    /// Postfix at lfdr.de, from a lore.kernel.org archive (IPv6 literal in the comment).
    #[test]
    fn postfix() {
        assert_eq!(
            hop(
                "from out1.vger.email (out1.vger.email [IPv6:2620:137:e000::1:20])\r\n\tby mail.lfdr.de (Postfix) with ESMTP id E76CC60E51C\r\n\tfor <lists+linux-doc@lfdr.de>; Wed, 26 Oct 2022 18:00:30 +0200 (CEST)"
            ),
            Hop {
                from_host: Some("out1.vger.email".to_owned()),
                from_ip: Some("2620:137:e000::1:20".to_owned()),
                by_host: Some("mail.lfdr.de".to_owned()),
                with: Some("ESMTP".to_owned()),
                date: Some("Wed, 26 Oct 2022 18:00:30 +0200 (CEST)".to_owned()),
                internal: false,
            }
        );
        let h = hop(
            "from mail.evil.example.com (unknown [203.0.113.5]) by mx.example.org (Postfix) with ESMTPS id 4Xy; Tue, 1 Oct 2024 10:00:00 +0000",
        );
        assert_eq!(h.from_host.as_deref(), Some("mail.evil.example.com"));
        assert_eq!(h.from_ip.as_deref(), Some("203.0.113.5"));
        assert!(!h.internal);
    }

    /// vger.kernel.org: a port after the bracketed IP, a quoted EHLO in the comment, and a
    /// `;` inside the ORCPT comment that must not be taken for the date separator.
    #[test]
    fn vger_port_ehlo_and_semicolon_in_comment() {
        assert_eq!(
            hop(
                "from lindbergh.monkeyblade.net ([23.128.96.19]:57886 \"EHLO\r\n        lindbergh.monkeyblade.net\" rhost-flags-OK-OK-OK-OK) by vger.kernel.org\r\n        with ESMTP id S234413AbiJZQAS (ORCPT\r\n        <rfc822;linux-doc@vger.kernel.org>); Wed, 26 Oct 2022 12:00:18 -0400"
            ),
            Hop {
                from_host: Some("lindbergh.monkeyblade.net".to_owned()),
                from_ip: Some("23.128.96.19".to_owned()),
                by_host: Some("vger.kernel.org".to_owned()),
                with: Some("ESMTP".to_owned()),
                date: Some("Wed, 26 Oct 2022 12:00:18 -0400".to_owned()),
                internal: false,
            }
        );
        let list = hop(
            "(majordomo@vger.kernel.org) by vger.kernel.org via listexpand\r\n        id S234403AbiJZQA0 (ORCPT <rfc822;lists+linux-doc@lfdr.de>);\r\n        Wed, 26 Oct 2022 12:00:26 -0400",
        );
        assert!(list.internal && list.from_host.is_none() && list.from_ip.is_none());
        assert_eq!(
            list.date.as_deref(),
            Some("Wed, 26 Oct 2022 12:00:26 -0400")
        );
    }

    /// Exim, from apache/spamassassin `t/data/nice/mime9` and `nice/002` (Apache-2.0).
    #[test]
    fn exim() {
        assert_eq!(
            hop(
                "from [205.188.139.136] (helo=imo-d20.mx.aol.com)\r\n\tby server11.arteryserver11.net with esmtp (Exim 4.24)\r\n\tid 1AtWef-0007Y2-44\r\n\tfor user@example.com; Wed, 18 Feb 2004 18:42:41 +0000"
            ),
            Hop {
                from_host: None,
                from_ip: Some("205.188.139.136".to_owned()),
                by_host: Some("server11.arteryserver11.net".to_owned()),
                with: Some("esmtp".to_owned()),
                date: Some("Wed, 18 Feb 2004 18:42:41 +0000".to_owned()),
                internal: false,
            }
        );
        // Local delivery: no peer at all.
        let local = hop(
            "from user by server11.arteryserver11.net with local-bsmtp (Exim 4.24)\r\n\tid 1AtWef-0007YH-Cj\r\n\tfor user@example.com; Wed, 18 Feb 2004 18:42:47 +0000",
        );
        assert!(local.internal);
        assert_eq!(local.from_host.as_deref(), Some("user"));
        // `helo=` names the loopback client's claim, not its address.
        let list = hop(
            "from localhost ([127.0.0.1] helo=usw-sf-list1.sourceforge.net)\r\n    by usw-sf-list1.sourceforge.net with esmtp (Exim 3.31-VA-mm2 #1 (Debian))\r\n    id 16BujB-0003YE-00; Thu, 06 Dec 2001 01:22:01 -0800",
        );
        assert_eq!(list.from_ip.as_deref(), Some("127.0.0.1"));
        assert!(list.internal);
    }

    /// Sendmail, from apache/spamassassin `t/data/nice/authres` (Apache-2.0).
    #[test]
    fn sendmail() {
        let h = hop(
            "from trna.ximian.com (IDENT:nobody@localhost [127.0.0.1]) by\r\n    trna.ximian.com (8.9.3/8.9.3) with ESMTP id SAA19408; Tue, 15 May 2001\r\n    18:26:07 -0400",
        );
        assert_eq!(h.from_host.as_deref(), Some("trna.ximian.com"));
        assert_eq!(h.from_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(h.by_host.as_deref(), Some("trna.ximian.com"));
        assert_eq!(
            h.date.as_deref(),
            Some("Tue, 15 May 2001    18:26:07 -0400")
        );
        assert!(h.internal);
        let local = hop(
            "(from jm@localhost) by dogma.slashnull.org (8.9.3/8.9.3) id\r\n    AAA30873 for jm@netnoteinc.com; Wed, 16 May 2001 00:40:33 +0100",
        );
        assert!(local.internal && local.from_ip.is_none());
    }

    /// qmail: the invocation line (`SpamAssassin` corpus) and an SMTP hop with a HELO comment.
    #[test]
    fn qmail() {
        let invoked = hop("(qmail 85589 invoked by uid 60001); 7 Feb 2010 22:02:38 -0000");
        assert!(invoked.internal);
        assert_eq!(invoked.date.as_deref(), Some("7 Feb 2010 22:02:38 -0000"));
        assert_eq!(invoked.by_host, None);
        let smtp = hop(
            "from unknown (HELO foo.example.net) (198.51.100.77) by mail.example.com with SMTP; 1 Oct 2024 10:00:00 -0000",
        );
        assert_eq!(smtp.from_host, None);
        assert_eq!(smtp.from_ip.as_deref(), Some("198.51.100.77"));
        assert!(!smtp.internal);
    }

    /// Gmail: the internal `by 2002:a05:...` hop, a submission hop whose HELO literal is
    /// private but whose observed IP is public (lore.kernel.org archives), and the inbound
    /// hop between two Google hosts (linux-mm at kvack.org).
    #[test]
    fn gmail() {
        assert_eq!(
            hop(
                "by 2002:a05:6000:4202:b0:429:f050:adbb with SMTP id\r\n ffacd0b85a97d-42b5935092dmr5177652f8f.26.1763171652356; \r\n Fri, 14 Nov 2025 17:54:12 -0800 (PST)"
            ),
            Hop {
                from_host: None,
                from_ip: None,
                by_host: Some("2002:a05:6000:4202:b0:429:f050:adbb".to_owned()),
                with: Some("SMTP".to_owned()),
                date: Some("Fri, 14 Nov 2025 17:54:12 -0800 (PST)".to_owned()),
                internal: true,
            }
        );
        let submission = hop(
            "from [192.168.10.48] ([176.206.119.13])\r\n by smtp.gmail.com with ESMTPSA id\r\n ffacd0b85a97d-42b53f206e2sm13085855f8f.41.2025.11.14.17.54.11\r\n for <qemu-devel@nongnu.org>\r\n (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\r\n Fri, 14 Nov 2025 17:54:11 -0800 (PST)",
        );
        assert_eq!(submission.from_host, None);
        assert_eq!(submission.from_ip.as_deref(), Some("176.206.119.13"));
        assert_eq!(submission.with.as_deref(), Some("ESMTPSA"));
        assert!(!submission.internal);
        // Google to Google: one mail system, so internal.
        let inbound = hop(
            "from mail-sor-f65.google.com (mail-sor-f65.google.com. [209.85.220.65])\r\n        by mx.google.com with SMTPS id v18sor3053564wrn.45.2019.02.09.04.06.36\r\n        for <linux-mm@kvack.org>\r\n        (Google Transport Security);\r\n        Sat, 09 Feb 2019 04:06:36 -0800 (PST)",
        );
        assert_eq!(
            inbound.from_host.as_deref(),
            Some("mail-sor-f65.google.com")
        );
        assert_eq!(inbound.from_ip.as_deref(), Some("209.85.220.65"));
        assert!(inbound.internal);
        let external = hop(
            "from mail.evil.com (203.0.113.5) by mx.google.com with ESMTPS id x; Tue, 1 Oct 2024 10:00:00 -0700 (PDT)",
        );
        assert!(!external.internal);
    }

    /// A Microsoft 365 inbound chain behind a Trend Micro gateway, from mailgun/flanker
    /// `tests/fixtures/messages/bounce_office365.eml` (Apache-2.0), quoted-printable
    /// removed: two Microsoft domains (`outlook.com`, `office365.com`) are one receiver.
    #[test]
    fn microsoft_365_chain_behind_a_gateway() {
        let hops = chain(&[
            "from VI1PR0601CA0032.eurprd06.prod.outlook.com\r\n (2603:10a6:800:1e::42) by DB5PR06MB1800.eurprd06.prod.outlook.com\r\n (2a01:111:e400:7905::18) with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P256) id 15.20.77.7; Fri, 13 Oct\r\n 2017 11:10:16 +0000",
            "from HE1EUR01FT040.eop-EUR01.prod.protection.outlook.com\r\n (2a01:111:f400:7e1f::206) by VI1PR0601CA0032.outlook.office365.com\r\n (2603:10a6:800:1e::42) with Microsoft SMTP Server (version=TLS1_2,\r\n cipher=TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P256) id 15.20.77.7 via Frontend\r\n Transport; Fri, 13 Oct 2017 11:10:15 +0000",
            "from ioutemea3.hes.trendmicro.eu (52.58.62.203) by\r\n HE1EUR01FT040.mail.protection.outlook.com (10.152.1.72) with Microsoft SMTP\r\n Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384_P384) id\r\n 15.20.77.10 via Frontend Transport; Fri, 13 Oct 2017 11:10:14 +0000",
            "from 209.61.154.103_hes.trendmicro.com (unknown [192.168.13.217])\r\n        by ioutemea3.hes.trendmicro.eu (Postfix) with SMTP id 749FD11200E\r\n        for <noname@example.com>; Fri, 13 Oct 2017 11:10:14 +0000 (UTC)",
            "from dfw-p103.ninomail.com (unknown [209.61.154.103])\r\n        by inpreemea2.hes.trendmicro.eu (Postfix) with ESMTPS id 2D9022EE05E\r\n        for <noname@example.com>; Fri, 13 Oct 2017 11:10:13 +0000 (UTC)",
            "by luna.mailgun.net with HTTP; Fri, 13 Oct 2017 11:10:11 +0000",
        ]);
        let internal: Vec<_> = hops.iter().map(|h| h.internal).collect();
        assert_eq!(internal, [true, true, false, true, false, true]);
        assert_eq!(
            hops[0].from_host.as_deref(),
            Some("vi1pr0601ca0032.eurprd06.prod.outlook.com")
        );
        assert_eq!(hops[0].from_ip.as_deref(), Some("2603:10a6:800:1e::42"));
        assert_eq!(hops[0].with.as_deref(), Some("Microsoft SMTP Server"));
        assert_eq!(
            hops[0].date.as_deref(),
            Some("Fri, 13 Oct 2017 11:10:16 +0000")
        );
        assert_eq!(
            hops[2].by_host.as_deref(),
            Some("he1eur01ft040.mail.protection.outlook.com")
        );
        assert_eq!(originating_ip(&hops), Some("52.58.62.203"));
    }

    /// The shapes the lead named: Microsoft 365's entry hop and internal IPv6 hops.
    #[test]
    fn microsoft_365_entry_hop() {
        let hops = chain(&[
            "from DM6PR11MB1234.namprd11.prod.outlook.com (2603:10b6:5:1b4::23) by DM6PR11MB5678.namprd11.prod.outlook.com (2603:10b6:5:1c0::44) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7918.24; Tue, 1 Oct 2024 10:00:02 +0000",
            "from mail-sor-f41.google.com (209.85.220.41) by BN8NAM12FT066.mail.protection.outlook.com (10.13.182.177) with Microsoft SMTP Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7918.13 via Frontend Transport; Tue, 1 Oct 2024 10:00:01 +0000",
        ]);
        assert!(hops[0].internal && !hops[1].internal);
        assert_eq!(originating_ip(&hops), Some("209.85.220.41"));
    }

    /// Yahoo's bullet relays (mailgun/flanker, Apache-2.0): bracketed literal words.
    #[test]
    fn yahoo_literal_words() {
        let hops = chain(&[
            "from [72.30.22.78] by nm3.bullet.mail.sp2.yahoo.com with NNFMP; 29 Jun 2012 12:06:38 -0000",
            "from [127.0.0.1] by omp1021.mail.sp2.yahoo.com with NNFMP; 29 Jun 2012 12:06:38 -0000",
        ]);
        assert_eq!(hops[0].from_ip.as_deref(), Some("72.30.22.78"));
        assert!(!hops[0].internal && hops[1].internal);
        assert_eq!(originating_ip(&hops), Some("72.30.22.78"));
    }

    #[test]
    fn internal_by_ip_external_by_ip() {
        let private = hop("from [10.0.0.5] by mx.example.com; Tue, 1 Oct 2024 10:00:00 +0000");
        assert!(private.internal);
        assert_eq!(private.from_ip.as_deref(), Some("10.0.0.5"));
        assert_eq!(private.with, None);
        let v6 = hop("from [IPv6:2001:DB8::1] (helo=relay.example.net) by mx.example.org");
        assert_eq!(v6.from_ip.as_deref(), Some("2001:db8::1"));
        assert!(
            !v6.internal,
            "documentation ranges stand in for public senders"
        );
        let mapped = hop("from x.example.net ([::ffff:10.1.2.3]) by mx.example.org");
        assert!(mapped.internal);
        assert_eq!(mapped.from_ip.as_deref(), Some("::ffff:10.1.2.3"));
    }

    #[test]
    fn ip_classes() {
        for ip in [
            "10.1.1.1",
            "172.16.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
            "2001:2::1",
            "::ffff:192.168.0.1",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(is_internal_ip(parsed), "{ip}");
        }
        for ip in [
            "209.85.220.41",
            "100.128.0.1",
            "100.63.255.255",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "2001:db8::1",
            "2603:10b6:5:1b4::23",
            "2a00:1450:4864:20::536",
            "198.20.0.1",
            "::ffff:8.8.8.8",
            "2002:a05:6000::1",
        ] {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(!is_internal_ip(parsed), "{ip}");
        }
    }

    #[test]
    fn a_forged_lower_hop_cannot_become_the_origin() {
        // The receiver's entry hop records no IP: nothing below it is trusted.
        let hops = chain(&[
            "from mail.evil.example by mx.example.org with ESMTP; Tue, 1 Oct 2024 10:00:00 +0000",
            "from trusted.example.com (trusted.example.com [198.51.100.9]) by mail.evil.example",
        ]);
        assert!(!hops[0].internal);
        assert_eq!(originating_ip(&hops), None);
        assert_eq!(originating_ip(&[]), None);
    }

    #[test]
    fn reverse_dns_beats_a_helo_claim_for_the_domain_test() {
        // The client HELOs as the receiver's own host; Postfix's reverse DNS tells the truth.
        let hops = chain(&[
            "from mx.google.com (mail.evil.example [203.0.113.66]) by mx.google.com with ESMTPS id y; Tue, 1 Oct 2024 10:00:00 -0700",
        ]);
        assert!(!hops[0].internal);
        assert_eq!(hops[0].from_host.as_deref(), Some("mx.google.com"));
        assert_eq!(originating_ip(&hops), Some("203.0.113.66"));
    }

    #[test]
    fn dateless_and_junk_values() {
        let h = hop("from a.example.com ([192.0.2.9]) by b.example.com with ESMTP");
        assert_eq!(h.date, None);
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.9"));
        let junk = hop("");
        assert!(junk.internal && junk.by_host.is_none() && junk.date.is_none());
        let h = hop("from from by by with with; ");
        assert_eq!(h.date, None);
        let _ = hop("from ) by ((((; ;;");
        let h = hop("from a.example.com (unclosed [192.0.2.9] by b.example.com; date");
        assert_eq!(h.from_ip.as_deref(), Some("192.0.2.9"));
        assert_eq!(h.by_host, None);
    }

    #[test]
    fn parse_ip_tolerates_mta_spellings() {
        for (word, ip) in [
            ("IPv6:2001:db8::1", "2001:db8::1"),
            ("ipv6:2001:DB8::1", "2001:db8::1"),
            ("192.0.2.1.", "192.0.2.1"),
            ("192.0.2.1:25", "192.0.2.1"),
        ] {
            assert_eq!(
                parse_ip(word).map(|i| i.to_string()).as_deref(),
                Some(ip),
                "{word}"
            );
        }
        for word in [
            "",
            "IPv6:",
            "1.2.3",
            "1.2.3.4:",
            "1.2.3.4:x",
            "é",
            "TLSv1.3",
            ":::",
        ] {
            assert_eq!(parse_ip(word), None, "{word}");
        }
    }

    #[test]
    fn hostile_values_never_panic() {
        const PIECES: [&str; 18] = [
            "from",
            "by",
            "with",
            "for",
            " ",
            "(",
            ")",
            "[",
            "]",
            ";",
            "\"",
            "\\",
            "192.0.2.1",
            "IPv6:",
            "::1",
            "helo=",
            "é",
            "a.example.com",
        ];
        for text in crate::extract::pseudo_random_texts(0x7ec3_17ed, &PIECES, 30, 2000) {
            let hops = chain(&[&text, &text]);
            let _ = originating_ip(&hops);
        }
    }
}
