//! Trace headers: the IPs and host names of `Received`, and IP-valued headers such as
//! `X-Originating-IP`. The reference read no headers at all (§10.4 asks for these).

use super::domains::normalize_host;
use super::{Class, ExtractOptions, Indicators, ips};

/// The sending side of a `Received` header value (raw, maybe folded): IPs (v4 in
/// `[brackets]` or bare, v6 including the `IPv6:` prefix) and the host names that are valid
/// domains, of its `from` clause and that clause's comments (HELO name, reverse-DNS name).
///
/// The `by` host is the receiving machine: the next hop up names it again as its sender,
/// and for the receiver's own machines (the hops a triage marks internal) it is noise, not
/// an indicator of the sender. `with`, `id`, `via` and `for` and the date after `;` are
/// skipped too (RFC 5321 §4.4), so queue ids, cipher names, server versions (Exchange's
/// `id 15.20.7918.24`) and times never become indicators. Hash extraction never runs here.
pub fn scan_received_from(value: &str, opts: &ExtractOptions, out: &mut Indicators) {
    scan_from_clause(value, *opts, out);
}

/// Reads the `from` clause of a `Received` value and its comments.
fn scan_from_clause(value: &str, opts: ExtractOptions, out: &mut Indicators) {
    if !(opts.ips || opts.domains) {
        return;
    }
    let mut in_host_clause = false;
    let mut rest = value;
    loop {
        rest = rest.trim_start();
        match rest.chars().next() {
            None | Some(';') => break,
            Some('(') => {
                let (comment, after) = split_comment(rest);
                if in_host_clause {
                    scan_host_text(comment, opts, out);
                }
                rest = after;
            }
            Some(_) => {
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '(' || c == ';')
                    .unwrap_or(rest.len());
                let word = &rest[..end];
                rest = &rest[end..];
                match clause_keyword(word) {
                    Some(Clause::From) => in_host_clause = true,
                    Some(Clause::By | Clause::Other) => in_host_clause = false,
                    None if in_host_clause => scan_host_text(word, opts, out),
                    None => {}
                }
            }
        }
    }
}

/// A header whose value is an IP such as `X-Originating-IP: [203.0.113.9]` or `X-Sender-IP`.
pub fn scan_ip_header(value: &str, opts: &ExtractOptions, out: &mut Indicators) {
    if opts.ips {
        ips::scan(value, out);
    }
}

/// The clauses of a `Received` value (RFC 5321 §4.4) this scanner tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clause {
    From,
    By,
    /// `with`, `id`, `via`, `for`: never hosts.
    Other,
}

/// The clause a keyword starts, if `word` is one.
fn clause_keyword(word: &str) -> Option<Clause> {
    const OTHER: [&str; 4] = ["with", "id", "via", "for"];
    if word.eq_ignore_ascii_case("from") {
        Some(Clause::From)
    } else if word.eq_ignore_ascii_case("by") {
        Some(Clause::By)
    } else if OTHER.iter().any(|k| word.eq_ignore_ascii_case(k)) {
        Some(Clause::Other)
    } else {
        None
    }
}

/// Splits `(comment) rest` at the matching parenthesis, honouring nesting and `\` quoting
/// (RFC 5322 §3.2.2); an unclosed comment runs to the end.
fn split_comment(text: &str) -> (&str, &str) {
    let mut depth = 0_usize;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return (&text[1..i], &text[i + 1..]);
                }
            }
            _ => {}
        }
    }
    (&text[1..], "")
}

/// IPs anywhere in a host clause, and each delimited token that is a valid domain
/// (`helo=mail.example.com`, `mail-sor-f41.google.com.`); addresses are not hosts.
fn scan_host_text(text: &str, opts: ExtractOptions, out: &mut Indicators) {
    if opts.ips {
        ips::scan(text, out);
    }
    if opts.domains {
        scan_host_names(text, out);
    }
}

fn scan_host_names(text: &str, out: &mut Indicators) {
    let tokens = text.split(|c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '[' | ']' | '(' | ')' | '<' | '>' | '=' | ',' | ';' | '"' | '\''
            )
    });
    for token in tokens.filter(|t| !t.is_empty() && !t.contains('@')) {
        if let Some(domain) = normalize_host(token) {
            out.add(Class::Domain, &domain);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn received(value: &str) -> Indicators {
        let mut out = Indicators::default();
        scan_received_from(value, &ExtractOptions::ALL, &mut out);
        out
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn postfix_header_gives_the_sender_ip_and_host_not_the_receiver() {
        let out = received(
            "from mail.evil.example.com (unknown [203.0.113.5]) by mx.example.org (Postfix) \
             with ESMTPS id 4Xy; Tue, 1 Oct 2024 10:00:00 +0000",
        );
        assert_eq!(out.ips, set(&["203.0.113.5"]));
        assert_eq!(out.domains, set(&["mail.evil.example.com"]));
        assert!(out.hashes.is_empty() && out.urls.is_empty());
    }

    #[test]
    fn folded_header_with_ipv6_literal_and_helo() {
        let out = received(
            "from [IPv6:2001:db8::1] (helo=Relay.Example.NET)\r\n\tby mx.example.org with ESMTP id 1sZ9ab-000123-Ab\r\n\t; Tue, 1 Oct 2024 10:00:00 +0000",
        );
        assert_eq!(out.ips, set(&["2001:db8::1"]));
        assert_eq!(out.domains, set(&["relay.example.net"]));
    }

    #[test]
    fn qmail_style_helo_comments_are_read() {
        let out = received(
            "from unknown (HELO foo) (198.51.100.77) by mail.example.com with SMTP; 1 Oct 2024 10:00:00 -0000",
        );
        assert_eq!(out.ips, set(&["198.51.100.77"]));
        assert!(
            out.domains.is_empty(),
            "foo is no domain, mail.example.com the receiver"
        );
    }

    #[test]
    fn gmail_header_with_root_dots_and_a_hop_without_from() {
        let out = received(
            "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com \
             with SMTPS id a640c23a62f3a-a8d25d63b5esor1234567866b.12.2024.10.01.03.00.00",
        );
        assert_eq!(out.ips, set(&["209.85.220.41"]));
        assert_eq!(out.domains, set(&["mail-sor-f41.google.com"]));
        let out = received(
            "by 2002:a05:7300:478f:b0:12a:8a6e:d9f3 with SMTP id abc; Tue, 1 Oct 2024 03:00:00 -0700 (PDT)",
        );
        assert!(out.is_empty());
    }

    #[test]
    fn exchange_versions_ids_and_ciphers_are_not_indicators() {
        let out = received(
            "from DM6PR11MB1234.namprd11.prod.outlook.com (2603:10b6:5:1b4::23) by DM6PR11MB5678.namprd11.prod.outlook.com \
             (2603:10b6:5:1c0::44) with Microsoft SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) \
             id 14.3.123.3 via Frontend Transport; Tue, 1 Oct 2024 10:00:00 +0000",
        );
        assert_eq!(out.ips, set(&["2603:10b6:5:1b4::23"]));
        assert_eq!(
            out.domains,
            set(&["dm6pr11mb1234.namprd11.prod.outlook.com"])
        );
    }

    #[test]
    fn dates_and_hash_like_ids_give_nothing() {
        let out = received(
            "by mx.example.org with ESMTP id d41d8cd98f00b204e9800998ecf8427e for <bob@example.com>; Tue, 1 Oct 2024 10:00:00 +0000 (1.2.3.4)",
        );
        assert!(out.is_empty());
    }

    #[test]
    fn qmail_invocation_lines_have_no_host_clause() {
        let out =
            received("(qmail 12345 invoked from network 192.0.2.1); 1 Oct 2024 10:00:00 -0000");
        assert!(out.is_empty());
    }

    #[test]
    fn comment_words_that_are_not_domains_are_ignored() {
        let out = received(
            "from localhost (localhost [127.0.0.1]) (Authenticated sender: bob@example.com) \
             (using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)) by smtp.example.net (Postfix 3.5.6)",
        );
        assert_eq!(out.ips, set(&["127.0.0.1"]));
        assert!(out.domains.is_empty());
    }

    #[test]
    fn unbalanced_comments_do_not_panic() {
        let out = received("from a.example.com (unclosed [192.0.2.9] by b.example.com");
        assert_eq!(out.ips, set(&["192.0.2.9"]));
        // the unclosed comment runs to the end, so the receiver is read as part of it
        assert_eq!(out.domains, set(&["a.example.com", "b.example.com"]));
        assert!(received("from ) by ((((").is_empty());
    }

    #[test]
    fn received_honours_options() {
        let v = "from a.example.com ([192.0.2.9]) by b.example.com";
        let mut out = Indicators::default();
        scan_received_from(
            v,
            &ExtractOptions {
                ips: true,
                ..ExtractOptions::NONE
            },
            &mut out,
        );
        assert_eq!(out.ips, set(&["192.0.2.9"]));
        assert!(out.domains.is_empty());
        let mut out = Indicators::default();
        scan_received_from(
            v,
            &ExtractOptions {
                domains: true,
                ..ExtractOptions::NONE
            },
            &mut out,
        );
        assert!(out.ips.is_empty());
        assert_eq!(out.domains, set(&["a.example.com"]));
    }

    fn received_from(value: &str) -> Indicators {
        let mut out = Indicators::default();
        scan_received_from(value, &ExtractOptions::ALL, &mut out);
        out
    }

    #[test]
    fn from_only_scan_skips_the_receiving_host() {
        let out = received_from(
            "from mail.evil.example.com (unknown [203.0.113.5]) by mx.example.org (Postfix) \
             with ESMTPS id 4Xy; Tue, 1 Oct 2024 10:00:00 +0000",
        );
        assert_eq!(out.ips, set(&["203.0.113.5"]));
        assert_eq!(out.domains, set(&["mail.evil.example.com"]));
        // Microsoft 365's entry hop: the protection host and its 10.x address are the receiver.
        let out = received_from(
            "from mail-sor-f41.google.com (209.85.220.41) by\r\n BN8NAM12FT066.mail.protection.outlook.com (10.13.182.177) with Microsoft SMTP\r\n Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7918.13 via\r\n Frontend Transport; Tue, 1 Oct 2024 10:00:01 +0000",
        );
        assert_eq!(out.ips, set(&["209.85.220.41"]));
        assert_eq!(out.domains, set(&["mail-sor-f41.google.com"]));
    }

    #[test]
    fn from_only_scan_reads_helo_and_reverse_dns_comments() {
        let out = received_from(
            "from [IPv6:2001:db8::1] (helo=Relay.Example.NET)\r\n\tby mx.example.org with ESMTP id 1sZ9ab-000123-Ab\r\n\t; Tue, 1 Oct 2024 10:00:00 +0000",
        );
        assert_eq!(out.ips, set(&["2001:db8::1"]));
        assert_eq!(out.domains, set(&["relay.example.net"]));
        let out = received_from(
            "from mail-sor-f41.google.com (mail-sor-f41.google.com. [209.85.220.41]) by mx.google.com \
             with SMTPS id a640c23a62f3a-a8d25d63b5esor1234567866b.12.2024.10.01.03.00.00",
        );
        assert_eq!(out.ips, set(&["209.85.220.41"]));
        assert_eq!(out.domains, set(&["mail-sor-f41.google.com"]));
    }

    #[test]
    fn from_only_scan_of_hops_without_a_from_clause_is_empty() {
        assert!(
            received_from(
                "by 2002:a05:7300:478f:b0:12a:8a6e:d9f3 with SMTP id abc; Tue, 1 Oct 2024 03:00:00 -0700 (PDT)"
            )
            .is_empty()
        );
        assert!(
            received_from("(qmail 12345 invoked by uid 0); 1 Oct 2024 10:00:00 -0000").is_empty()
        );
        assert!(received_from("from ) by ((((").is_empty());
        let mut out = Indicators::default();
        scan_received_from(
            "from a.example.com ([192.0.2.9]) by b.example.com",
            &ExtractOptions::NONE,
            &mut out,
        );
        assert!(out.is_empty());
    }

    #[test]
    fn ip_headers_give_their_address() {
        for (value, ip) in [
            ("[203.0.113.9]", "203.0.113.9"),
            (" 198.51.100.1\r\n", "198.51.100.1"),
            ("2001:DB8::9", "2001:db8::9"),
        ] {
            let mut out = Indicators::default();
            scan_ip_header(value, &ExtractOptions::ALL, &mut out);
            assert_eq!(out.ips, set(&[ip]), "{value}");
        }
        let mut out = Indicators::default();
        scan_ip_header("[203.0.113.9]", &ExtractOptions::NONE, &mut out);
        assert!(out.is_empty());
    }
}
