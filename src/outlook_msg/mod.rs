//! Outlook `.msg` files (MS-OXMSG) read into headers, bodies and attachments, so a phish
//! reported with Outlook's "forward as attachment" is walked like an attached email.
//!
//! Pure and bounded: bytes in, an [`OutlookMessage`] or a [`MsgError`] naming what was
//! wrong out; no I/O, no panics. The `cfb` crate checks the compound-file structure; on
//! top of it the `properties` module reads MAPI properties, within a budget of as many
//! stream bytes as the input has, at most [`MAX_CHILDREN`] recipients and attachments per
//! message, and embedded messages (attach method 5) only `max_depth` levels down.
//!
//! Left out: the compressed RTF body (`PR_RTF_COMPRESSED`, 0x1009). Outlook also stores
//! the plain text (0x1000) of every message it writes, and an HTML body when there is
//! one, which is where the links are; decompressing and de-encapsulating RTF would add a
//! decoder for text the analyst already gets.

mod properties;

use std::{io, path::PathBuf};

use properties::{Kind, PR_INTERNET_CPID, Reader, Storage, decode_8bit, encoding_for_code_page};

use crate::mime::RawHeader;

/// At most this many recipients, and this many attachments, per message: real mail has
/// far fewer, and each one costs a directory walk.
pub const MAX_CHILDREN: usize = 1000;

/// The first bytes of every compound file.
const CFB_MAGIC: [u8; 8] = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

// Property ids (MS-OXPROPS).
const PR_SUBJECT: u16 = 0x0037;
const PR_CLIENT_SUBMIT_TIME: u16 = 0x0039;
const PR_SENT_REPRESENTING_NAME: u16 = 0x0042;
const PR_SENT_REPRESENTING_EMAIL_ADDRESS: u16 = 0x0065;
const PR_TRANSPORT_MESSAGE_HEADERS: u16 = 0x007D;
const PR_DISPLAY_CC: u16 = 0x0E03;
const PR_DISPLAY_TO: u16 = 0x0E04;
const PR_MESSAGE_DELIVERY_TIME: u16 = 0x0E06;
const PR_RECIPIENT_TYPE: u16 = 0x0C15;
const PR_SENDER_NAME: u16 = 0x0C1A;
const PR_SENDER_EMAIL_ADDRESS: u16 = 0x0C1F;
const PR_BODY: u16 = 0x1000;
const PR_HTML: u16 = 0x1013;
const PR_INTERNET_MESSAGE_ID: u16 = 0x1035;
const PR_DISPLAY_NAME: u16 = 0x3001;
const PR_EMAIL_ADDRESS: u16 = 0x3003;
const PR_ATTACH_DATA: u16 = 0x3701;
const PR_ATTACH_FILENAME: u16 = 0x3704;
const PR_ATTACH_METHOD: u16 = 0x3705;
const PR_ATTACH_LONG_FILENAME: u16 = 0x3707;
const PR_ATTACH_MIME_TAG: u16 = 0x370E;
const PR_SMTP_ADDRESS: u16 = 0x39FE;
const PR_SENDER_SMTP_ADDRESS: u16 = 0x5D01;
const PR_SENT_REPRESENTING_SMTP_ADDRESS: u16 = 0x5D02;

/// `ATTACH_BY_VALUE`: the file's bytes are in `PR_ATTACH_DATA`.
const ATTACH_BY_VALUE: u32 = 1;
/// `ATTACH_EMBEDDED_MSG`: a message in the storage `__substg1.0_3701000D`.
const ATTACH_EMBEDDED_MSG: u32 = 5;

/// One Outlook message: the fields a container needs from an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlookMessage {
    /// The transport headers the message was received with, or, for a message Outlook
    /// never received (a draft, some embedded messages), headers made from its
    /// properties: From, To, Cc, Bcc, Subject, Date, Message-ID.
    pub headers: Vec<RawHeader>,
    /// The plain-text body.
    pub text_body: Option<String>,
    /// The HTML body.
    pub html_body: Option<String>,
    /// Attachments, in Outlook's order.
    pub attachments: Vec<OutlookAttachment>,
}

/// One attachment of an Outlook message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutlookAttachment {
    /// The long file name, else the 8.3 one, else the display name.
    pub name: Option<String>,
    /// The MIME type Outlook recorded (`type/subtype`, lower case), if any.
    pub mime_type: Option<String>,
    /// What it holds.
    pub content: AttachmentContent,
}

/// What an attachment of an Outlook message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentContent {
    /// A file attached by value.
    File(Vec<u8>),
    /// An attached Outlook item (attach method 5), read like the top-level one.
    Message(Box<OutlookMessage>),
    /// An attached message nested more than `max_depth` levels down: not read.
    TooDeep,
    /// Nothing to keep: an OLE object (method 6), a reference to a file elsewhere
    /// (methods 2, 3, 4, 7), or an attachment whose data is missing. Holds the method.
    Unsupported(u32),
}

/// Why bytes are not a readable Outlook message.
#[derive(Debug, thiserror::Error)]
pub enum MsgError {
    /// The compound-file layer refused the bytes.
    #[error("not a compound file: {0}")]
    NotCompoundFile(String),
    /// A compound file without MAPI properties (a Word or Excel file named `.msg`).
    #[error("no property table in storage {0}")]
    NoPropertyTable(String),
    /// A fixed-size property table that is not a header plus 16-byte entries.
    #[error("property table {path} is {len} bytes, not a {header}-byte header and 16-byte entries")]
    BadPropertyTable {
        /// The table stream's path.
        path: String,
        /// Its length.
        len: usize,
        /// The header length its storage kind has.
        header: usize,
    },
    /// A stream or storage the directory lists but that cannot be read.
    #[error("cannot read {path}: {source}")]
    Stream {
        /// Its path in the compound file.
        path: String,
        /// What the compound-file layer said.
        source: io::Error,
    },
    /// The streams read add up to more bytes than the file has: sectors are shared.
    #[error("its streams add up to more bytes than the file has")]
    TooLarge,
    /// More recipients or attachments than [`MAX_CHILDREN`].
    #[error("more than {limit} {what}")]
    TooMany {
        /// `recipients` or `attachments`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// Whether an attachment is an Outlook message: declared as one (the
/// `application/vnd.ms-outlook` type or a `.msg` name) and starting like a compound
/// file. Both, so a text file named `.msg` or a Word file sent as the Outlook type is not
/// taken for one and warned about.
pub fn is_outlook_msg(content_type: &str, name: Option<&str>, bytes: &[u8]) -> bool {
    let declared = content_type.eq_ignore_ascii_case("application/vnd.ms-outlook")
        || name.is_some_and(|n| {
            n.trim_end()
                .rsplit_once('.')
                .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case("msg"))
        });
    declared && bytes.starts_with(&CFB_MAGIC)
}

/// Read an Outlook message. Messages attached to it (method 5) are read `max_depth`
/// levels down; deeper ones are [`AttachmentContent::TooDeep`].
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<OutlookMessage, MsgError> {
    let mut reader = Reader::open(bytes)?;
    let root = reader.storage(PathBuf::from("/"), Kind::TopLevel, None)?;
    read_message(&mut reader, &root, max_depth)
}

fn read_message(
    reader: &mut Reader<'_>,
    storage: &Storage,
    levels_left: usize,
) -> Result<OutlookMessage, MsgError> {
    let headers = match reader.string(storage, PR_TRANSPORT_MESSAGE_HEADERS)? {
        Some(block) => Some(transport_headers(&block)).filter(|h| !h.is_empty()),
        None => None,
    };
    let headers = match headers {
        Some(headers) => headers,
        None => synthesized_headers(reader, storage)?,
    };
    let text_body = reader
        .string(storage, PR_BODY)?
        .filter(|t| !t.trim().is_empty());
    let html_body = html_body(reader, storage)?.filter(|t| !t.trim().is_empty());
    let mut attachments = Vec::new();
    let paths = reader.children(
        &storage.path,
        "__attach_version1.0_#",
        MAX_CHILDREN,
        "attachments",
    )?;
    for path in paths {
        attachments.push(read_attachment(reader, path, storage, levels_left)?);
    }
    Ok(OutlookMessage {
        headers,
        text_body,
        html_body,
        attachments,
    })
}

/// The HTML body: binary (`PR_HTML` 0x10130102) in the code page the message had on the
/// wire (`PR_INTERNET_CPID`), else the message's; or a string property.
fn html_body(reader: &mut Reader<'_>, storage: &Storage) -> Result<Option<String>, MsgError> {
    if let Some(bytes) = reader.binary(storage, PR_HTML)? {
        let code_page = storage
            .long(PR_INTERNET_CPID)
            .and_then(encoding_for_code_page)
            .or(storage.code_page());
        return Ok(Some(decode_8bit(&bytes, code_page)));
    }
    reader.string(storage, PR_HTML)
}

fn read_attachment(
    reader: &mut Reader<'_>,
    path: PathBuf,
    message: &Storage,
    levels_left: usize,
) -> Result<OutlookAttachment, MsgError> {
    let storage = reader.storage(path, Kind::Child, message.code_page())?;
    let mut name = None;
    for id in [PR_ATTACH_LONG_FILENAME, PR_ATTACH_FILENAME, PR_DISPLAY_NAME] {
        name = reader
            .string(&storage, id)?
            .filter(|n| !n.trim().is_empty());
        if name.is_some() {
            break;
        }
    }
    let mime_type = reader.string(&storage, PR_ATTACH_MIME_TAG)?.and_then(|t| {
        let essence = t.split(';').next().unwrap_or("").trim();
        (!essence.is_empty()).then(|| essence.to_ascii_lowercase())
    });
    let method = storage.long(PR_ATTACH_METHOD);
    let content = match method {
        Some(ATTACH_EMBEDDED_MSG) => {
            let inner = properties::substg(&storage.path, PR_ATTACH_DATA, 0x000D);
            if !reader.is_storage(&inner) {
                AttachmentContent::Unsupported(ATTACH_EMBEDDED_MSG)
            } else if levels_left == 0 {
                AttachmentContent::TooDeep
            } else {
                let embedded = reader.storage(inner, Kind::Embedded, message.code_page())?;
                let inner = read_message(reader, &embedded, levels_left - 1)?;
                AttachmentContent::Message(Box::new(inner))
            }
        }
        // Outlook writes the method; a file without it is read as attached by value.
        Some(ATTACH_BY_VALUE) | None => match reader.binary(&storage, PR_ATTACH_DATA)? {
            Some(bytes) => AttachmentContent::File(bytes),
            None => AttachmentContent::Unsupported(ATTACH_BY_VALUE),
        },
        Some(other) => AttachmentContent::Unsupported(other),
    };
    Ok(OutlookAttachment {
        name,
        mime_type,
        content,
    })
}

/// The fields of `PR_TRANSPORT_MESSAGE_HEADERS`, parsed as the walk parses a header
/// block. Exchange prefixes the block with a version line that is not a field.
fn transport_headers(block: &str) -> Vec<RawHeader> {
    let block = block.trim_start();
    let block = match block.strip_prefix("Microsoft Mail Internet Headers Version 2.0") {
        Some(rest) => rest.trim_start_matches([' ', '\t', '\r', '\n']),
        None => block,
    };
    crate::mime::headers::header_block(block)
}

/// Headers made from a message's properties, for one Outlook has no transport headers for.
fn synthesized_headers(
    reader: &mut Reader<'_>,
    storage: &Storage,
) -> Result<Vec<RawHeader>, MsgError> {
    let mut headers = Vec::new();
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value.map(|v| one_line(&v)).filter(|v| !v.is_empty()) {
            headers.push(RawHeader {
                name: name.to_owned(),
                value,
            });
        }
    };

    let sender = mailbox(
        reader.string(storage, PR_SENDER_NAME)?,
        smtp_address(
            reader,
            storage,
            &[PR_SENDER_SMTP_ADDRESS, PR_SENDER_EMAIL_ADDRESS],
        )?,
    );
    let from = match sender {
        Some(sender) => Some(sender),
        None => mailbox(
            reader.string(storage, PR_SENT_REPRESENTING_NAME)?,
            smtp_address(
                reader,
                storage,
                &[
                    PR_SENT_REPRESENTING_SMTP_ADDRESS,
                    PR_SENT_REPRESENTING_EMAIL_ADDRESS,
                ],
            )?,
        ),
    };
    add("From", from);

    // Recipient type 1 To, 2 Cc, 3 Bcc (MS-OXOMSG 2.2.3.1).
    let mut lists: [Vec<String>; 3] = Default::default();
    let paths = reader.children(
        &storage.path,
        "__recip_version1.0_#",
        MAX_CHILDREN,
        "recipients",
    )?;
    for path in paths {
        let recipient = reader.storage(path, Kind::Child, storage.code_page())?;
        let list = recipient
            .long(PR_RECIPIENT_TYPE)
            .and_then(|t| usize::try_from(t).ok())
            .and_then(|t| t.checked_sub(1))
            .and_then(|i| lists.get_mut(i));
        let name = reader.string(&recipient, PR_DISPLAY_NAME)?;
        let address = smtp_address(reader, &recipient, &[PR_SMTP_ADDRESS, PR_EMAIL_ADDRESS])?;
        if let (Some(list), Some(mailbox)) = (list, mailbox(name, address)) {
            list.push(mailbox);
        }
    }
    let [to, cc, bcc] = lists;
    let joined = |list: Vec<String>| (!list.is_empty()).then(|| list.join(", "));
    // Without recipient storages, the display lists Outlook keeps for its views.
    let to = match joined(to) {
        Some(to) => Some(to),
        None => reader.string(storage, PR_DISPLAY_TO)?,
    };
    let cc = match joined(cc) {
        Some(cc) => Some(cc),
        None => reader.string(storage, PR_DISPLAY_CC)?,
    };
    add("To", to);
    add("Cc", cc);
    add("Bcc", joined(bcc));
    add("Subject", reader.string(storage, PR_SUBJECT)?);
    let sent = storage
        .systime(PR_CLIENT_SUBMIT_TIME)
        .or_else(|| storage.systime(PR_MESSAGE_DELIVERY_TIME));
    add("Date", sent.and_then(rfc2822_date));
    add(
        "Message-ID",
        reader.string(storage, PR_INTERNET_MESSAGE_ID)?,
    );
    Ok(headers)
}

/// The first of `ids` that holds an internet address: Exchange stores an X.500 path
/// (`/O=EXCHANGELABS/...`) in the address properties of internal senders.
fn smtp_address(
    reader: &mut Reader<'_>,
    storage: &Storage,
    ids: &[u16],
) -> Result<Option<String>, MsgError> {
    for &id in ids {
        if let Some(address) = reader.string(storage, id)?
            && address.contains('@')
        {
            return Ok(Some(address.trim().to_owned()));
        }
    }
    Ok(None)
}

/// `Name <address>`, or whichever of the two there is.
fn mailbox(name: Option<String>, address: Option<String>) -> Option<String> {
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    match (name, address) {
        (Some(name), Some(address)) if name != address => {
            Some(format!("{} <{address}>", quoted_name(&name)))
        }
        (_, Some(address)) => Some(address),
        (Some(name), None) => Some(quoted_name(&name)),
        (None, None) => None,
    }
}

/// A display name as RFC 5322 writes it: quoted when it has specials (`Doe, Jane`).
fn quoted_name(name: &str) -> String {
    if name.contains(|c| "()<>[]:;@\\,.\"".contains(c)) {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        name.to_owned()
    }
}

/// A property value as a one-line header value.
fn one_line(value: &str) -> String {
    value
        .split(|c: char| c.is_control())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

/// A FILETIME as an RFC 2822 date in UTC (`Tue, 5 Mar 2024 09:41:07 +0000`); `None`
/// before 1970 or after 9999, which only a corrupt or unset property holds.
fn rfc2822_date(filetime: u64) -> Option<String> {
    const TICKS_PER_SECOND: u64 = 10_000_000;
    const UNIX_EPOCH_SECONDS: u64 = 11_644_473_600;
    const LAST_SECOND: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    // 1970-01-01 was a Thursday.
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = (filetime / TICKS_PER_SECOND).checked_sub(UNIX_EPOCH_SECONDS)?;
    if seconds > LAST_SECOND {
        return None;
    }
    let days = i64::try_from(seconds / 86_400).ok()?;
    let time = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    let weekday = WEEKDAYS.get(usize::try_from(days % 7).ok()?)?;
    let month = MONTHS.get(usize::try_from(month.checked_sub(1)?).ok()?)?;
    Some(format!(
        "{weekday}, {day} {month} {year} {:02}:{:02}:{:02} +0000",
        time / 3600,
        time % 3600 / 60,
        time % 60
    ))
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's
/// `civil_from_days`), for days >= 0.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
pub(crate) mod tests;
