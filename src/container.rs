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
        email::{email_artifact, header_value, inline_forward, looks_like_message},
        file::{FileHashes, file_name, vault_artifact},
    },
    extract::{self, ExtractOptions, Indicators},
    mime::{self, Attachment, Event, RawHeader, headers::decode_words},
    sdi::container_sdi,
    vault::{Vault, VaultError},
};

/// Text-like attachments larger than this are vaulted but not scanned for indicators.
pub const MAX_SCANNED_ATTACHMENT_BYTES: usize = 4 * 1024 * 1024;
/// Each `bodyPart<k>` in an Email Artifact is cut to this many bytes (the reference put
/// every attachment, whole, into the artifact).
pub const MAX_BODY_PART_BYTES: usize = 1024 * 1024;

/// Headers whose value is a client or relay IP address.
const IP_HEADERS: &[&str] = &[
    "x-originating-ip",
    "x-sender-ip",
    "x-client-ip",
    "x-forwarded-for",
    "x-real-ip",
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
    vault: &'v mut dyn Vault,
    vault_error: Option<VaultError>,
    found: FoundIndicators,
    messages: Vec<OpenMessage>,
    open: Vec<usize>,
    forwards: Vec<Map<String, Value>>,
    vaults: Vec<Map<String, Value>>,
    attachment_count: usize,
    subject: Option<String>,
}

/// Build the container for one email, storing its attachments through `vault`.
pub fn build_container(
    source: &EmailSource<'_>,
    options: &BuildOptions,
    vault: &mut dyn Vault,
) -> Result<Container, VaultError> {
    let mut collector = Collector {
        options: *options,
        email_id: source.email_id,
        container_id: source.container_id,
        vault,
        vault_error: None,
        found: FoundIndicators::default(),
        messages: Vec::new(),
        open: Vec::new(),
        forwards: Vec::new(),
        vaults: Vec::new(),
        attachment_count: 0,
        subject: None,
    };
    let warnings = mime::walk(source.raw, options.max_depth, &mut |event| {
        collector.on_event(event);
    });
    if let Some(error) = collector.vault_error {
        return Err(error);
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
        self.scan_headers(headers, place);
        // The root always gets its artifact (it carries emailId); attached messages only
        // when they look like mail, as in the reference.
        let artifact = if depth == 0 {
            Some(email_artifact(headers, Some(self.email_id)))
        } else {
            looks_like_message(headers).then(|| email_artifact(headers, None))
        };
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
    /// own headers.
    fn scan_headers(&mut self, headers: &[RawHeader], place: &str) {
        let opts = self.options.extract;
        for header in headers {
            let lower = header.name.to_ascii_lowercase();
            let mut found = Indicators::default();
            if lower == "received" {
                extract::scan_received(&header.value, &opts, &mut found);
            } else if IP_HEADERS.contains(&lower.as_str()) {
                extract::scan_ip_header(&header.value, &opts, &mut found);
            } else if ADDRESS_HEADERS.contains(&lower.as_str()) && opts.domains {
                let domains_only = ExtractOptions {
                    domains: true,
                    ..ExtractOptions::NONE
                };
                extract::scan_text(&decode_words(&header.value), &domains_only, &mut found);
            } else {
                continue;
            }
            self.found
                .add_elsewhere(format!("{place} {}", header.name), found);
        }
    }

    fn on_body(&mut self, depth: usize, text: &str, html: bool) {
        let opts = self.options.extract;
        if html {
            extract::scan_html(text, &opts, &mut self.found.body);
        } else {
            extract::scan_text(text, &opts, &mut self.found.body);
            if let Some(headers) = inline_forward(text).filter(|_| depth == 0) {
                self.scan_headers(&headers, "forwarded message header");
                self.forwards
                    .push(email_artifact(&headers, Some(self.email_id)));
            }
        }
        let content_type = if html { "text/html" } else { "text/plain" };
        self.add_leaf(Value::String(text.to_owned()), content_type, false);
    }

    fn on_attachment(&mut self, attachment: &Attachment<'_>) {
        self.attachment_count += 1;
        let name = file_name(attachment, self.attachment_count);
        if attachment.text_like && attachment.bytes.len() <= MAX_SCANNED_ATTACHMENT_BYTES {
            let text = mime::headers::bytes_to_text(&attachment.bytes);
            let mut found = Indicators::default();
            let html = attachment.content_type.contains("html")
                || std::path::Path::new(&name).extension().is_some_and(|e| {
                    e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm")
                });
            if html {
                extract::scan_html(&text, &self.options.extract, &mut found);
            } else {
                extract::scan_text(&text, &self.options.extract, &mut found);
            }
            self.found
                .add_elsewhere(format!("attachment {name}"), found);
        }
        if !attachment.is_message {
            // Binary leaves go in base64, flagged, as in the reference.
            let (value, base64) = if let Ok(text) = std::str::from_utf8(&attachment.bytes) {
                (text.to_owned(), false)
            } else {
                use base64::Engine as _;
                (
                    base64::engine::general_purpose::STANDARD.encode(&attachment.bytes),
                    true,
                )
            };
            self.add_leaf(Value::String(value), &attachment.content_type, base64);
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

    /// Record a leaf for `bodyPart<k>` on every open message it belongs to.
    fn add_leaf(&mut self, value: Value, content_type: &str, base64: bool) {
        if !self.options.add_body_to_header_artifacts {
            return;
        }
        let value = match value {
            Value::String(s) if s.len() > MAX_BODY_PART_BYTES => {
                let mut cut = MAX_BODY_PART_BYTES;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                Value::String(s[..cut].to_owned())
            }
            other => other,
        };
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
