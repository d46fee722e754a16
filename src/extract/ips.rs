//! IP addresses: word-bounded IPv4 with valid octets, and IPv6 only as whole valid addresses.
//!
//! The reference's unanchored IPv4 regex turned `1234.5.6.7` into `234.5.6.7`, and its IPv6
//! regex emitted every capture group (`::ffff:192`, `d::` from `std::vector`). Here a regex
//! takes each run of address characters whole, the code checks what touches it at both
//! ends, and `std::net` parses it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    char_at, char_before, insert, is_word_char,
    runs::{ipv4_runs, ipv6_runs},
};

/// Longest run worth parsing as IPv6 (45 characters for the longest embedded-IPv4 form).
const MAX_IPV6_RUN: usize = 64;

/// Adds every IPv4 and IPv6 address in `text`.
pub(super) fn scan(text: &str, out: &mut BTreeSet<String>) {
    let v6_spans = scan_v6(text, out);
    scan_v4(text, &v6_spans, out);
}

/// Adds IPv6 addresses and returns their byte spans, inside which no IPv4 is reported (the
/// `192.168.1.1` of `::ffff:192.168.1.1` is part of the IPv6).
fn scan_v6(text: &str, out: &mut BTreeSet<String>) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    // canonical text is formatted here, so a repeated address costs no allocation
    let mut canonical = String::new();
    // maximal runs of hex digits, `.` and `:` holding a `:`
    for run in ipv6_runs(text) {
        if run.len() > MAX_IPV6_RUN {
            continue;
        }
        if let Some(addr) = v6_candidate(text, run.start, run.end) {
            canonical.clear();
            if write!(canonical, "{addr}").is_ok() {
                insert(out, &canonical);
            }
            spans.push((run.start, run.end));
        }
    }
    spans
}

/// Checks the run `text[start..end]` of hex digits, `:` and `.` as one IPv6 address.
fn v6_candidate(text: &str, start: usize, end: usize) -> Option<Ipv6Addr> {
    let bytes = text.as_bytes();
    let (mut s, mut e) = (start, end);
    let mut separated = false;
    if bytes[s..e].starts_with(b"6:") && s >= 3 && bytes[s - 3..s].eq_ignore_ascii_case(b"ipv") {
        // RFC 5321 address literal `[IPv6:2001:db8::1]`
        s += 2;
        separated = true;
    } else if bytes[s] == b':' && bytes.get(s + 1) != Some(&b':') {
        // a lone leading colon separates a label: "ip:2001:db8::1"; "::" belongs to the address
        s += 1;
        separated = true;
    }
    while e > s && bytes[e - 1] == b'.' {
        e -= 1;
    }
    if e > s + 1 && bytes[e - 1] == b':' && bytes[e - 2] != b':' {
        e -= 1;
    }
    if !separated && char_before(text, start).is_some_and(is_word_char) {
        return None;
    }
    // a zone index ("fe80::1%eth0") is dropped; the boundary is checked after it
    let mut after = end;
    if e == end && bytes.get(end) == Some(&b'%') {
        let zone = bytes[end + 1..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
            .count();
        if zone > 0 {
            after = end + 1 + zone;
        }
    }
    if char_at(text, after).is_some_and(is_word_char) {
        return None;
    }
    let candidate = &text[s..e];
    if candidate.starts_with('.')
        || !candidate.bytes().any(|b| b.is_ascii_hexdigit())
        || is_mac_like(candidate)
    {
        return None;
    }
    candidate.parse().ok()
}

/// Eight groups of exactly two hex digits is a MAC/EUI-64, not an address someone wrote.
fn is_mac_like(candidate: &str) -> bool {
    !candidate.contains("::")
        && candidate.split(':').count() == 8
        && candidate.split(':').all(|g| g.len() == 2)
}

/// Adds dotted-quad IPv4 addresses that stand alone: not glued to a word, not part of a
/// longer dotted or numeric run, each octet 0-255 without leading zeros.
fn scan_v4(text: &str, v6_spans: &[(usize, usize)], out: &mut BTreeSet<String>) {
    // spans and candidates both come in text order: one cursor keeps the check linear
    let mut spans = v6_spans.iter().peekable();
    // runs of digits and `.` from a digit, with at least three dots: plain numbers and
    // versions, the common case, are never candidates
    for run in ipv4_runs(text) {
        let (start, end) = (run.start, run.end);
        while spans.next_if(|&&(_, span_end)| span_end <= start).is_some() {}
        if spans
            .peek()
            .is_some_and(|&&(span_start, _)| span_start <= start)
            || matches!(char_before(text, start), Some(c) if c == '.' || is_word_char(c))
            || char_at(text, end).is_some_and(is_word_char)
        {
            continue;
        }
        // trailing dots end a sentence; std rejects leading zeros ("010.1.1.1"), which some
        // tools read as octal
        let candidate = text[start..end].trim_end_matches('.');
        if candidate.parse::<Ipv4Addr>().is_ok() {
            insert(out, candidate);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(text: &str) -> Vec<String> {
        let mut out = BTreeSet::new();
        scan(text, &mut out);
        out.into_iter().collect()
    }

    #[test]
    fn standalone_ipv4_in_punctuation_is_found() {
        assert_eq!(ips("(10.1.2.3)"), ["10.1.2.3"]);
        assert_eq!(ips("ip=8.8.8.8,"), ["8.8.8.8"]);
        assert_eq!(ips("from 203.0.113.5."), ["203.0.113.5"]);
        assert_eq!(
            ips("[192.0.2.1]:25 and 198.51.100.0/24"),
            ["192.0.2.1", "198.51.100.0"]
        );
        assert_eq!(ips("IP:1.2.3.4"), ["1.2.3.4"]);
    }

    #[test]
    fn private_loopback_and_reserved_ipv4_are_kept() {
        assert_eq!(
            ips("10.0.0.1 127.0.0.1 0.0.0.0 255.255.255.255"),
            ["0.0.0.0", "10.0.0.1", "127.0.0.1", "255.255.255.255"]
        );
    }

    #[test]
    fn longer_dotted_runs_give_nothing() {
        // the reference gave 1.2.3.4 and 234.5.6.7 here
        assert!(ips("1.2.3.4.5").is_empty());
        assert!(ips("1234.5.6.7").is_empty());
        assert!(ips("1.2.3.45678").is_empty());
        assert!(ips("host.1.2.3.4").is_empty());
        assert!(ips("1.2.3.4.example.com").is_empty());
    }

    #[test]
    fn invalid_octets_give_nothing() {
        assert!(ips("192.168.0.300").is_empty());
        assert!(ips("010.1.1.1").is_empty());
        assert!(ips("1.2.3").is_empty());
        assert!(ips("1..2.3.4").is_empty());
    }

    #[test]
    fn ipv4_glued_to_letters_gives_nothing() {
        assert!(ips("v1.2.3.4").is_empty());
        assert!(ips("1.2.3.4a").is_empty());
        assert!(ips("x_1.2.3.4 é1.2.3.4").is_empty());
    }

    #[test]
    fn version_strings_and_dates_are_not_ips() {
        assert!(ips("version 2.4.1 on 2024.10.01 at 10:00:00").is_empty());
    }

    #[test]
    fn ipv6_is_emitted_in_canonical_form_so_spellings_collapse() {
        assert_eq!(ips("2001:DB8:0:0:0:0:0:1 and 2001:db8::1"), ["2001:db8::1"]);
        assert_eq!(
            ips("loopback ::1, all ::ffff:0:0 zero fe80::"),
            ["::1", "::ffff:0.0.0.0", "fe80::"]
        );
    }

    #[test]
    fn embedded_ipv4_stays_inside_its_ipv6() {
        // the reference gave "::ffff:192" and "192.168.1.1"
        assert_eq!(ips("::ffff:192.168.1.1"), ["::ffff:192.168.1.1"]);
        assert_eq!(
            ips("[::ffff:192.168.1.1] then 10.0.0.1"),
            ["10.0.0.1", "::ffff:192.168.1.1"]
        );
    }

    #[test]
    fn zone_index_is_dropped() {
        assert_eq!(ips("fe80::1%eth0"), ["fe80::1"]);
        assert_eq!(ips("(fe80::abcd%25)"), ["fe80::abcd"]);
    }

    #[test]
    fn code_and_words_with_double_colons_give_nothing() {
        assert!(ips("std::vector").is_empty());
        assert!(ips("xa::b").is_empty());
        assert!(ips("Foo::Bar Acme::Bad dead::beefy").is_empty());
        assert!(ips("Home :: Products :: Deals").is_empty());
    }

    #[test]
    fn partial_or_invalid_ipv6_gives_nothing() {
        assert!(ips("2001:db8:::1 1:2:3:4:5:6:7:8:9 12345::1 ::ffff:192.168.1.300").is_empty());
    }

    #[test]
    fn mac_addresses_and_times_are_not_ipv6() {
        assert!(ips("00:11:22:33:44:55").is_empty());
        assert!(ips("00:11:22:33:44:55:66:77").is_empty());
        assert!(ips("AA:BB:CC:DD:EE:FF:00:11").is_empty());
        assert!(ips("12:30").is_empty());
        assert!(ips("at 12:30:45.").is_empty());
    }

    #[test]
    fn ipv6_literal_prefix_and_labels_are_separators() {
        assert_eq!(ips("[IPv6:2001:db8::1]"), ["2001:db8::1"]);
        assert_eq!(
            ips("ip:2001:db8::2 addr=2001:db8::3"),
            ["2001:db8::2", "2001:db8::3"]
        );
        assert_eq!(ips("peer 2001:db8::4: closed"), ["2001:db8::4"]);
    }

    #[test]
    fn ipv4_next_to_many_ipv6_is_still_found() {
        let text = "2001:db8::1 10.0.0.1 ::ffff:10.0.0.2 2001:db8::3 10.0.0.4 fe80::5 ".repeat(3);
        assert_eq!(
            ips(&text),
            [
                "10.0.0.1",
                "10.0.0.4",
                "2001:db8::1",
                "2001:db8::3",
                "::ffff:10.0.0.2",
                "fe80::5"
            ]
        );
    }

    #[test]
    fn ipv6_urls_yield_the_address() {
        assert_eq!(ips("http://[2001:db8::5]:8080/x"), ["2001:db8::5"]);
    }

    #[test]
    fn long_hex_colon_runs_are_skipped() {
        let run = "ab:".repeat(1000);
        assert!(ips(&run).is_empty());
    }
}
