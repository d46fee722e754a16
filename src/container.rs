//! Email to container: one raw message in, one container with all its artifacts out.
//!
//! This is the pipeline every action shares (poll, get email, parse email). It is pure
//! except for the vault seam, which receives each attachment's bytes as they are found
//! so memory stays bounded by the message, not by copies of it.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{
    artifacts::{
        self, FoundIndicators,
        email::{add_triage, email_artifact, header_value, inline_forward, looks_like_message},
        file::{FileHashes, file_name, vault_artifact},
    },
    extract::{self, Cap, ExtractOptions, Indicators},
    mime::{self, Attachment, Event, RawHeader, headers::decode_words},
    sdi::container_sdi,
    triage::{self, Hop},
    vault::{Vault, VaultError},
};

/// Text-like attachments larger than this are vaulted but not scanned for indicators.
pub const MAX_SCANNED_ATTACHMENT_BYTES: usize = 4 * 1024 * 1024;
/// Each `bodyPart<k>` in an Email Artifact is cut to this many bytes (the reference put
/// every attachment, whole, into the artifact).
pub const MAX_BODY_PART_BYTES: usize = 1024 * 1024;

/// At most this many IP, Hash, URL and Domain Artifacts per container (distinct values of
/// the four classes together), the first found kept (the message's headers come first,
/// then each part in order); the rest are counted in a parse warning. Email and Vault
/// Artifacts are never left out.
///
/// Why a cap at all: each artifact costs about 1.6 KB while `parse email` builds the
/// container, and 3 KB in a poll (which also serializes it for the ledger, and the state
/// store copies that), so an email of 200,000 URLs on as many hosts (7 MB,
/// `benches/many_urls.sh`) peaked at 667 MiB in `parse email` and 876 MiB in a poll.
/// Why this many: the most any of the 607 emails of the shared test corpus gives is 88
/// (the median 2), so real mail stays whole by a wide margin, while more than a few
/// thousand is a dump no analyst or playbook walks artifact by artifact. And memory: that
/// email's limit is 3x its size plus 64 MiB (84 MiB); with 5,000 kept it peaks at 35 MiB
/// in `parse email` and 66 MiB in a poll, with 10,000 at 44 and 81 MiB, too close.
pub const MAX_INDICATOR_ARTIFACTS: usize = 5_000;

/// At most this many warnings about malformed wrapped links per container, the first
/// found kept; the rest are counted in one more warning. Each names one link: an email of
/// 120,000 malformed Safe Links (7.4 MB) held as many warnings, and peaked at 271 MiB in
/// `parse email` with its URL Artifacts; with both caps, 38 MiB.
pub const MAX_LINK_WARNINGS: usize = 100;

/// Headers whose value is a client or relay IP address.
const IP_HEADERS: &[&str] = &[
    "x-originating-ip",
    "x-sender-ip",
    "x-client-ip",
    "x-forwarded-for",
    "x-real-ip",
    // Exchange Online's record of the client that handed it the mail.
    "x-ms-exchange-organization-originalclientipaddress",
];
/// Address headers whose domains are indicators (sender-controlled).
const ADDRESS_HEADERS: &[&str] = &["from", "reply-to", "return-path", "sender"];

/// What to extract, from the asset configuration.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Which indicator classes to extract.
    pub extract: ExtractOptions,
    /// Store attachments in the vault and add Vault Artifacts.
    pub attachments: bool,
    /// Add `bodyPart<k>` fields to Email Artifacts.
    pub add_body_to_header_artifacts: bool,
    /// How deep attached messages are flattened.
    pub max_depth: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            extract: ExtractOptions::ALL,
            attachments: true,
            add_body_to_header_artifacts: false,
            max_depth: mime::DEFAULT_MAX_DEPTH,
        }
    }
}

/// One email to turn into a container.
#[derive(Debug, Clone, Copy)]
pub struct EmailSource<'a> {
    /// The message exactly as fetched.
    pub raw: &'a [u8],
    /// Its IMAP UID (0 for `parse email` without an id).
    pub email_id: u64,
    /// The folder exactly as typed; hashed into the SDI.
    pub folder: &'a str,
    /// The container's id when the caller has one (it is part of vault artifact SDIs).
    pub container_id: Option<i64>,
    /// The container label.
    pub label: &'a str,
}

/// A SOAR container, in the shape the platform's `save_container` takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// The platform or ledger id, when known.
    pub id: Option<i64>,
    /// The decoded subject, or `Email ID: <uid>`.
    pub name: String,
    /// `"<md5(folder)> : <uid>"`.
    pub source_data_identifier: String,
    /// The container label.
    pub label: String,
    /// Always false: automation is triggered by the last artifact.
    pub run_automation: bool,
    /// The raw email and notes about it.
    pub data: ContainerData,
    /// IP, Hash, URL, Domain, Email and Vault artifacts, in that order.
    pub artifacts: Vec<Value>,
    /// Set when this email was already ingested and the existing container is returned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// Set when an earlier run committed this container but never delivered its
    /// response whole (killed, crashed, stdout closed): it is sent again, unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redelivered: bool,
}

/// A container on its way to the response.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The container.
    pub container: Container,
    /// Its JSON, when it was serialized already: a poll serializes each new container
    /// once, on the thread that built it, for the ledger and for the response.
    pub json: Option<String>,
}

/// Where a run's containers go, each as soon as it is durable: the response on stdout,
/// or a list in memory.
pub trait ContainerSink {
    /// Hand on one container.
    fn send(&mut self, container: Outgoing);

    /// Whether nobody can receive containers any more (the response's reader went
    /// away, or its disk is full): a long run stops early, leaving the rest queued.
    fn closed(&self) -> bool {
        false
    }
}

impl<F: FnMut(Outgoing)> ContainerSink for F {
    fn send(&mut self, container: Outgoing) {
        self(container);
    }
}

impl From<Container> for Outgoing {
    fn from(container: Container) -> Self {
        Outgoing {
            container,
            json: None,
        }
    }
}

/// The container's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerData {
    /// The whole message as text.
    pub raw_email: String,
    /// `latin-1` when the message was not valid UTF-8: every byte became the character
    /// of the same number, so `raw_email.encode("latin-1")` gives back the exact bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_email_encoding: Option<String>,
    /// What was malformed or cut short while parsing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parse_warnings: Vec<String>,
}

/// An Email Artifact under construction, with the leaves collected for `bodyPart<k>`.
struct OpenMessage {
    depth: usize,
    artifact: Option<Map<String, Value>>,
    body_parts: Vec<(Value, Option<String>, bool)>,
    body_bytes: usize,
}

/// Everything gathered while walking one message.
struct Collector<'v> {
    options: BuildOptions,
    email_id: u64,
    container_id: Option<i64>,
    vault: &'v dyn Vault,
    vault_error: Option<VaultError>,
    found: FoundIndicators,
    messages: Vec<OpenMessage>,
    open: Vec<usize>,
    forwards: Vec<Map<String, Value>>,
    vaults: Vec<Map<String, Value>>,
    attachment_count: usize,
    subject: Option<String>,
    /// Problems found past the MIME walk (an undecodable wrapped link, a corrupt `.msg`):
    /// the email still becomes a container, and the analyst is told what was skipped.
    warnings: Vec<String>,
}

/// Build the container for one email, storing its attachments through `vault`.
pub fn build_container(
    source: &EmailSource<'_>,
    options: &BuildOptions,
    vault: &dyn Vault,
) -> Result<Container, VaultError> {
    let mut collector = Collector {
        options: *options,
        email_id: source.email_id,
        container_id: source.container_id,
        vault,
        vault_error: None,
        found: FoundIndicators::capped(Cap::new(MAX_INDICATOR_ARTIFACTS, MAX_LINK_WARNINGS)),
        messages: Vec::new(),
        open: Vec::new(),
        forwards: Vec::new(),
        vaults: Vec::new(),
        attachment_count: 0,
        subject: None,
        warnings: Vec::new(),
    };
    let mut warnings = mime::walk(source.raw, options.max_depth, &mut |event| {
        collector.on_event(event);
    });
    if let Some(error) = collector.vault_error {
        return Err(error);
    }
    warnings.append(&mut collector.warnings);
    warnings.extend(collector.found.warnings().into_iter().map(str::to_owned));
    let cap = collector.found.cap();
    if cap.warnings_left_out() > 0 {
        warnings.push(format!(
            "left out {} more warnings about links beyond the first {MAX_LINK_WARNINGS}",
            thousands(cap.warnings_left_out()),
        ));
    }
    if cap.indicators_left_out() > 0 {
        warnings.push(format!(
            "left out {} indicators (IPs, hashes, URLs, domains) beyond the cap of {} \
             indicator artifacts per container; the first {} found were kept",
            thousands(cap.indicators_left_out()),
            thousands(MAX_INDICATOR_ARTIFACTS),
            thousands(MAX_INDICATOR_ARTIFACTS),
        ));
    }

    let name = collector
        .subject
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| format!("Email ID: {}", source.email_id));
    let mut emails: Vec<Map<String, Value>> = Vec::new();
    for message in collector.messages {
        if let Some(mut artifact) = message.artifact {
            add_body_parts(&mut artifact, message.body_parts);
            emails.push(artifact);
        }
    }
    emails.extend(collector.forwards);
    let artifacts = artifacts::finish(collector.found.artifacts(), emails, collector.vaults);

    let (raw_email, raw_email_encoding) = match std::str::from_utf8(source.raw) {
        Ok(text) => (text.to_owned(), None),
        Err(_) => (
            source.raw.iter().map(|&b| char::from(b)).collect(),
            Some("latin-1".to_owned()),
        ),
    };
    Ok(Container {
        id: source.container_id,
        name,
        source_data_identifier: container_sdi(source.folder, source.email_id),
        label: source.label.to_owned(),
        run_automation: false,
        data: ContainerData {
            raw_email,
            raw_email_encoding,
            parse_warnings: warnings,
        },
        artifacts,
        duplicate: false,
        redelivered: false,
    })
}

impl Collector<'_> {
    fn on_event(&mut self, event: Event<'_>) {
        match event {
            Event::Message { depth, headers } => self.on_message(depth, &headers),
            Event::Body { depth, text, html } => self.on_body(depth, &text, html),
            Event::Attachment(attachment) => self.on_attachment(&attachment),
        }
    }

    fn on_message(&mut self, depth: usize, headers: &[RawHeader]) {
        if depth == 0 {
            self.subject = header_value(headers, "subject").map(decode_words);
        }
        let place = if depth == 0 {
            "header"
        } else {
            "attached message header"
        };
        let hops = triage::received_chain(headers);
        self.scan_headers(headers, place, &hops);
        // The root always gets its artifact (it carries emailId); attached messages only
        // when they look like mail, as in the reference.
        let mut artifact = if depth == 0 {
            Some(email_artifact(headers, Some(self.email_id)))
        } else {
            looks_like_message(headers).then(|| email_artifact(headers, None))
        };
        if let Some(artifact) = &mut artifact {
            add_triage(artifact, headers, hops);
        }
        self.open.retain(|&i| self.messages[i].depth < depth);
        self.open.push(self.messages.len());
        self.messages.push(OpenMessage {
            depth,
            artifact,
            body_parts: Vec::new(),
            body_bytes: 0,
        });
    }

    /// Indicators of trace and sender headers, recorded as found at `place`: attached and
    /// forwarded messages (usually the reported phish) are told apart from the reporter's
    /// own headers. `hops` is the `Received` chain, one hop per `Received` header in
    /// order: an internal hop (the receiving provider's own machines) gives nothing, an
    /// external one its sending side.
    fn scan_headers(&mut self, headers: &[RawHeader], place: &str, hops: &[Hop]) {
        let opts = self.options.extract;
        let mut hops = hops.iter();
        for header in headers {
            let lower = header.name.to_ascii_lowercase();
            let scan: fn(&str, &ExtractOptions, &mut Indicators) = if lower == "received" {
                if hops.next().is_some_and(|hop| hop.internal) {
                    continue;
                }
                extract::scan_received_from
            } else if IP_HEADERS.contains(&lower.as_str()) {
                extract::scan_ip_header
            } else if ADDRESS_HEADERS.contains(&lower.as_str()) && opts.domains {
                |value, _, found| {
                    let domains_only = ExtractOptions {
                        domains: true,
                        ..ExtractOptions::NONE
                    };
                    extract::scan_text(&decode_words(value), &domains_only, found);
                }
            } else {
                continue;
            };
            self.found
                .scan_elsewhere(format!("{place} {}", header.name), |found| {
                    scan(&header.value, &opts, found);
                });
        }
    }

    fn on_body(&mut self, depth: usize, text: &str, html: bool) {
        let opts = self.options.extract;
        if html {
            extract::scan_html(text, &opts, &mut self.found.body);
        } else {
            extract::scan_text(text, &opts, &mut self.found.body);
            if let Some(headers) = inline_forward(text).filter(|_| depth == 0) {
                let hops = triage::received_chain(&headers);
                self.scan_headers(&headers, "forwarded message header", &hops);
                let mut artifact = email_artifact(&headers, Some(self.email_id));
                add_triage(&mut artifact, &headers, hops);
                self.forwards.push(artifact);
            }
        }
        let content_type = if html { "text/html" } else { "text/plain" };
        self.add_leaf(text, content_type, false);
    }

    fn on_attachment(&mut self, attachment: &Attachment<'_>) {
        self.attachment_count += 1;
        let name = file_name(attachment, self.attachment_count);
        if attachment.text_like && attachment.bytes.len() <= MAX_SCANNED_ATTACHMENT_BYTES {
            let text = mime::headers::bytes_to_text(&attachment.bytes);
            let html = attachment.content_type.contains("html")
                || std::path::Path::new(&name).extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm")
                });
            let scan = if html {
                extract::scan_html
            } else {
                extract::scan_text
            };
            let opts = self.options.extract;
            self.found
                .scan_elsewhere(format!("attachment {name}"), |found| {
                    scan(&text, &opts, found);
                });
        }
        if !attachment.is_message && self.options.add_body_to_header_artifacts {
            let (value, base64) = body_part_of_file(&attachment.bytes);
            self.add_leaf(&value, &attachment.content_type, base64);
        }
        if !self.options.attachments {
            return;
        }
        let hashes = FileHashes::of(&attachment.bytes);
        if self.vault_error.is_none()
            && let Err(error) = self.vault.store(&hashes.sha1, &attachment.bytes)
        {
            self.vault_error = Some(error);
        }
        self.vaults.push(vault_artifact(
            attachment,
            &name,
            &hashes,
            self.container_id,
        ));
    }

    /// Record a leaf for `bodyPart<k>` on every open message it belongs to. Copied (cut
    /// to `MAX_BODY_PART_BYTES`) only when the option is on: copying every body of every
    /// email for nothing cost a poll time and memory.
    fn add_leaf(&mut self, text: &str, content_type: &str, base64: bool) {
        if !self.options.add_body_to_header_artifacts {
            return;
        }
        let value = Value::String(cut_at_char_boundary(text, MAX_BODY_PART_BYTES).to_owned());
        for &i in &self.open {
            let message = &mut self.messages[i];
            if message.artifact.is_some() {
                message.body_bytes += value.as_str().map_or(0, str::len);
                message
                    .body_parts
                    .push((value.clone(), Some(content_type.to_owned()), base64));
            }
        }
    }
}

/// A file leaf's `bodyPart<k>` value: its text when it is UTF-8, else its base64 (flagged,
/// as in the reference), made only as long as the part can be (`MAX_BODY_PART_BYTES`).
/// Encoding the whole file first cost a copy a third larger than the attachment (133 MB
/// for a 100 MB one) just to cut 1 MiB out of it.
fn body_part_of_file(bytes: &[u8]) -> (String, bool) {
    use base64::Engine as _;
    if let Ok(text) = std::str::from_utf8(bytes) {
        return (
            cut_at_char_boundary(text, MAX_BODY_PART_BYTES).to_owned(),
            false,
        );
    }
    // base64 maps each 3 input bytes to 4 output bytes, so a prefix of the input encodes
    // to the same prefix of the whole encoding.
    let take = bytes.len().min(MAX_BODY_PART_BYTES / 4 * 3);
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes[..take]);
    (encoded, true)
}

/// `n` with a comma between each group of three digits, as an analyst reads counts.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character.
fn cut_at_char_boundary(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Add `bodyPart<k>`, `bodyPart<k>ContentType` and `body_base64encoded` to an Email
/// Artifact's cef, as the reference's `add_body_to_header_artifacts` did.
fn add_body_parts(artifact: &mut Map<String, Value>, parts: Vec<(Value, Option<String>, bool)>) {
    let Some(Value::Object(cef)) = artifact.get_mut("cef") else {
        return;
    };
    let mut any_base64 = false;
    for (k, (value, content_type, base64)) in parts.into_iter().enumerate() {
        cef.insert(format!("bodyPart{}", k + 1), value);
        cef.insert(
            format!("bodyPart{}ContentType", k + 1),
            content_type.map_or(Value::Null, Value::String),
        );
        any_base64 |= base64;
    }
    if any_base64 {
        cef.insert("body_base64encoded".into(), Value::Bool(true));
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use base64::Engine as _;

    use super::*;
    use crate::vault::MemoryVault;

    /// An email with a text body and a binary attachment of `bytes` (base64 on the wire).
    fn with_attachment(bytes: &[u8]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        format!(
            "From: a@example.com\r\nSubject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    /// `raw` as UID 1 of "inbox", as a poll would see it.
    fn inbox_source(raw: &[u8]) -> EmailSource<'_> {
        EmailSource {
            raw,
            email_id: 1,
            folder: "inbox",
            container_id: None,
            label: "email",
        }
    }

    fn email_cef(raw: &[u8], add_body: bool) -> Map<String, Value> {
        let source = inbox_source(raw);
        let options = BuildOptions {
            add_body_to_header_artifacts: add_body,
            ..BuildOptions::default()
        };
        let container = build_container(&source, &options, &MemoryVault::default()).unwrap();
        let email = container
            .artifacts
            .iter()
            .find(|a| a["name"] == "Email Artifact")
            .unwrap();
        email["cef"].as_object().unwrap().clone()
    }

    /// Bytes that are not UTF-8 (0xff never is), varied so a wrong offset shows.
    fn binary(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| {
                if i % 7 == 0 {
                    0xff
                } else {
                    u8::try_from(i % 251).unwrap()
                }
            })
            .collect()
    }

    #[test]
    fn a_large_binary_attachment_body_part_is_the_first_mib_of_its_base64() {
        let bytes = binary(3 * 1024 * 1024 + 5);
        let cef = email_cef(&with_attachment(&bytes), true);
        let whole = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(cef["bodyPart1"], "hello");
        assert_eq!(
            cef["bodyPart2"].as_str().unwrap(),
            &whole[..MAX_BODY_PART_BYTES]
        );
        assert_eq!(cef["bodyPart2ContentType"], "application/octet-stream");
        assert_eq!(cef["body_base64encoded"], true);
    }

    #[test]
    fn a_small_binary_attachment_body_part_is_its_whole_base64() {
        let bytes = binary(1000);
        let cef = email_cef(&with_attachment(&bytes), true);
        assert_eq!(
            cef["bodyPart2"],
            base64::engine::general_purpose::STANDARD.encode(&bytes)
        );
    }

    #[test]
    fn a_text_attachment_body_part_is_cut_on_a_character() {
        // 'é' is two bytes: the 1 MiB limit falls inside the last one.
        let text = format!("{}é", "a".repeat(MAX_BODY_PART_BYTES - 1));
        let cef = email_cef(&with_attachment(text.as_bytes()), true);
        let part = cef["bodyPart2"].as_str().unwrap();
        assert_eq!(part.len(), MAX_BODY_PART_BYTES - 1);
        assert!(text.starts_with(part));
        assert!(cef.get("body_base64encoded").is_none());
    }

    #[test]
    fn a_long_body_part_is_cut_to_a_mib() {
        let long = "x".repeat(2 * MAX_BODY_PART_BYTES);
        let raw = format!("From: a@example.com\r\nSubject: s\r\n\r\n{long}\r\n");
        let cef = email_cef(raw.as_bytes(), true);
        assert_eq!(
            cef["bodyPart1"].as_str().unwrap(),
            &long[..MAX_BODY_PART_BYTES]
        );
        assert_eq!(cef["bodyPart1ContentType"], "text/plain");
    }

    #[test]
    fn an_attached_outlook_message_gives_email_body_and_vault_artifacts() {
        let msg = include_bytes!("../fixtures/msg/msgreader-attachmentFiles.msg");
        let raw = crate::mime::tests::reporting_msg(msg, "phish.msg");
        let source = inbox_source(&raw);
        let vault = MemoryVault::default();
        let container = build_container(&source, &BuildOptions::default(), &vault).unwrap();
        assert!(container.data.parse_warnings.is_empty());
        let named = |name: &str| -> Vec<&Value> {
            container
                .artifacts
                .iter()
                .filter(|a| a["name"] == name)
                .collect()
        };
        let emails = named("Email Artifact");
        assert_eq!(emails.len(), 2);
        // The Outlook message's transport headers, as an attached message's.
        assert_eq!(
            emails[1]["cef"]["fromEmail"],
            "\"hmailuser\" <hmailuser@hmailserver.test>"
        );
        assert!(emails[1]["cef"].get("emailId").is_none());
        let files: Vec<&Value> = named("Vault Artifact")
            .into_iter()
            .map(|a| &a["cef"]["fileName"])
            .collect();
        assert_eq!(files, ["phish.msg", "jpg.jpg", "png.png", "tif.tif"]);
        let png = &named("Vault Artifact")[2]["cef"];
        assert_eq!(png["fileContentType"], "image/png");
        assert_eq!(
            vault.file(png["vaultId"].as_str().unwrap()).unwrap().len(),
            134
        );
        // Its Received chain is read as an attached message's: one loopback hop, which is
        // internal, so it is on the Email Artifact but gives no IP Artifact.
        let hops = emails[1]["cef"]["receivedHops"].as_array().unwrap();
        assert_eq!(hops.len(), 1);
        assert_eq!(hops[0]["from_ip"], "127.0.0.1");
        assert_eq!(hops[0]["internal"], true);
        assert!(named("IP Artifact").is_empty());
    }

    fn container_of(raw: &[u8]) -> Container {
        let source = inbox_source(raw);
        build_container(&source, &BuildOptions::default(), &MemoryVault::default()).unwrap()
    }

    fn named<'c>(container: &'c Container, name: &str) -> Vec<&'c Value> {
        container
            .artifacts
            .iter()
            .filter(|a| a["name"] == name)
            .collect()
    }

    #[test]
    fn indicators_beyond_the_cap_are_left_out_and_counted_but_no_email_or_file() {
        // Found in this order: the header's IP and From domain, then URLs on hosts of
        // their own (a URL and a domain each), of which the first `fit` fill the cap, then
        // an attached message (its From domain) and two files, one of text holding the
        // first URL again and a new one.
        let fit = (MAX_INDICATOR_ARTIFACTS - 2) / 2;
        let count = fit + 100;
        let mut urls = String::new();
        for i in 0..count {
            write!(urls, "https://h{i}.example.com/\r\n").unwrap();
        }
        let raw = format!(
            "From: a@example.com\r\nSubject: many\r\nX-Originating-IP: 203.0.113.9\r\n\
             Content-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\n{urls}\
             --b\r\nContent-Type: message/rfc822\r\n\r\n\
             From: c@example.net\r\nTo: d@example.com\r\nSubject: inner\r\n\r\nhi\r\n\
             --b\r\nContent-Type: text/plain; name=list.txt\r\n\
             Content-Disposition: attachment; filename=list.txt\r\n\r\n\
             https://h0.example.com/ https://late.example.org/\r\n\
             --b\r\nContent-Type: application/octet-stream; name=x.bin\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nAAECAw==\r\n--b--\r\n"
        );
        // 2 in the header, 2 per URL, example.net, and the file's new URL and its host
        let distinct = 2 + 2 * count + 1 + 2;
        let container = container_of(raw.as_bytes());
        let iocs: Vec<&Value> = container
            .artifacts
            .iter()
            .filter(|a| {
                !matches!(
                    a["name"].as_str(),
                    Some("Email Artifact" | "Vault Artifact")
                )
            })
            .collect();
        assert_eq!(iocs.len(), MAX_INDICATOR_ARTIFACTS);
        assert_eq!(named(&container, "Email Artifact").len(), 2);
        let files: Vec<&Value> = named(&container, "Vault Artifact")
            .iter()
            .map(|a| &a["cef"]["fileName"])
            .collect();
        assert_eq!(files.len(), 3, "{files:?}");
        assert_eq!(container.artifacts.last().unwrap()["run_automation"], true);
        // The first found are kept: the header's IP and domain, then `fit` URLs and their
        // hosts; the attached message's domain and the file's new URL came too late, while
        // the file's h0 URL, kept already, took no room (else one more would be left out).
        let has = |key: &str, value: &str| iocs.iter().any(|a| a["cef"][key] == value);
        assert!(has("sourceAddress", "203.0.113.9"));
        assert!(has("destinationDnsDomain", "example.com"));
        let last = fit - 1;
        assert!(has("requestURL", &format!("https://h{last}.example.com/")));
        assert!(has("destinationDnsDomain", &format!("h{last}.example.com")));
        assert!(!has(
            "requestURL",
            &format!("https://h{}.example.com/", fit + 1)
        ));
        assert!(!has("destinationDnsDomain", "example.net"));
        assert!(!has("requestURL", "https://late.example.org/"));
        let cap = thousands(MAX_INDICATOR_ARTIFACTS);
        assert_eq!(
            container.data.parse_warnings,
            [format!(
                "left out {} indicators (IPs, hashes, URLs, domains) beyond the cap of {cap} \
                 indicator artifacts per container; the first {cap} found were kept",
                distinct - MAX_INDICATOR_ARTIFACTS
            )]
        );
        // the same email gives the same container
        assert_eq!(container_of(raw.as_bytes()), container);
    }

    #[test]
    fn warnings_about_links_beyond_the_first_hundred_are_counted() {
        let mut links = String::new();
        for i in 0..MAX_LINK_WARNINGS + 5 {
            write!(
                links,
                "https://nam01.safelinks.protection.outlook.com/?data={i}\r\n"
            )
            .unwrap();
        }
        let raw = format!("From: a@example.com\r\nSubject: links\r\n\r\n{links}");
        let container = container_of(raw.as_bytes());
        let warnings = &container.data.parse_warnings;
        assert_eq!(warnings.len(), MAX_LINK_WARNINGS + 1);
        assert!(warnings[0].contains("Safe Links link could not be decoded"));
        assert_eq!(
            warnings.last().unwrap(),
            "left out 5 more warnings about links beyond the first 100"
        );
        // the links themselves are well under the indicator cap: all kept as written
        assert_eq!(
            named(&container, "URL Artifact").len(),
            MAX_LINK_WARNINGS + 5
        );
    }

    #[test]
    fn counts_are_written_in_groups_of_three_digits() {
        let written: Vec<String> = [0, 999, 1000, 390_001, 1_234_567]
            .into_iter()
            .map(thousands)
            .collect();
        assert_eq!(written, ["0", "999", "1,000", "390,001", "1,234,567"]);
    }

    #[test]
    fn without_the_option_email_artifacts_carry_no_body_parts() {
        let cef = email_cef(&with_attachment(&binary(5000)), false);
        assert!(
            !cef.keys()
                .any(|k| k.starts_with("bodyPart") || k == "body_base64encoded"),
            "{:?}",
            cef.keys().collect::<Vec<_>>()
        );
    }
}
