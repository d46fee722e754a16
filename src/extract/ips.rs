//! IP addresses: word-bounded IPv4 with valid octets, and IPv6 only as whole valid addresses.
//!
//! The reference's unanchored IPv4 regex turned `1234.5.6.7` into `234.5.6.7`, and its IPv6
//! regex emitted every capture group (`::ffff:192`, `d::` from `std::vector`). Here a regex
//! takes each run of address characters whole, the code checks what touches it at both
//! ends, and `std::net` parses it. An IPv4 written inside a host name
//! (`53.206.178.68.host.secureserver.net`, `68.178.206.53.in-addr.arpa`) is taken too,
//! when the name around it is a real domain.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::{
    Class, Indicators, char_at, char_before,
    domains::{is_run_char, is_valid_domain, lowercase},
    is_word_char,
    runs::{ipv4_runs, ipv6_runs},
};

/// Longest run worth parsing as IPv6 (45 characters for the longest embedded-IPv4 form).
const MAX_IPV6_RUN: usize = 64;

/// Longest run of host-name characters checked as a name around an IPv4, in bytes (253
/// characters of up to four bytes); a longer one is no host name and is not lowercased.
const MAX_HOST_RUN: usize = 253 * 4;

/// Adds every IPv4 and IPv6 address in `text`.
pub(super) fn scan(text: &str, out: &mut Indicators) {
    let v6_spans = scan_v6(text, out);
    scan_v4(text, &v6_spans, out);
}

/// Adds IPv6 addresses and returns their byte spans, inside which no IPv4 is reported (the
/// `192.168.1.1` of `::ffff:192.168.1.1` is part of the IPv6).
fn scan_v6(text: &str, out: &mut Indicators) -> Vec<(usize, usize)> {
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
                out.add(Class::Ip, &canonical);
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
        || is_code_path_like(candidate)
    {
        return None;
    }
    candidate.parse().ok()
}

/// A C++ or Rust path made of hex letters (`a::b`, `ab::cd`, `dead::beef`, `::add`) rather
/// than an address: written with `::`, without a single decimal digit, and with at most two
/// groups. Paths touching any other letter (`std::vector`) are already glued to a word;
/// these are the all-hex ones that parse. Every compressed address in real use has a digit
/// (`::1`, `fe80::`, `2001:db8::`, `::ffff:1.2.3.4`), so only digit-free one- or two-group
/// spellings like `fe::ff` are lost; three groups (`dead:beef::cafe`) are kept, since a path
/// of three parts cannot parse (`a::b::c` has two `::`).
fn is_code_path_like(candidate: &str) -> bool {
    candidate.contains("::")
        && !candidate.bytes().any(|b| b.is_ascii_digit())
        && candidate.split(':').filter(|g| !g.is_empty()).count() <= 2
}

/// Eight groups of exactly two hex digits is a MAC/EUI-64, not an address someone wrote.
fn is_mac_like(candidate: &str) -> bool {
    !candidate.contains("::")
        && candidate.split(':').count() == 8
        && candidate.split(':').all(|g| g.len() == 2)
}

/// Adds dotted-quad IPv4 addresses that stand alone (not glued to a word, not part of a
/// longer dotted or numeric run) or that are four whole labels of a domain name
/// (see [`in_host_name`]); each octet 0-255 without leading zeros.
fn scan_v4(text: &str, v6_spans: &[(usize, usize)], out: &mut Indicators) {
    // spans and candidates both come in text order: one cursor keeps the check linear
    let mut spans = v6_spans.iter().peekable();
    let mut host = HostRun::default();
    // runs of digits and `.` from a digit, with at least three dots: plain numbers and
    // versions, the common case, are never candidates
    for run in ipv4_runs(text) {
        let (start, end) = (run.start, run.end);
        while spans.next_if(|&&(_, span_end)| span_end <= start).is_some() {}
        if spans
            .peek()
            .is_some_and(|&&(span_start, _)| span_start <= start)
        {
            continue;
        }
        let before = char_before(text, start);
        let after = char_at(text, end);
        // digits glued to a word (`v1.2.3.4`, `1.2.3.4a`, `ns1.2.3.4.5`) are part of that
        // word: the run is not a whole number of octets
        if before.is_some_and(is_word_char)
            || (after.is_some_and(is_word_char) && !text[..end].ends_with('.'))
        {
            continue;
        }
        // std rejects leading zeros ("010.1.1.1"), which some tools read as octal
        let candidate = if before == Some('.') || after.is_some_and(is_word_char) {
            // next to a host-name label: four whole labels (after a dot or at the start of
            // the name, not `a-1.2.3.4.example.com`), then one dot and a label from a letter
            let Some(quad) = text[start..end].strip_suffix('.') else {
                continue;
            };
            let whole_labels = before == Some('.') || !before.is_some_and(is_run_char);
            if !whole_labels
                || !after.is_some_and(char::is_alphabetic)
                || !host.is_domain(text, start, end)
            {
                continue;
            }
            quad
        } else {
            // trailing dots end a sentence
            text[start..end].trim_end_matches('.')
        };
        if candidate.parse::<Ipv4Addr>().is_ok() {
            out.add(Class::Ip, candidate);
        }
    }
}

/// The run of host-name characters around the last IPv4 candidate that was checked inside
/// a name, with the verdict. Candidates come in text order and a name holds several of them
/// (`a.1.2.3.4.b.5.6.7.8.example.com`), so each run is found and checked once: the scan
/// stays linear however many candidates one long run holds.
#[derive(Default)]
struct HostRun {
    start: usize,
    end: usize,
    is_domain: bool,
}

impl HostRun {
    /// Whether the digits-and-dots run `text[start..end]` sits in a domain name: see
    /// [`in_host_name`].
    fn is_domain(&mut self, text: &str, start: usize, end: usize) -> bool {
        if !(self.start..self.end).contains(&start) {
            self.start = text[..start]
                .rfind(|c: char| !is_run_char(c))
                .map_or(0, |i| {
                    i + text[i..].chars().next().map_or(1, char::len_utf8)
                });
            self.end = text[end..]
                .find(|c: char| !is_run_char(c))
                .map_or(text.len(), |i| end + i);
            self.is_domain = in_host_name(&text[self.start..self.end]);
        }
        self.is_domain
    }
}

/// Whether a run of host-name characters that holds an IPv4 followed by a label is a
/// domain: hosting providers and reverse DNS name hosts after their address
/// (`53.206.178.68.host.secureserver.net`, `static.1.2.3.4.clients.your-server.de`,
/// `68.178.206.53.in-addr.arpa`), and such a name is evidence of the address.
///
/// The whole name must be a valid domain (well-formed labels, a public suffix), not only
/// hold a letter label: that keeps out file names that end in a version
/// (`setup-1.0.0.1.exe`, `pkg.1.2.3.4.tar.gz`), whose extension is no suffix. A label is
/// required after the address, since no domain ends in a number: `host.1.2.3.4` and
/// `iso.3.6.1.2` are a word and a number, not a name.
fn in_host_name(run: &str) -> bool {
    // a sentence may end right after the name; a root dot may too
    let name = run.trim_end_matches('.');
    name.len() <= MAX_HOST_RUN && is_valid_domain(&lowercase(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(text: &str) -> Vec<String> {
        let mut out = Indicators::default();
        scan(text, &mut out);
        out.ips.into_iter().collect()
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
        assert!(ips("1.2.3.4.5.6").is_empty());
        assert!(ips("oid 1.3.6.1.4.1.311.20.2.3").is_empty());
        assert!(ips("1234.5.6.7").is_empty());
        assert!(ips("1.2.3.45678").is_empty());
        assert!(ips("host.1.2.3.4").is_empty());
        // more numbers next to a name are not four octets
        assert!(ips("1.2.3.4.5.example.com x.1.2.3.4.5 x.0.1.2.3.4.example.com").is_empty());
    }

    #[test]
    fn ipv4_labels_of_a_domain_name_are_an_ip() {
        assert_eq!(
            ips("http://53.206.178.68.host.secureserver.net/wp-admin/x.php"),
            ["53.206.178.68"]
        );
        assert_eq!(ips("x.53.206.178.68.host.example.net"), ["53.206.178.68"]);
        assert_eq!(ips("1.2.3.4.example.com"), ["1.2.3.4"]);
        // reverse DNS gives the address as written
        assert_eq!(ips("PTR 68.178.206.53.in-addr.arpa."), ["68.178.206.53"]);
        assert_eq!(
            ips("from static.10.1.2.3.Clients.Your-Server.DE (helo)"),
            ["10.1.2.3"]
        );
        // one name holding two addresses gives both
        assert_eq!(
            ips("a.1.2.3.4.b.5.6.7.8.example.com"),
            ["1.2.3.4", "5.6.7.8"]
        );
    }

    #[test]
    fn ipv4_next_to_words_that_make_no_domain_gives_nothing() {
        // no public suffix after: a file name with a version, an internal name
        assert!(ips("setup-1.0.0.1.exe pkg.1.2.3.4.tar.gz 1.2.3.4.example.local").is_empty());
        // no label after: a word and a number (OIDs, properties), not a name
        assert!(ips("iso.3.6.1.2 server.10.0.0.1").is_empty());
        // digits glued to a label are part of it, not an octet
        assert!(ips("a-1.2.3.4.example.com x1.53.206.178.68.host.example.net").is_empty());
        assert!(
            ips("1.2.3.4._tcp.example.com 1.2.3.4..example.com .1.2.3.4.example.com").is_empty()
        );
        assert!(ips("bad_host.1.2.3.4.example.com").is_empty());
        // only dotted addresses count
        assert!(ips("ip-10-1-2-3.ec2.internal ec2-1-2-3-4.compute.amazonaws.com").is_empty());
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
        // all-hex paths parse as addresses: no digit and two groups at most make them code
        assert!(ips("a::b ab::cd be::ef cafe::babe add::f Foo::bar::baz").is_empty());
        assert!(ips("fn dead::beef() { ::add(1); Ab::Cd; fe:: }").is_empty());
    }

    #[test]
    fn compressed_addresses_with_a_digit_or_three_groups_are_kept() {
        assert_eq!(
            ips("fe80::1 ::1 2001:db8:: ::ffff:1.2.3.4 fe80::abcd ::a1 dead:beef::cafe"),
            [
                "2001:db8::",
                "::1",
                "::a1",
                "::ffff:1.2.3.4",
                "dead:beef::cafe",
                "fe80::1",
                "fe80::abcd"
            ]
        );
        // a full address needs no digit
        assert_eq!(
            ips("dead:beef:cafe:babe:dead:beef:cafe:babe"),
            ["dead:beef:cafe:babe:dead:beef:cafe:babe"]
        );
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
