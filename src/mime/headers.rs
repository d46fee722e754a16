//! Raw header fields and their RFC 2047 decoding, as the reference exposes them.

use std::borrow::Cow;

use mail_parser::{Header, HeaderValue, parsers::MessageStream};

/// One header field: the name as written and the raw value (leading white space and the
/// final line break removed, folding kept), as Python's `message.items()` gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawHeader {
    /// The field name exactly as spelled in the message.
    pub name: String,
    /// The raw field value, still folded and still RFC 2047-encoded.
    pub value: String,
}

/// The raw header fields of one part, in message order.
pub fn raw_headers(headers: &[Header<'_>], raw: &[u8]) -> Vec<RawHeader> {
    headers
        .iter()
        .filter_map(|h| {
            let field = raw.get(h.offset_field as usize..h.offset_start as usize)?;
            let value = raw.get(h.offset_start as usize..h.offset_end as usize)?;
            let name = field.strip_suffix(b":").unwrap_or(field).trim_ascii();
            // Lines mail-parser took for fields but that have no valid name are junk.
            if name.is_empty() || !name.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
                return None;
            }
            let value = value.trim_ascii_start();
            let value = trim_line_break(value);
            Some(RawHeader {
                name: bytes_to_text(name).into_owned(),
                value: bytes_to_text(value).into_owned(),
            })
        })
        .collect()
}

/// The fields of a header block written as text (an inline-forwarded message's, an
/// Outlook message's transport headers): its lines up to the first empty one, with any
/// line ends, read as a message's header block is.
pub fn header_block(text: &str) -> Vec<RawHeader> {
    let mut bytes = Vec::with_capacity(text.len() + 4);
    for line in text.lines().take_while(|line| !line.is_empty()) {
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\r\n");
    super::structure_parser()
        .parse_headers(&bytes)
        .map(|message| raw_headers(&message.root_part().headers, &bytes))
        .unwrap_or_default()
}

fn trim_line_break(mut value: &[u8]) -> &[u8] {
    while let [rest @ .., b'\r' | b'\n'] = value {
        value = rest;
    }
    value
}

/// The top-level header fields of a raw message, each decoded (RFC 2047, unfolded), as
/// a name -> value map: `get email`'s and `parse email`'s `data[0]` headers. For a name
/// that occurs more than once the last value wins, as in the reference.
pub fn decoded_header_map(raw: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let mut map = serde_json::Map::new();
    // The walk's parser: the same fields at the same offsets, without parsing every
    // Received hop into a value nothing here reads.
    if let Some(message) = super::structure_parser().parse_headers(raw) {
        for header in raw_headers(&message.root_part().headers, message.raw_message()) {
            map.insert(
                header.name,
                serde_json::Value::String(decode_words(&header.value)),
            );
        }
    }
    map
}

/// Text from bytes that should be UTF-8 but may be a legacy 8-bit charset.
///
/// Valid UTF-8 (RFC 6532 headers, modern bodies) is taken as is; anything else is read
/// as windows-1252, which maps every byte and is what mail clients assume for
/// undeclared 8-bit text. The reference app crashed on such mail (its poison message).
pub fn bytes_to_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
    }
}

/// Decode RFC 2047 encoded words in an unstructured or address header value, keeping
/// the text around them (`=?utf-8?Q?J=C3=B6rg?= <j@example.com>` gives
/// `Jörg <j@example.com>`; the reference dropped the address) and unfolding lines.
pub fn decode_words(value: &str) -> String {
    if !value.contains("=?") && !value.contains(['\r', '\n']) {
        return value.to_owned();
    }
    // mail-parser's unstructured-field parser reads up to the end of the field, so give
    // it the value with a terminating line break.
    let mut field = Vec::with_capacity(value.len() + 2);
    field.extend_from_slice(value.as_bytes());
    field.extend_from_slice(b"\r\n");
    match MessageStream::new(&field).parse_unstructured() {
        HeaderValue::Text(text) => text.into_owned(),
        _ => unfold(value),
    }
}

fn unfold(value: &str) -> String {
    value
        .split(['\r', '\n'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_words_and_keeps_surrounding_text() {
        assert_eq!(
            decode_words("=?utf-8?Q?J=C3=B6rg?= <jorg@example.com>"),
            "Jörg <jorg@example.com>"
        );
        assert_eq!(
            decode_words("Re: =?iso-8859-1?q?caf=E9?= menu"),
            "Re: café menu"
        );
        // Whitespace between adjacent encoded words is not part of the text.
        assert_eq!(
            decode_words("=?utf-8?B?SGVsbG8g?= =?utf-8?B?V8O2cmxk?="),
            "Hello Wörld"
        );
    }

    #[test]
    fn plain_values_pass_through_and_folds_unfold() {
        assert_eq!(
            decode_words("Alice <a@example.com>"),
            "Alice <a@example.com>"
        );
        assert_eq!(decode_words("a long\r\n subject"), "a long subject");
    }

    #[test]
    fn eight_bit_headers_fall_back_to_windows_1252() {
        assert_eq!(bytes_to_text(b"caf\xe9 \x80"), "café €");
        assert_eq!(bytes_to_text("café".as_bytes()), "café");
    }
}
