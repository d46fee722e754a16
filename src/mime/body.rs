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
/// When that leaves replacement characters and the declaration was absent, ASCII,
/// UTF-8 or unknown, the bytes are re-read: UTF-8 if valid, else windows-1252.
pub fn body_text<'a>(part: &'a MessagePart<'_>, raw: &[u8]) -> Cow<'a, str> {
    let decoded: Cow<'a, str> = match &part.body {
        PartType::Text(text) | PartType::Html(text) => Cow::Borrowed(text.as_ref()),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
            return Cow::Owned(bytes_to_text(bytes).into_owned());
        }
        PartType::Message(_) | PartType::Multipart(_) => return Cow::Borrowed(""),
    };
    if !decoded.contains('\u{FFFD}') || declares_real_charset(part) {
        return decoded;
    }
    let bytes = transfer_decoded(part, raw);
    Cow::Owned(bytes_to_text(&bytes).into_owned())
}

/// True when the part names a charset we can decode that is not ASCII or UTF-8; then
/// replacement characters are the sender's broken bytes, not our guess.
fn declares_real_charset(part: &MessagePart<'_>) -> bool {
    let Some(charset) = part.content_type().and_then(|ct| ct.attribute("charset")) else {
        return false;
    };
    let charset = charset.trim().to_ascii_lowercase();
    let generic = matches!(
        charset.as_str(),
        "us-ascii" | "ascii" | "utf-8" | "utf8" | "unicode-1-1-utf-8" | "x-unknown" | "unknown"
    );
    !generic && charset_decoder(charset.as_bytes()).is_some()
}
