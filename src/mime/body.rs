//! Transfer- and charset-decoding of leaf parts, with fallbacks for mislabelled mail.

use std::borrow::Cow;

use mail_parser::{
    Encoding, MessagePart, MimeHeaders, PartType,
    decoders::{
        base64::base64_decode, charsets::map::charset_decoder,
        quoted_printable::quoted_printable_decode,
    },
};

use super::headers::bytes_to_text;

/// The part's content after transfer decoding, as the sender's bytes (not re-encoded).
///
/// mail-parser hands text parts back already converted to UTF-8; attachments must keep
/// their original bytes so the vault hashes match the file the sender attached.
pub fn transfer_decoded<'a>(part: &'a MessagePart<'_>, raw: &'a [u8]) -> Cow<'a, [u8]> {
    if let Some(fallback) = fallback_encoding(part) {
        let encoded = raw_body(part, raw);
        let decoded = match fallback {
            Fallback::QuotedPrintable => quoted_printable_decode(encoded),
            Fallback::Uuencode => uudecode(encoded),
            Fallback::LenientBase64 => lenient_base64(encoded),
        };
        return decoded.map_or(Cow::Borrowed(encoded), Cow::Owned);
    }
    match &part.body {
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Cow::Borrowed(bytes.as_ref()),
        PartType::Text(_) | PartType::Html(_) => {
            let encoded = raw_body(part, raw);
            let decoded = match part.encoding {
                Encoding::Base64 => base64_decode(encoded),
                Encoding::QuotedPrintable => quoted_printable_decode(encoded),
                Encoding::None => None,
            };
            decoded.map_or(Cow::Borrowed(encoded), Cow::Owned)
        }
        PartType::Message(_) | PartType::Multipart(_) => Cow::Borrowed(raw_body(part, raw)),
    }
}

/// The raw (still transfer-encoded) body bytes of a part.
pub fn raw_body<'a>(part: &MessagePart<'_>, raw: &'a [u8]) -> &'a [u8] {
    let start = (part.offset_body as usize).min(raw.len());
    let end = (part.offset_end as usize).clamp(start, raw.len());
    &raw[start..end]
}

/// The text of a body part, honouring its declared charset and falling back when the
/// declaration is missing or wrong.
///
/// mail-parser decodes the declared charset (legacy CJK included, via `full_encoding`).
/// Where the declaration is absent, ASCII (8-bit bytes are then not ASCII at all),
/// UTF-8 with invalid bytes, or unknown, the bytes are re-read: UTF-8 if valid, else
/// windows-1252. Pure ASCII text, the common case, is never decoded twice.
pub fn body_text<'a>(part: &'a MessagePart<'_>, raw: &[u8]) -> Cow<'a, str> {
    let decoded: Cow<'a, str> = match &part.body {
        PartType::Text(text) | PartType::Html(text) => Cow::Borrowed(text.as_ref()),
        PartType::Binary(_) | PartType::InlineBinary(_) => {
            return Cow::Owned(bytes_to_text(&transfer_decoded(part, raw)).into_owned());
        }
        PartType::Message(_) | PartType::Multipart(_) => return Cow::Borrowed(""),
    };
    let charset = part.content_type().and_then(|ct| ct.attribute("charset"));
    let real_decoder = charset.and_then(|c| real_charset_decoder(c));
    if fallback_encoding(part).is_some() {
        let bytes = transfer_decoded(part, raw);
        return Cow::Owned(match real_decoder {
            Some(decode) => decode(&bytes),
            None => bytes_to_text(&bytes).into_owned(),
        });
    }
    let utf8_declared =
        charset.is_some_and(|c| matches!(c.trim().to_ascii_lowercase().as_str(), "utf-8" | "utf8"));
    if decoded.is_ascii()
        || real_decoder.is_some()
        || (utf8_declared && !decoded.contains('\u{FFFD}'))
    {
        return decoded;
    }
    Cow::Owned(bytes_to_text(&transfer_decoded(part, raw)).into_owned())
}

/// What our decoding repaired in this part, for the container's parse warnings.
pub fn repair_note(part: &MessagePart<'_>) -> Option<&'static str> {
    match fallback_encoding(part)? {
        Fallback::QuotedPrintable => Some("misspelled quoted-printable transfer encoding decoded"),
        Fallback::Uuencode => Some("uuencoded content decoded"),
        Fallback::LenientBase64 => {
            Some("broken base64 decoded leniently (invalid characters skipped)")
        }
    }
}

/// A decoder for a declared charset that is neither ASCII nor UTF-8 and that we know;
/// for those, replacement characters are the sender's broken bytes, not our guess.
fn real_charset_decoder(charset: &str) -> Option<mail_parser::decoders::charsets::DecoderFnc> {
    let charset = charset.trim().to_ascii_lowercase();
    let generic = matches!(
        charset.as_str(),
        "us-ascii" | "ascii" | "utf-8" | "utf8" | "unicode-1-1-utf-8" | "x-unknown" | "unknown"
    );
    if generic {
        None
    } else {
        charset_decoder(charset.as_bytes())
    }
}

/// Transfer encodings mail-parser leaves undecoded but mail in the wild uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fallback {
    /// `quoted printable`, `Quoted_Printable` and similar misspellings.
    QuotedPrintable,
    /// `x-uuencode` and its aliases, from old gateways.
    Uuencode,
    /// base64 that mail-parser gave up on (invalid characters, a cut-off part).
    LenientBase64,
}

fn fallback_encoding(part: &MessagePart<'_>) -> Option<Fallback> {
    if part.encoding != Encoding::None {
        return None;
    }
    let cte: String = part
        .content_transfer_encoding()?
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-' && *c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    match cte.as_str() {
        // mail-parser falls back to no encoding when base64 does not decode cleanly.
        "base64" => Some(Fallback::LenientBase64),
        "quotedprintable" => Some(Fallback::QuotedPrintable),
        "xuuencode" | "uuencode" | "xuue" | "uue" => Some(Fallback::Uuencode),
        _ => None,
    }
}

/// Decode base64 as mail clients do with damaged input: skip characters outside the
/// alphabet and padding, and decode what is there (a lone trailing character is dropped).
fn lenient_base64(input: &[u8]) -> Option<Vec<u8>> {
    use base64::{
        Engine as _, alphabet,
        engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig},
    };
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let mut clean: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
        .collect();
    if clean.len() % 4 == 1 {
        clean.pop();
    }
    LENIENT.decode(&clean).ok()
}

/// Decode the first uuencoded file in `input` (`begin <mode> <name>` ... `end`).
fn uudecode(input: &[u8]) -> Option<Vec<u8>> {
    let mut lines = input.split(|&b| b == b'\n').map(<[u8]>::trim_ascii_end);
    lines.find(|line| line.starts_with(b"begin "))?;
    let mut out = Vec::new();
    for line in lines {
        if line == b"end" {
            return Some(out);
        }
        let Some((&count, data)) = line.split_first() else {
            continue;
        };
        let count = usize::from(count.wrapping_sub(b' ') & 0x3f);
        if count == 0 {
            continue;
        }
        let sextet = |b: u8| b.wrapping_sub(b' ') & 0x3f;
        let mut decoded = Vec::with_capacity(count + 2);
        for chunk in data.chunks(4) {
            let c: Vec<u8> = (0..4)
                .map(|i| sextet(chunk.get(i).copied().unwrap_or(b'`')))
                .collect();
            decoded.push((c[0] << 2) | (c[1] >> 4));
            decoded.push((c[1] << 4) | (c[2] >> 2));
            decoded.push((c[2] << 6) | c[3]);
        }
        decoded.truncate(count);
        out.extend_from_slice(&decoded);
    }
    // No `end` line: keep what was decoded rather than nothing.
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uudecodes_a_file() {
        // `printf 'Cat' | uuencode x` gives this body.
        let encoded = b"begin 644 x\n#0V%T\n`\nend\n";
        assert_eq!(uudecode(encoded).as_deref(), Some(&b"Cat"[..]));
        assert_eq!(uudecode(b"no begin line here\n"), None);
    }

    #[test]
    fn broken_base64_is_decoded_leniently() {
        assert_eq!(
            lenient_base64(b"SGVs!!bG8g\r\nV29y*bGQ").as_deref(),
            Some(&b"Hello World"[..])
        );
        assert_eq!(
            lenient_base64(b"SGVsbG8=\r\n").as_deref(),
            Some(&b"Hello"[..])
        );
        // A cut-off final group keeps the bytes it completes.
        assert_eq!(
            lenient_base64(b"SGVsbG8gV").as_deref(),
            Some(&b"Hello "[..])
        );
    }

    #[test]
    fn ascii_label_on_utf8_body_reads_utf8() {
        let raw = "From: a@example.com\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 8bit\r\n\r\nhttps://b\u{fc}cher.example.org/\r\n";
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let text = body_text(message.root_part(), message.raw_message());
        assert_eq!(text.trim(), "https://bücher.example.org/");
    }

    #[test]
    fn misspelled_quoted_printable_is_decoded() {
        let raw = b"From: a@example.com\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted printable\r\n\r\nid=3D42 caf=C3=A9\r\n";
        let message = mail_parser::MessageParser::default()
            .parse(&raw[..])
            .unwrap();
        let part = message.root_part();
        assert_eq!(body_text(part, message.raw_message()).trim(), "id=42 café");
    }
}
