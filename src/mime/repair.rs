//! Repairs of the root header block that mail-parser is too lenient to make itself.
//!
//! mail-parser accepts any text before a colon as a header name, so a log file becomes a
//! header `2024-05-17 08` and a message whose body follows its headers without a blank
//! line loses that body to fake headers. Python's parser (which the reference app used)
//! ends the header block at the first line that is not a header field; this does the
//! same by inserting the missing blank line before mail-parser sees the bytes.

use std::borrow::Cow;

/// The bytes to parse (repaired when needed) and a warning saying what was repaired.
pub fn repair_header_block(raw: &[u8]) -> (Cow<'_, [u8]>, Option<String>) {
    let mut offset = 0;
    let mut start = 0;
    let mut line_number = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        line_number += 1;
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let first = offset == start;
        if first && line_number == 1 && content.starts_with(b"From ") {
            // An mbox separator line, not part of the message.
            start = offset + line.len();
        } else if content.is_empty() {
            return (Cow::Borrowed(&raw[start..]), None);
        } else if !(is_field(content) || (!first && matches!(content[0], b' ' | b'\t'))) {
            let mut repaired = Vec::with_capacity(raw.len() - start + 2);
            repaired.extend_from_slice(&raw[start..offset]);
            repaired.extend_from_slice(b"\r\n");
            repaired.extend_from_slice(&raw[offset..]);
            let warning = if offset == start {
                "no header block found; the whole input is treated as the body".to_owned()
            } else {
                format!(
                    "header block ended without a blank line at line {line_number}; the rest is read as the body"
                )
            };
            return (Cow::Owned(repaired), Some(warning));
        }
        offset += line.len();
    }
    (Cow::Borrowed(&raw[start..]), None)
}

/// When the root header block has more than one `Content-Type`, the bytes to read the
/// MIME structure from, with every later one renamed so the first one counts.
///
/// mail-parser takes the last; Python (the reference) and most clients take the first,
/// and a phish that hides an attachment behind a second header should not win.
pub fn first_content_type_wins(prepared: &[u8]) -> Option<Vec<u8>> {
    let mut seen = false;
    let mut later = Vec::new();
    let mut offset = 0;
    for line in prepared.split_inclusive(|&b| b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        if content.strip_suffix(b"\r").unwrap_or(content).is_empty() {
            break;
        }
        let name_end = content.iter().position(|&b| b == b':').unwrap_or(0);
        if content[..name_end]
            .trim_ascii_end()
            .eq_ignore_ascii_case(b"content-type")
        {
            if seen {
                later.push(offset);
            }
            seen = true;
        }
        offset += line.len();
    }
    if later.is_empty() {
        return None;
    }
    let mut structure = prepared.to_vec();
    for at in later {
        // Same length, so no offset moves: "Content-Type" becomes "X-Ignored-CT".
        structure[at..at + 12].copy_from_slice(b"X-Ignored-CT");
    }
    Some(structure)
}

/// `name: value` with a name of printable ASCII (RFC 5322 ftext; white space before the
/// colon is tolerated as the obsolete syntax allows).
pub fn is_field(line: &[u8]) -> bool {
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let name = line[..colon].trim_ascii_end();
    !name.is_empty() && name.iter().all(|&b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_blocks_are_borrowed_untouched() {
        let raw = b"From: a@example.com\r\nSubject : obsolete spacing\r\n folded\r\n\r\nbody";
        let (fixed, warning) = repair_header_block(raw);
        assert!(matches!(fixed, Cow::Borrowed(_)));
        assert_eq!(fixed.as_ref(), raw);
        assert!(warning.is_none());
    }

    #[test]
    fn body_without_blank_line_starts_at_the_first_non_header_line() {
        let raw =
            b"From: a@example.com\r\nSubject: x\r\nHello Bob, see https://example.com/x\r\nbye\r\n";
        let (fixed, warning) = repair_header_block(raw);
        assert_eq!(fixed.as_ref(), &b"From: a@example.com\r\nSubject: x\r\n\r\nHello Bob, see https://example.com/x\r\nbye\r\n"[..]);
        assert!(warning.unwrap().contains("line 3"));
    }

    #[test]
    fn text_without_headers_is_all_body() {
        let raw = b"2024-05-17 08:00:01 INFO started\nmore\n";
        let (fixed, warning) = repair_header_block(raw);
        assert_eq!(
            fixed.as_ref(),
            &b"\r\n2024-05-17 08:00:01 INFO started\nmore\n"[..]
        );
        assert!(warning.unwrap().starts_with("no header block"));
    }

    #[test]
    fn later_content_types_are_ignored() {
        let raw = b"Content-Type: multipart/mixed; boundary=x\r\nContent-type: text/plain\r\n\r\nContent-Type: in body\r\n";
        let structure = first_content_type_wins(raw).unwrap();
        assert_eq!(
            structure,
            b"Content-Type: multipart/mixed; boundary=x\r\nX-Ignored-CT: text/plain\r\n\r\nContent-Type: in body\r\n"
        );
        assert!(
            first_content_type_wins(b"Content-Type: text/plain\r\n\r\nContent-Type: x\r\n")
                .is_none()
        );
    }

    #[test]
    fn mbox_from_line_is_skipped() {
        let raw =
            b"From a@example.com Fri May 17 09:20:00 2024\r\nFrom: a@example.com\r\n\r\nbody\r\n";
        let (fixed, warning) = repair_header_block(raw);
        assert_eq!(fixed.as_ref(), &b"From: a@example.com\r\n\r\nbody\r\n"[..]);
        assert!(warning.is_none());
    }
}
