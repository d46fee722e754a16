//! Candidate runs for the hash and IP scanners, found by hand instead of by regex.
//!
//! Each finder gives exactly the matches of the regex named in its doc (the tests check
//! them against it), but starts from the one byte every match must hold (`.`, `:`) or
//! looks at one byte in 32 (hex digests): the regex engine read every byte of every body
//! with a lazy DFA, a tenth of the extraction time, to find a few candidates per email.

use std::ops::Range;

use super::find_byte;

/// Shortest digest (MD5) in hex digits.
pub(super) const MIN_HEX_RUN: usize = 32;

/// Maximal runs of ASCII hex digits at least [`MIN_HEX_RUN`] long, in order: the matches
/// of `[0-9A-Fa-f]{32,}`.
///
/// A run that long covers one of every 32 consecutive positions, so only those are probed;
/// a probe on a hex digit is widened to its whole run.
pub(super) fn hex_runs(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut probe = MIN_HEX_RUN - 1;
    std::iter::from_fn(move || {
        while probe < bytes.len() {
            if !bytes[probe].is_ascii_hexdigit() {
                probe += MIN_HEX_RUN;
                continue;
            }
            let run = run_around(bytes, probe, u8::is_ascii_hexdigit);
            // the byte at run.end is not hex: the next run starts after it
            probe = run.end + MIN_HEX_RUN;
            if run.len() >= MIN_HEX_RUN {
                return Some(run);
            }
        }
        None
    })
}

/// Maximal runs of digits and dots, from their first digit, holding at least three dots in
/// that part: the matches of `[0-9]+(?:\.[0-9]*){3,}`.
pub(super) fn ipv4_runs(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(dot) = find_byte(bytes, from, |b| b == b'.') {
            let run = run_around(bytes, dot, |&b| b == b'.' || b.is_ascii_digit());
            from = run.end;
            let Some(first_digit) = bytes[run.clone()].iter().position(u8::is_ascii_digit) else {
                continue;
            };
            let start = run.start + first_digit;
            let mut dots = bytes[start..run.end].iter().filter(|&&b| b == b'.');
            if dots.nth(2).is_some() {
                return Some(start..run.end);
            }
        }
        None
    })
}

/// Maximal runs of hex digits, dots and colons that hold a colon: the matches of
/// `[0-9A-Fa-f.]*:[0-9A-Fa-f.:]*`.
pub(super) fn ipv6_runs(text: &str) -> impl Iterator<Item = Range<usize>> + '_ {
    let bytes = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        let colon = find_byte(bytes, from, |b| b == b':')?;
        let run = run_around(bytes, colon, |&b| {
            b == b':' || b == b'.' || b.is_ascii_hexdigit()
        });
        from = run.end;
        Some(run)
    })
}

/// The maximal run of bytes satisfying `member` around `i`, which must satisfy it. Only
/// ASCII bytes are members, so both ends are character boundaries.
fn run_around(bytes: &[u8], i: usize, member: impl Fn(&u8) -> bool) -> Range<usize> {
    let start = bytes[..i]
        .iter()
        .rposition(|b| !member(b))
        .map_or(0, |p| p + 1);
    let end = bytes[i..]
        .iter()
        .position(|b| !member(b))
        .map_or(bytes.len(), |p| i + p);
    start..end
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;

    /// Each finder against the regex it stands for, on texts mixed from pieces that make
    /// and break candidates.
    #[test]
    fn every_finder_matches_its_regex() {
        const PIECES: [&str; 24] = [
            "1",
            "25",
            "255",
            ".",
            "..",
            ":",
            "::",
            "a",
            "F",
            "g",
            "0123456789abcdef",
            "é",
            "例",
            " ",
            "\n",
            "x",
            "-",
            "_",
            "[",
            "]",
            "%",
            "/",
            "deadbeefDEADBEEF",
            "..1.2.3",
        ];
        let hex = Regex::new("[0-9A-Fa-f]{32,}").unwrap();
        let v4 = Regex::new(r"[0-9]+(?:\.[0-9]*){3,}").unwrap();
        let v6 = Regex::new("[0-9A-Fa-f.]*:[0-9A-Fa-f.:]*").unwrap();
        let ranges = |re: &Regex, text: &str| -> Vec<Range<usize>> {
            re.find_iter(text).map(|m| m.range()).collect()
        };
        for text in crate::extract::pseudo_random_texts(0x9e37_79b9_7f4a_7c15, &PIECES, 60, 20_000)
        {
            assert_eq!(
                hex_runs(&text).collect::<Vec<_>>(),
                ranges(&hex, &text),
                "{text:?}"
            );
            assert_eq!(
                ipv4_runs(&text).collect::<Vec<_>>(),
                ranges(&v4, &text),
                "{text:?}"
            );
            assert_eq!(
                ipv6_runs(&text).collect::<Vec<_>>(),
                ranges(&v6, &text),
                "{text:?}"
            );
        }
    }

    #[test]
    fn runs_at_both_ends_of_the_text_are_found() {
        fn spans(runs: impl Iterator<Item = Range<usize>>) -> Vec<(usize, usize)> {
            runs.map(|r| (r.start, r.end)).collect()
        }
        let md5 = "d41d8cd98f00b204e9800998ecf8427e";
        assert_eq!(spans(hex_runs(md5)), [(0, 32)]);
        assert_eq!(
            spans(hex_runs(&format!("{md5} x {md5}"))),
            [(0, 32), (35, 67)]
        );
        assert_eq!(hex_runs(&md5[1..]).count(), 0);
        assert_eq!(spans(ipv4_runs("1.2.3.4")), [(0, 7)]);
        assert_eq!(ipv4_runs(".1.2.3").count(), 0);
        assert_eq!(spans(ipv6_runs("::1 fe80::")), [(0, 3), (4, 10)]);
    }
}
