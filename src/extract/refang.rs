//! Refanging: turns defanged indicators (`hxxp`, `[.]`, `[at]`) back into their live form.
//!
//! Analysts and threat-intel feeds defang indicators so mail clients do not link them; an
//! extractor that skips them misses exactly the indicators someone took care to report.

use std::borrow::Cow;

use super::find_byte;

/// Defanged schemes; they come out lowercase. The longer comes first: the first match wins.
const SCHEMES: [(&[u8], &str); 2] = [(b"hxxps", "https"), (b"hxxp", "http")];

/// Defang markers and their live form; letters match case-insensitively (`[DOT]`, `[AT]`).
const MARKERS: [(&[u8], &str); 7] = [
    (b"[.]", "."),
    (b"(.)", "."),
    (b"[dot]", "."),
    (b"[://]", "://"),
    (b"[:]", ":"),
    (b"[at]", "@"),
    (b"[@]", "@"),
];

/// Text with its defang markers replaced.
pub(super) struct Refanged<'a> {
    /// The live text; borrowed when nothing was defanged (the common case).
    pub text: Cow<'a, str>,
    /// Byte offsets in `text` of each `.` that replaced a defanged dot, in increasing order:
    /// the bare-domain rule only looks at words someone deliberately defanged.
    pub dot_marks: Vec<usize>,
}

/// Replaces every defang marker; allocates only if there is one.
pub(super) fn refang(text: &str) -> Refanged<'_> {
    let bytes = text.as_bytes();
    let mut live: Option<String> = None;
    let mut dot_marks = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    // `x` is far rarer in prose than the `h` of `hxxp`, so the scan keys on it
    while let Some(hit) = find_byte(bytes, i, may_start_marker) {
        let found = if bytes[hit] == b'x' || bytes[hit] == b'X' {
            (hit > copied)
                .then(|| marker_at(&SCHEMES, &bytes[hit - 1..]))
                .flatten()
                .map(|m| (hit - 1, m))
        } else {
            marker_at(&MARKERS, &bytes[hit..]).map(|m| (hit, m))
        };
        let Some((at, (len, replacement))) = found else {
            i = hit + 1;
            continue;
        };
        let out = live.get_or_insert_with(|| String::with_capacity(text.len()));
        // markers are ASCII, so `copied` and `at` are char boundaries
        out.push_str(&text[copied..at]);
        if replacement == "." {
            dot_marks.push(out.len());
        }
        out.push_str(replacement);
        copied = at + len;
        i = copied;
    }
    let text = match live {
        Some(mut out) => {
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        }
        None => Cow::Borrowed(text),
    };
    Refanged { text, dot_marks }
}

/// First byte of a bracket marker, or the `x` of `hxxp` (in any case).
#[allow(
    clippy::needless_bitwise_bool,
    reason = "branch-free, so that find_byte's block test vectorises"
)]
fn may_start_marker(b: u8) -> bool {
    (b == b'[') | (b == b'(') | (b | 0x20 == b'x')
}

fn marker_at(markers: &[(&[u8], &'static str)], rest: &[u8]) -> Option<(usize, &'static str)> {
    markers.iter().find_map(|&(marker, live)| {
        let head = rest.get(..marker.len())?;
        head.eq_ignore_ascii_case(marker)
            .then_some((marker.len(), live))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(text: &str) -> String {
        refang(text).text.into_owned()
    }

    #[test]
    fn schemes_in_any_case_become_lowercase_http() {
        assert_eq!(
            live("hxxp://a hXXp://b hxxps://c HXXPS://d"),
            "http://a http://b https://c https://d"
        );
    }

    #[test]
    fn bracketed_dots_colons_and_ats_are_replaced() {
        assert_eq!(
            live("evil[.]com evil(.)com evil[dot]com evil[DOT]com"),
            "evil.com evil.com evil.com evil.com"
        );
        assert_eq!(
            live("hxxp[:]//a[.]b hxxp[://]c[.]d"),
            "http://a.b http://c.d"
        );
        assert_eq!(
            live("bob[at]x[.]com bob[@]y[.]com bob[AT]z[.]com"),
            "bob@x.com bob@y.com bob@z.com"
        );
    }

    #[test]
    fn clean_text_is_borrowed_without_allocation() {
        let r = refang("nothing [here] (to) change, http://example.com/");
        assert!(matches!(r.text, Cow::Borrowed(_)));
        assert!(r.dot_marks.is_empty());
    }

    #[test]
    fn dot_marks_point_at_the_replaced_dots_in_the_live_text() {
        let r = refang("x hxxp://a[.]b c(.)d é[dot]f");
        assert_eq!(r.text, "x http://a.b c.d é.f");
        let dots: Vec<u8> = r.dot_marks.iter().map(|&i| r.text.as_bytes()[i]).collect();
        assert_eq!(dots, b"...");
        assert_eq!(r.dot_marks, [10, 14, 19]);
    }

    #[test]
    fn unicode_around_markers_survives() {
        assert_eq!(live("ünïcödé[.]例子 [.]"), "ünïcödé.例子 .");
    }

    #[test]
    fn near_misses_are_left_alone() {
        assert_eq!(
            live("[..] [ . ] (..) hxx hxxq [a t]"),
            "[..] [ . ] (..) hxx hxxq [a t]"
        );
    }
}
