//! What `on poll` and `get email` share: opening a session, and turning one fetched
//! message into a new ledger entry or recognising it as already ingested.

use sha2::{Digest as _, Sha256};

use super::connect::SessionSource;
use crate::{
    config::Config,
    container::{BuildOptions, Container, EmailSource, build_container},
    extract::ExtractOptions,
    imap::FetchedMessage,
    sdi::hex,
    state::{NewLedgerEntry, StateStore, VaultFile},
    vault::Vault,
};

/// What an ingesting action works with.
pub struct IngestContext<'a> {
    /// The asset configuration.
    pub config: &'a Config,
    /// The container label.
    pub label: &'a str,
    /// Poll state, ledger and tokens.
    pub store: &'a mut dyn StateStore,
    /// Where attachments go.
    pub vault: &'a mut dyn Vault,
    /// How to reach the mailbox: a [`super::connect::Connector`] in production, a
    /// scripted or in-memory session in tests.
    pub open: &'a dyn SessionSource,
}

/// The pipeline options from the asset's `extract_*` and body flags.
pub fn build_options(config: &Config) -> BuildOptions {
    BuildOptions {
        extract: ExtractOptions {
            urls: config.extract.urls,
            domains: config.extract.domains,
            ips: config.extract.ips,
            hashes: config.extract.hashes,
        },
        attachments: config.extract.attachments,
        add_body_to_header_artifacts: config.add_body_to_header_artifacts,
        ..BuildOptions::default()
    }
}

/// The outcome of ingesting one message.
pub enum Ingested {
    /// A new container, to commit to the ledger.
    New(NewLedgerEntry),
    /// Already in the ledger: its container flagged `duplicate` (when the ledger keeps
    /// containers), and its id.
    Duplicate(Option<Container>, i64),
}

/// Why a message was not ingested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestError {
    /// Something in this message (a bug its content met): the poll records it as failed
    /// and goes on with the others.
    Message(String),
    /// The state store or the vault failed (disk full, read-only, out of inodes, I/O
    /// error). Not the message's fault: recording it as failed would skip it for good
    /// once the disk is fixed, and the next message would fail the same way, so the
    /// poll stops and leaves the message queued.
    Storage(String),
}

impl std::fmt::Display for IngestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IngestError::Message(reason) | IngestError::Storage(reason) => f.write_str(reason),
        }
    }
}

impl From<IngestError> for String {
    fn from(error: IngestError) -> String {
        error.to_string()
    }
}

/// Ingest one message fetched from `folder` (as typed; hashed into the SDI): recognise
/// it in the ledger by SHA-256 and Message-ID, or build its container with the next id
/// from `ids`.
pub fn ingest(
    ctx: &mut IngestContext<'_>,
    message: &FetchedMessage,
    folder: &str,
    oversize: bool,
    ids: &mut std::ops::Range<i64>,
) -> Result<Ingested, IngestError> {
    let storage = |e: &dyn std::fmt::Display| IngestError::Storage(e.to_string());
    let config = ctx.config;
    let sha256 = hex(&Sha256::digest(&message.raw));
    let message_id = mail_parser::MessageParser::default()
        .parse_headers(&message.raw)
        .and_then(|m| m.message_id().map(str::to_owned));
    if let Some(existing) = ctx
        .store
        .find_by_message(message_id.as_deref(), &sha256)
        .map_err(|e| storage(&e))?
    {
        let container = existing.container.map(|mut c| {
            c.duplicate = true;
            c
        });
        return Ok(Ingested::Duplicate(container, existing.id));
    }
    let id = match ids.next() {
        Some(id) => id,
        None => ctx.store.next_container_id().map_err(|e| storage(&e))?,
    };
    let source = EmailSource {
        raw: &message.raw,
        email_id: u64::from(message.uid),
        folder,
        container_id: Some(id),
        label: ctx.label,
    };
    let options = build_options(config);
    let vault = &mut *ctx.vault;
    // The pipeline is built never to panic; should a bug prove otherwise, this message
    // is recorded as failed and the others are still ingested.
    let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        build_container(&source, &options, vault)
    }))
    .map_err(|_| {
        IngestError::Message(
            "internal error while parsing (a bug: please report it with the email)".to_owned(),
        )
    })?;
    // The pipeline's only error is a vault write that failed.
    let mut container = built.map_err(|e| storage(&e))?;
    if oversize {
        container.data.parse_warnings.push(format!(
            "message is {} bytes, over config.max_email_size_mb ({} MB): only its headers were fetched",
            message.size, config.max_email_size_mb
        ));
    }
    let vault_files = VaultFile::from_container(&container);
    Ok(Ingested::New(NewLedgerEntry {
        uid: message.uid,
        message_id,
        sha256,
        container,
        vault_files,
    }))
}
