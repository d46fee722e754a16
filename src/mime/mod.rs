//! Walks a raw email's MIME tree and reports headers, bodies and attachments in order.
//!
//! The walk is pure and total: any byte string yields a walk (a message without headers
//! is one text body), never an error or a panic. It decides what is a body and what is
//! an attachment, following the reference app where it was right and fixing it where
//! it lost mail (SPEC §4):
//! - a leaf is a body only if it is text (`text/*`, or a textual `message/*` report)
//!   with no `attachment` disposition and no file name; every other leaf, including
//!   disposition-less images and octet-streams, is an attachment;
//! - an attached message (also a base64-encoded one) is reported as an `.eml`
//!   attachment **and** walked into, so its headers, bodies and attachments join the
//!   container, down to `max_depth` levels of nesting;
//! - an attached Outlook `.msg` file is vaulted as a file **and** read (`outlook_msg`), so
//!   its headers, bodies, attachments and attached Outlook messages join the container as
//!   an attached message's would, within the same depth limit.
//!
//! Multipart nesting is walked with an explicit stack, so hostile depth cannot overflow
//! the call stack; message nesting recurses but is bounded by `max_depth`.

pub mod body;
pub mod headers;
pub mod repair;

use std::{borrow::Cow, sync::LazyLock};

use mail_parser::{
    Encoding, HeaderName, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

pub use headers::RawHeader;

use crate::outlook_msg::{self, AttachmentContent, OutlookMessage};

/// How deep attached messages are flattened into the container by default.
pub const DEFAULT_MAX_DEPTH: usize = 8;

/// One thing found while walking, in walk order (depth first, pre-order).
#[derive(Debug)]
pub enum Event<'a> {
    /// The header block of the root message (depth 0) or of an attached message.
    Message {
        /// 0 for the root, 1 for a message attached to it, and so on.
        depth: usize,
        /// Its header fields in order.
        headers: Vec<RawHeader>,
    },
    /// A body part's decoded text.
    Body {
        /// Nesting depth of the message this body belongs to.
        depth: usize,
        /// The decoded text.
        text: Cow<'a, str>,
        /// True for `text/html`.
        html: bool,
    },
    /// A leaf that is a file (or an attached message's `.eml`), or a file attached to an
    /// Outlook message.
    Attachment(Attachment<'a>),
}

/// A file part: its bytes after transfer decoding, its headers and naming hints.
#[derive(Debug)]
pub struct Attachment<'a> {
    /// Nesting depth of the message this attachment belongs to.
    pub depth: usize,
    /// The file name the sender gave (RFC 2231/2047 decoded), unsanitised.
    pub name: Option<String>,
    /// `type/subtype`, lower case; `application/octet-stream` when missing.
    pub content_type: String,
    /// The part's own header fields (none for a file inside an Outlook message).
    pub headers: Vec<RawHeader>,
    /// The content after transfer decoding.
    pub bytes: Cow<'a, [u8]>,
    /// True when this is an attached message stored as `.eml`.
    pub is_message: bool,
    /// True for text-like content worth scanning for indicators (text/*, HTML, CSV...).
    pub text_like: bool,
}

/// Walk `raw`, calling `visit` for every event in order; returns warnings about
/// anything that was malformed or cut short.
pub fn walk(raw: &[u8], max_depth: usize, visit: &mut dyn FnMut(Event<'_>)) -> Vec<String> {
    let mut warnings = Vec::new();
    let (prepared, repaired) = repair::repair_header_block(raw);
    warnings.extend(repaired);
    let structure = repair::first_content_type_wins(&prepared);
    if structure.is_some() {
        warnings
            .push("several Content-Type headers: the first one is used, as mail clients do".into());
    }
    match structure_parser().parse(structure.as_deref().unwrap_or(&prepared)) {
        Some(message) if !message.root_part().headers.is_empty() => {
            // The rename kept every offset, so headers and bodies are read from the bytes
            // as written while the structure comes from the first Content-Type.
            walk_message(&message, &prepared, 0, max_depth, visit, &mut warnings);
        }
        _ => {
            // Empty input or no header block at all: still one container with the text.
            if warnings.is_empty() {
                warnings
                    .push("no header block found; the whole input is treated as the body".into());
            }
            visit(Event::Message {
                depth: 0,
                headers: Vec::new(),
            });
            let text = headers::bytes_to_text(raw);
            if !text.trim().is_empty() {
                visit(Event::Body {
                    depth: 0,
                    text,
                    html: false,
                });
            }
        }
    }
    warnings
}

/// mail-parser with its default field parsers, except that `Received` values are skipped
/// instead of parsed: trace fields are read from the raw bytes by offset
/// (`headers::raw_headers`), and parsing every hop into a value nothing reads was a seventh
/// of the parse. The received parser, like the skipping one, reads up to the first line
/// end not followed by white space, so each field keeps its offsets.
///
/// Giving mail-parser any field parser replaces its built-in table, so the table is
/// repeated here (mail-parser 0.11 `parse_headers`). The other value parsers stay: some
/// end a field elsewhere on malformed mail (the date parser can take in the next line),
/// and the offsets, hence the Email Artifacts, must not move.
pub(crate) fn structure_parser() -> &'static MessageParser {
    static PARSER: LazyLock<MessageParser> = LazyLock::new(build_structure_parser);
    &PARSER
}

fn build_structure_parser() -> MessageParser {
    use HeaderName as H;
    let mut parser = MessageParser::new();
    for name in [
        H::Subject,
        H::Comments,
        H::ContentDescription,
        H::ContentLocation,
        H::ContentTransferEncoding,
    ] {
        parser = parser.header_text(name);
    }
    for name in [
        H::From,
        H::To,
        H::Cc,
        H::Bcc,
        H::ReplyTo,
        H::Sender,
        H::ResentTo,
        H::ResentFrom,
        H::ResentBcc,
        H::ResentCc,
        H::ResentSender,
        H::ListArchive,
        H::ListHelp,
        H::ListId,
        H::ListOwner,
        H::ListPost,
        H::ListSubscribe,
        H::ListUnsubscribe,
    ] {
        parser = parser.header_address(name);
    }
    for name in [H::Date, H::ResentDate] {
        parser = parser.header_date(name);
    }
    for name in [
        H::MessageId,
        H::References,
        H::InReplyTo,
        H::ReturnPath,
        H::ContentId,
        H::ResentMessageId,
    ] {
        parser = parser.header_id(name);
    }
    for name in [H::Keywords, H::ContentLanguage] {
        parser = parser.header_comma_separated(name);
    }
    for name in [H::ContentType, H::ContentDisposition] {
        parser = parser.header_content_type(name);
    }
    // everything else, MIME-Version included, is raw text, as in the built-in table
    parser.ignore_header(H::Received).default_header_raw()
}

/// Walk one message. `raw` is the buffer its part offsets refer to: mail-parser gives an
/// inline (not transfer-encoded) attached message a `raw_message()` that is a slice of
/// its parent, but leaves its offsets relative to the outermost buffer; only an encoded
/// attached message, decoded and parsed on its own, has offsets into its own bytes.
fn walk_message(
    message: &Message<'_>,
    raw: &[u8],
    depth: usize,
    max_depth: usize,
    visit: &mut dyn FnMut(Event<'_>),
    warnings: &mut Vec<String>,
) {
    let root = message.root_part();
    visit(Event::Message {
        depth,
        headers: headers::raw_headers(&root.headers, raw),
    });

    // mail-parser can hand back a part graph that is not a tree: on some malformed
    // nested messages a multipart lists itself or an ancestor among its children (found
    // by fuzzing), and walking that graph never ended. Each part is walked once.
    let mut walked = vec![false; message.parts.len()];
    let mut stack: Vec<u32> = vec![0];
    while let Some(id) = stack.pop() {
        let Some(part) = message.part(id) else {
            continue;
        };
        match usize::try_from(id).ok().and_then(|i| walked.get_mut(i)) {
            Some(seen) if !*seen => *seen = true,
            _ => continue,
        }
        match &part.body {
            PartType::Multipart(children) => {
                // Children were parsed in order; push reversed so they pop in order.
                stack.extend(children.iter().rev());
            }
            PartType::Message(inner) => {
                let inline = matches!(part.encoding, Encoding::None);
                let (eml, inner_raw) = if inline {
                    (body::raw_body(part, raw), raw)
                } else {
                    (inner.raw_message(), inner.raw_message())
                };
                nested_message(
                    part,
                    raw,
                    Cow::Borrowed(eml),
                    depth,
                    max_depth,
                    visit,
                    warnings,
                    |visit, w| {
                        walk_message(inner, inner_raw, depth + 1, max_depth, visit, w);
                    },
                );
            }
            _ if is_rfc822(part) => {
                // mail-parser stops decoding encoded messages past its own depth limit
                // and leaves the bytes; parse them ourselves while our limit allows.
                let eml = body::transfer_decoded(part, raw);
                let parsed = structure_parser().parse(eml.as_ref());
                nested_message(
                    part,
                    raw,
                    eml.clone(),
                    depth,
                    max_depth,
                    visit,
                    warnings,
                    |visit, w| {
                        if let Some(inner) = &parsed {
                            walk_message(
                                inner,
                                inner.raw_message(),
                                depth + 1,
                                max_depth,
                                visit,
                                w,
                            );
                        }
                    },
                );
            }
            _ => leaf(part, raw, depth, max_depth, visit, warnings),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn nested_message<'a>(
    part: &MessagePart<'_>,
    raw: &[u8],
    eml: Cow<'a, [u8]>,
    depth: usize,
    max_depth: usize,
    visit: &mut dyn FnMut(Event<'_>),
    warnings: &mut Vec<String>,
    descend: impl FnOnce(&mut dyn FnMut(Event<'_>), &mut Vec<String>),
) {
    visit(Event::Attachment(Attachment {
        depth,
        name: part.attachment_name().map(str::to_owned),
        content_type: "message/rfc822".into(),
        headers: headers::raw_headers(&part.headers, raw),
        bytes: eml,
        is_message: true,
        text_like: false,
    }));
    if depth + 1 > max_depth {
        warnings.push(format!(
            "attached message nested deeper than {max_depth} levels kept as .eml but not flattened"
        ));
        return;
    }
    descend(visit, warnings);
}

/// An attached message: `message/rfc822` (or `global`), or an `.eml` file sent as a
/// generic binary, as mail clients do when forwarding "as attachment" from the desktop.
fn is_rfc822(part: &MessagePart<'_>) -> bool {
    let eml_file = part
        .attachment_name()
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".eml"))
        && part.content_type().is_none_or(|ct| {
            let ctype = ct.ctype().to_ascii_lowercase();
            let sub = ct
                .subtype()
                .map(str::to_ascii_lowercase)
                .unwrap_or_default();
            ctype == "message" || (ctype == "application" && sub == "octet-stream")
        });
    eml_file
        || part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("message")
                && ct.subtype().is_some_and(|s| {
                    s.eq_ignore_ascii_case("rfc822") || s.eq_ignore_ascii_case("global")
                })
        })
}

fn leaf(
    part: &MessagePart<'_>,
    raw: &[u8],
    depth: usize,
    max_depth: usize,
    visit: &mut dyn FnMut(Event<'_>),
    warnings: &mut Vec<String>,
) {
    let content_type = content_type_of(part);
    let name = part
        .attachment_name()
        .map(str::to_owned)
        .filter(|n| !n.trim().is_empty());
    let disposition_attachment = part
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
    // Decide by the declared type, not by mail-parser's part kind: it returns a binary
    // attachment whose base64 does not decode as a Text part.
    // A multipart whose boundary never appears reaches here as one leaf: its content is
    // the message text, as Python reads it.
    let textual = content_type.starts_with("text/")
        || content_type.starts_with("multipart/")
        || is_textual_report(&content_type);

    if textual && !disposition_attachment && name.is_none() {
        let text = body::body_text(part, raw);
        if !text.trim().is_empty() {
            let html = content_type == "text/html";
            visit(Event::Body { depth, text, html });
        }
        note_repair(part, &content_type, None, warnings);
        return;
    }
    note_repair(part, &content_type, name.as_deref(), warnings);

    let bytes = body::transfer_decoded(part, raw);
    if bytes.is_empty() {
        warnings.push(format!(
            "empty attachment {} skipped",
            name.as_deref().unwrap_or(content_type.as_str())
        ));
        return;
    }
    let text_like = is_text_like(&content_type, name.as_deref());
    let file = Attachment {
        depth,
        name,
        content_type,
        headers: headers::raw_headers(&part.headers, raw),
        bytes,
        is_message: false,
        text_like,
    };
    file_attachment(file, max_depth, visit, warnings);
}

/// Report a file, then, when it is an Outlook message, what is in it, one level deeper.
/// The `.msg` itself is vaulted like any file (`is_message` stays false: it is not an
/// `.eml`); a `.msg` that cannot be read stays just that file, with a warning.
fn file_attachment(
    file: Attachment<'_>,
    max_depth: usize,
    visit: &mut dyn FnMut(Event<'_>),
    warnings: &mut Vec<String>,
) {
    let depth = file.depth;
    let parsed = outlook_msg::is_outlook_msg(&file.content_type, file.name.as_deref(), &file.bytes)
        .then(|| {
            // The message in the file is one level down; the messages attached to it
            // get the levels left.
            (depth < max_depth).then(|| outlook_msg::parse(&file.bytes, max_depth - depth - 1))
        });
    let label = file
        .name
        .clone()
        .unwrap_or_else(|| file.content_type.clone());
    visit(Event::Attachment(file));
    match parsed {
        None => {}
        Some(None) => warnings.push(format!(
            "Outlook message {label} nested deeper than {max_depth} levels kept as .msg but not flattened"
        )),
        Some(Some(Err(error))) => warnings.push(format!(
            "attachment {label}: not a readable Outlook message ({error}); kept as a file"
        )),
        Some(Some(Ok(message))) => {
            outlook_message(&message, depth + 1, max_depth, visit, warnings);
        }
    }
}

/// Report an Outlook message as the walk reports a MIME one: its headers, its bodies,
/// then its attachments, attached Outlook messages one level deeper.
fn outlook_message(
    message: &OutlookMessage,
    depth: usize,
    max_depth: usize,
    visit: &mut dyn FnMut(Event<'_>),
    warnings: &mut Vec<String>,
) {
    visit(Event::Message {
        depth,
        headers: message.headers.clone(),
    });
    for (text, html) in [(&message.text_body, false), (&message.html_body, true)] {
        if let Some(text) = text {
            visit(Event::Body {
                depth,
                text: Cow::Borrowed(text),
                html,
            });
        }
    }
    for attachment in &message.attachments {
        let label = attachment.name.as_deref().unwrap_or("(no name)");
        match &attachment.content {
            AttachmentContent::File(bytes) if bytes.is_empty() => {
                warnings.push(format!("empty attachment {label} skipped"));
            }
            AttachmentContent::File(bytes) => {
                let content_type = attachment
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into());
                let text_like = is_text_like(&content_type, attachment.name.as_deref());
                let file = Attachment {
                    depth,
                    name: attachment.name.clone(),
                    content_type,
                    headers: Vec::new(),
                    bytes: Cow::Borrowed(bytes),
                    is_message: false,
                    text_like,
                };
                file_attachment(file, max_depth, visit, warnings);
            }
            // Not vaulted: an attached Outlook item has no bytes of its own, only
            // properties spread over a storage of the `.msg`, which is vaulted whole.
            AttachmentContent::Message(inner) => {
                outlook_message(inner, depth + 1, max_depth, visit, warnings);
            }
            AttachmentContent::TooDeep => warnings.push(format!(
                "attached Outlook message {label} nested deeper than {max_depth} levels not flattened"
            )),
            AttachmentContent::Unsupported(method) => {
                let what = match method {
                    6 => "an OLE object",
                    2 | 3 | 4 | 7 => "a link to a file stored elsewhere",
                    _ => "no data in the file",
                };
                warnings.push(format!(
                    "attachment {label} of an Outlook message not vaulted: {what} (attach method {method})"
                ));
            }
        }
    }
}

fn note_repair(
    part: &MessagePart<'_>,
    content_type: &str,
    name: Option<&str>,
    warnings: &mut Vec<String>,
) {
    if let Some(note) = body::repair_note(part) {
        warnings.push(format!("{}: {note}", name.unwrap_or(content_type)));
    }
}

fn content_type_of(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        // RFC 2045 §5.2: no Content-Type means text/plain.
        None => "text/plain".into(),
    }
}

/// Machine-written reports that are text in all but name (bounces, read receipts).
fn is_textual_report(content_type: &str) -> bool {
    matches!(
        content_type,
        "message/delivery-status"
            | "message/disposition-notification"
            | "message/feedback-report"
            | "text/rfc822-headers"
    )
}

/// Attachments worth scanning for indicators: HTML attachments are a common phishing
/// vector, and text, CSV, XML, JSON and calendar files carry URLs and addresses; textual
/// reports and a multipart sent as a file are text too.
fn is_text_like(content_type: &str, name: Option<&str>) -> bool {
    if content_type.starts_with("text/")
        || content_type.starts_with("multipart/")
        || is_textual_report(content_type)
        || matches!(
            content_type,
            "application/xhtml+xml" | "application/json" | "application/xml" | "application/csv"
        )
    {
        return true;
    }
    let ext = name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, ext)| ext.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some("htm" | "html" | "shtml" | "xhtml" | "txt" | "csv" | "xml" | "json" | "ics" | "svg")
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Write as _;

    use super::*;

    fn events(raw: &[u8]) -> (Vec<String>, Vec<String>) {
        let mut out = Vec::new();
        let warnings = walk(raw, DEFAULT_MAX_DEPTH, &mut |e| {
            out.push(match e {
                Event::Message { depth, headers } => format!("msg{depth}:{}", headers.len()),
                Event::Body { depth, text, html } => format!("body{depth}:{html}:{}", text.trim()),
                Event::Attachment(a) => format!(
                    "att{}:{}:{}:{}",
                    a.depth,
                    a.content_type,
                    a.name.unwrap_or_default(),
                    a.bytes.len()
                ),
            });
        });
        (out, warnings)
    }

    #[test]
    fn a_part_graph_with_cycles_is_walked_once_per_part() {
        // Found by fuzzing (fixtures/fuzz/email_pipeline/): mail-parser returns this as a
        // multipart whose children are itself and its parent, and the walk never ended.
        let raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nContent-Type: message/rfc822\n\n\n--b\nContent-Type: message/rfc822\n\n\n--b--\n";
        let (ev, _) = events(raw);
        assert_eq!(ev, ["msg0:1"]);
    }

    #[test]
    fn dispositionless_binary_is_an_attachment_not_a_body() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--b--\r\n";
        let (ev, _) = events(raw);
        assert_eq!(ev, ["msg0:2", "body0:false:hello", "att0:image/png::8"]);
    }

    #[test]
    fn base64_attached_message_is_vaulted_and_walked() {
        use base64::Engine as _;
        let inner =
            b"From: inner@example.org\r\nSubject: inner\r\n\r\nsee http://inner.example.org/\r\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
        let raw = format!(
            "From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nouter\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        );
        let (ev, _) = events(raw.as_bytes());
        assert_eq!(ev[0], "msg0:2");
        assert_eq!(ev[1], "body0:false:outer");
        assert_eq!(ev[2], format!("att0:message/rfc822::{}", inner.len()));
        assert_eq!(ev[3], "msg1:2");
        assert_eq!(ev[4], "body1:false:see http://inner.example.org/");
    }

    #[test]
    fn inline_messages_nested_three_deep_keep_their_headers_and_bodies() {
        let mut raw = String::from("From: outer@example.com\r\nSubject: outer\r\n");
        for level in 1..=3 {
            let _ = write!(
                raw,
                "Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\nContent-Type: text/plain\r\n\r\nbody {level}\r\n--b{level}\r\nContent-Type: message/rfc822\r\n\r\nFrom: l{level}@example.com\r\nSubject: level {level}\r\n"
            );
        }
        raw.push_str("\r\ninnermost\r\n");
        for level in (1..=3).rev() {
            let _ = write!(raw, "--b{level}--\r\n");
        }
        let (ev, _) = events(raw.as_bytes());
        let messages: Vec<&String> = ev.iter().filter(|e| e.starts_with("msg")).collect();
        assert_eq!(messages, ["msg0:3", "msg1:3", "msg2:3", "msg3:2"]);
        assert!(ev.contains(&"body3:false:innermost".to_owned()), "{ev:?}");
        assert!(ev.contains(&"body2:false:body 3".to_owned()), "{ev:?}");
        // Each attached message is vaulted whole: it starts with its own From line.
        let emls: Vec<&String> = ev.iter().filter(|e| e.contains("message/rfc822")).collect();
        assert_eq!(emls.len(), 3);
    }

    #[test]
    fn single_part_pdf_root_is_an_attachment() {
        let raw = b"From: a@example.com\r\nContent-Type: application/pdf; name=x.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n";
        let (ev, _) = events(raw);
        assert_eq!(ev, ["msg0:3", "att0:application/pdf:x.pdf:9"]);
    }

    #[test]
    fn headerless_input_still_yields_a_message_and_body() {
        let (ev, warnings) = events(b"");
        assert_eq!(ev, ["msg0:0"]);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn undeclared_latin1_body_is_not_mangled() {
        let raw = b"From: a@example.com\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xe9\r\n";
        let (ev, _) = events(raw);
        assert_eq!(ev[1], "body0:false:café");
    }

    /// A report email with `bytes` attached as an Outlook message named `name`.
    pub(crate) fn reporting_msg(bytes: &[u8], name: &str) -> Vec<u8> {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        format!(
            "From: reporter@example.com\r\nSubject: Fwd: suspicious\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/vnd.ms-outlook; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    const MSG_IN_MSG_IN_MSG: &[u8] =
        include_bytes!("../../fixtures/msg/msgreader-msgInMsgInMsg.msg");

    #[test]
    fn an_attached_outlook_message_is_vaulted_and_walked_with_its_attached_messages() {
        let raw = reporting_msg(MSG_IN_MSG_IN_MSG, "report.msg");
        let (ev, warnings) = events(&raw);
        assert!(warnings.is_empty(), "{warnings:?}");
        let len = MSG_IN_MSG_IN_MSG.len();
        assert_eq!(
            ev,
            [
                "msg0:3".to_owned(),
                "body0:false:see attached".to_owned(),
                format!("att0:application/vnd.ms-outlook:report.msg:{len}"),
                "msg1:2".to_owned(),
                "body1:false:I have sub attachments!".to_owned(),
                // The attached item is walked, not vaulted; its file is its own.
                "msg2:2".to_owned(),
                "body2:false:I have attachments!".to_owned(),
                "msg3:10".to_owned(),
                "body3:false:この電子メール メッセージは、アカウントの設定のテスト中に、Microsoft Outlook から自動送信されたものです。".to_owned(),
                "att2:application/octet-stream:green.png:134".to_owned(),
                "att1:application/octet-stream:blue.png:134".to_owned(),
            ]
        );
    }

    #[test]
    fn an_outlook_message_s_html_body_and_text_like_files_are_reported() {
        let mut files = Vec::new();
        let mut bodies = Vec::new();
        let raw = reporting_msg(&crate::outlook_msg::tests::built_phish(), "phish.msg");
        let warnings = walk(&raw, DEFAULT_MAX_DEPTH, &mut |e| match e {
            Event::Body { depth, html, .. } => bodies.push((depth, html)),
            Event::Attachment(a) => {
                files.push((
                    a.depth,
                    a.name.unwrap_or_default(),
                    a.content_type,
                    a.text_like,
                ));
            }
            Event::Message { .. } => {}
        });
        assert_eq!(bodies, [(0, false), (1, false), (1, true), (2, false)]);
        assert_eq!(
            files,
            [
                (
                    0,
                    "phish.msg".into(),
                    "application/vnd.ms-outlook".into(),
                    false
                ),
                (1, "invoice.html".into(), "text/html".into(), true),
                (2, "a.txt".into(), "application/octet-stream".into(), true),
            ]
        );
        assert_eq!(
            warnings,
            ["attachment Chart of an Outlook message not vaulted: an OLE object (attach method 6)"]
        );
    }

    #[test]
    fn outlook_messages_past_max_depth_are_kept_with_a_warning() {
        let raw = reporting_msg(MSG_IN_MSG_IN_MSG, "report.msg");
        let mut depths = Vec::new();
        let warnings = walk(&raw, 2, &mut |e| {
            if let Event::Message { depth, .. } = e {
                depths.push(depth);
            }
        });
        assert_eq!(depths, [0, 1, 2]);
        assert_eq!(
            warnings,
            [
                "attached Outlook message Microsoft Outlook テスト メッセージ nested deeper than 2 levels not flattened"
            ]
        );

        let mut attachments = 0;
        let warnings = walk(&raw, 0, &mut |e| {
            attachments += usize::from(matches!(e, Event::Attachment(_)));
        });
        assert_eq!(attachments, 1);
        assert_eq!(
            warnings,
            [
                "Outlook message report.msg nested deeper than 0 levels kept as .msg but not flattened"
            ]
        );
    }

    #[test]
    fn a_corrupt_outlook_message_stays_a_file_with_a_warning() {
        let mut corrupt = MSG_IN_MSG_IN_MSG[..600].to_vec();
        corrupt.extend_from_slice(&[0xff; 600]);
        let (ev, warnings) = events(&reporting_msg(&corrupt, "phish.msg"));
        assert_eq!(ev.len(), 3, "{ev:?}");
        assert_eq!(ev[2], "att0:application/vnd.ms-outlook:phish.msg:1200");
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with("attachment phish.msg: not a readable Outlook message (")
                && warnings[0].ends_with("); kept as a file"),
            "{warnings:?}"
        );
    }

    #[test]
    fn deep_multipart_nesting_does_not_overflow() {
        let mut raw = String::from("From: a@example.com\r\n");
        for i in 0..3000 {
            let _ = write!(
                raw,
                "Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"
            );
        }
        raw.push_str("Content-Type: text/plain\r\n\r\ndeep\r\n");
        let (ev, _) = events(raw.as_bytes());
        assert_eq!(ev[0], "msg0:2");
    }
}
