//! Unit tests of the `.msg` reader: messages built here with `cfb`'s writer from the
//! MS-OXMSG layout, the public fixtures of `fixtures/msg/`, and corrupt input.

use std::io::{Cursor, Write as _};

use cfb::CompoundFile;

use super::*;

/// A property stream or fixed-size entry to write into a storage.
enum Prop<'a> {
    /// A `001F` string.
    Unicode(u16, &'a str),
    /// A `001E` string, already in the message's code page.
    String8(u16, &'a [u8]),
    /// A `0102` stream.
    Binary(u16, &'a [u8]),
    /// A fixed-size `PT_LONG`.
    Long(u16, u32),
    /// A fixed-size `PT_SYSTIME`.
    Time(u16, u64),
}

/// Builds a `.msg` the way Outlook lays one out.
struct Builder {
    file: CompoundFile<Cursor<Vec<u8>>>,
}

impl Builder {
    fn new() -> Self {
        Self {
            file: CompoundFile::create(Cursor::new(Vec::new())).unwrap(),
        }
    }

    fn stream(&mut self, path: &str, bytes: &[u8]) {
        self.file
            .create_stream(path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
    }

    /// Write `props` into the storage `dir` (`""` for the root), whose fixed-size
    /// table has a header of `header` bytes.
    fn props(&mut self, dir: &str, header: usize, props: &[Prop<'_>]) {
        if !dir.is_empty() {
            self.file.create_storage(dir).unwrap();
        }
        let mut table = vec![0u8; header];
        for prop in props {
            let mut fixed = |id: u16, kind: u16, value: [u8; 8]| {
                table.extend_from_slice(&(u32::from(id) << 16 | u32::from(kind)).to_le_bytes());
                table.extend_from_slice(&6u32.to_le_bytes());
                table.extend_from_slice(&value);
            };
            match *prop {
                Prop::Unicode(id, text) => {
                    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
                    self.stream(&format!("{dir}/__substg1.0_{id:04X}001F"), &bytes);
                }
                Prop::String8(id, bytes) => {
                    self.stream(&format!("{dir}/__substg1.0_{id:04X}001E"), bytes);
                }
                Prop::Binary(id, bytes) => {
                    self.stream(&format!("{dir}/__substg1.0_{id:04X}0102"), bytes);
                }
                Prop::Long(id, value) => {
                    let mut v = [0; 8];
                    v[..4].copy_from_slice(&value.to_le_bytes());
                    fixed(id, 0x0003, v);
                }
                Prop::Time(id, value) => fixed(id, 0x0040, value.to_le_bytes()),
            }
        }
        self.stream(&format!("{dir}/__properties_version1.0"), &table);
    }

    fn finish(self) -> Vec<u8> {
        self.file.into_inner().into_inner()
    }
}

/// 2024-03-05T09:41:07Z as a FILETIME.
const MARCH_5_2024: u64 = (1_709_631_667 + 11_644_473_600) * 10_000_000;

/// A phish with no transport headers, two recipients, a file, and an attached message
/// that itself carries a file: the layout of a reported "forward as attachment".
pub(crate) fn built_phish() -> Vec<u8> {
    let mut b = Builder::new();
    b.props(
        "",
        32,
        &[
            Prop::Unicode(PR_SUBJECT, "Your mailbox is full"),
            Prop::Unicode(PR_SENDER_NAME, "IT Desk, Support"),
            Prop::Unicode(
                PR_SENDER_EMAIL_ADDRESS,
                "/O=EXCHANGELABS/OU=X/CN=RECIPIENTS/CN=IT",
            ),
            Prop::Unicode(PR_SENDER_SMTP_ADDRESS, "it-desk@evil-login.com"),
            Prop::Unicode(PR_INTERNET_MESSAGE_ID, "<abc@evil-login.com>"),
            Prop::Unicode(PR_BODY, "Visit http://evil-login.com/text\r\n"),
            Prop::Binary(PR_HTML, b"<a href=\"http://evil-login.com/caf\xe9\">x</a>"),
            Prop::Long(0x3FFD, 1252),
            Prop::Time(PR_CLIENT_SUBMIT_TIME, MARCH_5_2024),
        ],
    );
    b.props(
        "/__recip_version1.0_#00000000",
        8,
        &[
            Prop::Unicode(PR_DISPLAY_NAME, "Ana Victim"),
            Prop::Unicode(PR_SMTP_ADDRESS, "ana@example.com"),
            Prop::Long(PR_RECIPIENT_TYPE, 1),
        ],
    );
    b.props(
        "/__recip_version1.0_#00000001",
        8,
        &[
            Prop::String8(PR_DISPLAY_NAME, b"Jos\xe9\0"),
            Prop::String8(PR_EMAIL_ADDRESS, b"jose@example.com\0"),
            Prop::Long(PR_RECIPIENT_TYPE, 2),
        ],
    );
    b.props(
        "/__attach_version1.0_#00000000",
        8,
        &[
            Prop::Unicode(PR_ATTACH_LONG_FILENAME, "invoice.html"),
            Prop::Unicode(PR_ATTACH_FILENAME, "INVOIC~1.HTM"),
            Prop::Unicode(PR_ATTACH_MIME_TAG, "Text/HTML; charset=utf-8"),
            Prop::Long(PR_ATTACH_METHOD, 1),
            Prop::Binary(
                PR_ATTACH_DATA,
                b"<a href=\"https://pay.evil-login.com/\">pay</a>",
            ),
        ],
    );
    b.props(
        "/__attach_version1.0_#00000001",
        8,
        &[
            Prop::Unicode(PR_DISPLAY_NAME, "Inner"),
            Prop::Long(PR_ATTACH_METHOD, 5),
        ],
    );
    let inner = "/__attach_version1.0_#00000001/__substg1.0_3701000D";
    b.props(
        inner,
        24,
        &[Prop::Unicode(
            PR_TRANSPORT_MESSAGE_HEADERS,
            "Microsoft Mail Internet Headers Version 2.0\r\nReceived: from mx.evil-login.com ([203.0.113.9])\r\n by mx.example.com; Tue, 5 Mar 2024 09:41:00 +0000\r\nFrom: Payroll <payroll@evil-login.com>\r\nTo: ana@example.com\r\nSubject: inner\r\n\r\n",
        ), Prop::Unicode(PR_BODY, "inner body http://inner.evil-login.com/")],
    );
    b.props(
        &format!("{inner}/__attach_version1.0_#00000000"),
        8,
        &[
            Prop::Unicode(PR_ATTACH_FILENAME, "a.txt"),
            Prop::Binary(PR_ATTACH_DATA, b"deep http://deep.example.net/"),
        ],
    );
    b.props(
        "/__attach_version1.0_#00000002",
        8,
        &[
            Prop::Unicode(PR_DISPLAY_NAME, "Chart"),
            Prop::Long(PR_ATTACH_METHOD, 6),
        ],
    );
    b.finish()
}

fn header<'a>(message: &'a OutlookMessage, name: &str) -> Option<&'a str> {
    crate::artifacts::email::header_value(&message.headers, name)
}

#[test]
fn a_built_message_gives_headers_bodies_files_and_its_attached_message() {
    let message = parse(&built_phish(), 8).unwrap();
    assert_eq!(
        header(&message, "From"),
        Some("\"IT Desk, Support\" <it-desk@evil-login.com>")
    );
    assert_eq!(header(&message, "To"), Some("Ana Victim <ana@example.com>"));
    assert_eq!(header(&message, "Cc"), Some("José <jose@example.com>"));
    assert_eq!(header(&message, "Subject"), Some("Your mailbox is full"));
    assert_eq!(
        header(&message, "Date"),
        Some("Tue, 5 Mar 2024 09:41:07 +0000")
    );
    assert_eq!(header(&message, "Message-ID"), Some("<abc@evil-login.com>"));
    assert_eq!(
        message.text_body.as_deref(),
        Some("Visit http://evil-login.com/text\r\n")
    );
    assert_eq!(
        message.html_body.as_deref(),
        Some("<a href=\"http://evil-login.com/café\">x</a>")
    );

    let [file, embedded, ole] = message.attachments.as_slice() else {
        panic!("{:?}", message.attachments);
    };
    assert_eq!(file.name.as_deref(), Some("invoice.html"));
    assert_eq!(file.mime_type.as_deref(), Some("text/html"));
    assert!(matches!(&file.content, AttachmentContent::File(b) if b.starts_with(b"<a href")));
    assert_eq!(ole.content, AttachmentContent::Unsupported(6));

    let AttachmentContent::Message(inner) = &embedded.content else {
        panic!("{embedded:?}");
    };
    assert_eq!(embedded.name.as_deref(), Some("Inner"));
    // Transport headers, without Exchange's version line; the fold is kept.
    assert_eq!(inner.headers[0].name, "Received");
    assert!(inner.headers[0].value.contains("\r\n by mx.example.com"));
    assert_eq!(
        header(inner, "From"),
        Some("Payroll <payroll@evil-login.com>")
    );
    assert_eq!(
        inner.text_body.as_deref(),
        Some("inner body http://inner.evil-login.com/")
    );
    assert_eq!(inner.attachments.len(), 1);
    assert_eq!(inner.attachments[0].name.as_deref(), Some("a.txt"));
}

#[test]
fn attached_messages_past_max_depth_are_not_read() {
    let message = parse(&built_phish(), 0).unwrap();
    assert_eq!(message.attachments[1].content, AttachmentContent::TooDeep);
}

#[test]
fn is_outlook_msg_needs_a_declaration_and_the_magic() {
    let cfb = built_phish();
    assert!(is_outlook_msg("application/vnd.ms-outlook", None, &cfb));
    assert!(is_outlook_msg(
        "application/octet-stream",
        Some("Phish.MSG"),
        &cfb
    ));
    assert!(!is_outlook_msg(
        "application/octet-stream",
        Some("a.doc"),
        &cfb
    ));
    assert!(!is_outlook_msg(
        "application/vnd.ms-outlook",
        Some("a.msg"),
        b"hello"
    ));
}

#[test]
fn corrupt_input_is_an_error_naming_the_problem() {
    let not_cfb = parse(b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 too short", 8).unwrap_err();
    assert!(matches!(not_cfb, MsgError::NotCompoundFile(_)), "{not_cfb}");

    // A compound file that is not a message (a Word file named .msg).
    let mut b = Builder::new();
    b.stream("/WordDocument", b"not mail");
    let word = parse(&b.finish(), 8).unwrap_err();
    assert_eq!(word.to_string(), "no property table in storage /");

    let mut b = Builder::new();
    b.stream("/__properties_version1.0", &[0; 40]);
    let table = parse(&b.finish(), 8).unwrap_err();
    assert!(
        matches!(table, MsgError::BadPropertyTable { len: 40, .. }),
        "{table}"
    );

    // Every truncation of a valid file fails cleanly or reads, never panics.
    let whole = built_phish();
    for len in (0..whole.len()).step_by(97) {
        let _ = parse(&whole[..len], 8);
    }
}

#[test]
fn too_many_attachments_is_an_error() {
    let mut b = Builder::new();
    b.props("", 32, &[]);
    for i in 0..=MAX_CHILDREN {
        b.props(&format!("/__attach_version1.0_#{i:08X}"), 8, &[]);
    }
    let error = parse(&b.finish(), 8).unwrap_err();
    assert_eq!(error.to_string(), "more than 1000 attachments");
}

#[test]
fn filetimes_format_as_rfc2822_dates() {
    assert_eq!(
        rfc2822_date(MARCH_5_2024).as_deref(),
        Some("Tue, 5 Mar 2024 09:41:07 +0000")
    );
    assert_eq!(
        rfc2822_date(116_444_736_000_000_000).as_deref(),
        Some("Thu, 1 Jan 1970 00:00:00 +0000")
    );
    assert_eq!(rfc2822_date(0), None);
    assert_eq!(rfc2822_date(u64::MAX), None);
}

#[test]
fn ansi_strings_without_a_code_page_are_read_in_the_locale_s() {
    // As a Japanese Outlook writes them: no PR_MESSAGE_CODEPAGE, locale 1041, and a wire
    // charset (ISO-2022-JP) that is not the one of the strings (Shift_JIS).
    let mut b = Builder::new();
    b.props(
        "",
        32,
        &[
            Prop::Long(0x3FF1, 1041),
            Prop::Long(PR_INTERNET_CPID, 50220),
            Prop::String8(PR_SUBJECT, b"\x93\xfa\x96\x7b\x8c\xea\0"),
        ],
    );
    let message = parse(&b.finish(), 8).unwrap();
    assert_eq!(header(&message, "Subject"), Some("日本語"));
}
