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
    state::{LedgerEntry, NewLedgerEntry, StateError, StateStore},
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
    pub vault: &'a dyn Vault,
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

/// How a message is recognised in the ledger.
#[derive(Debug, Clone)]
pub struct Identity {
    /// SHA-256 of the raw message, hex.
    pub sha256: String,
    /// Its `Message-ID`, when it has one.
    pub message_id: Option<String>,
}

impl Identity {
    /// The identity of a raw message.
    pub fn of(raw: &[u8]) -> Self {
        Identity {
            sha256: hex(&Sha256::digest(raw)),
            message_id: mail_parser::MessageParser::default()
                .parse_headers(raw)
                .and_then(|m| m.message_id().map(str::to_owned)),
        }
    }
}

/// The message's ledger entry when it was ingested before: its container and id, as
/// [`hand_back`] hands it on.
pub fn find_existing(
    store: &mut dyn StateStore,
    identity: &Identity,
) -> Result<Option<(Option<Container>, i64)>, IngestError> {
    let storage = |e: StateError| IngestError::Storage(e.to_string());
    let Some(existing) = store
        .find_by_message(identity.message_id.as_deref(), &identity.sha256)
        .map_err(storage)?
    else {
        return Ok(None);
    };
    let id = existing.id;
    Ok(Some((hand_back(store, existing).map_err(storage)?, id)))
}

/// A ledger entry's container (when the ledger keeps containers) going out again:
/// flagged `duplicate`, or `redelivered` when the run that committed it never delivered
/// it, which this run then claims.
pub fn hand_back(
    store: &mut dyn StateStore,
    existing: LedgerEntry,
) -> Result<Option<Container>, StateError> {
    if existing.undelivered {
        store.claim_container(existing.id)?;
    }
    Ok(existing.container.map(|mut c| {
        if existing.undelivered {
            c.redelivered = true;
        } else {
            c.duplicate = true;
        }
        c
    }))
}

/// What building a container needs, shared by the threads of a poll that build a
/// batch's containers at once.
#[derive(Clone, Copy)]
pub struct Builder<'a> {
    /// The asset configuration.
    pub config: &'a Config,
    /// The container label.
    pub label: &'a str,
    /// Where attachments go (flushed by the caller before it commits).
    pub vault: &'a dyn Vault,
}

/// One message to build a container for: fetched from `folder` (as typed; hashed into
/// the SDI), not in the ledger, with container id `id`.
pub struct ToBuild {
    /// The message.
    pub message: FetchedMessage,
    /// How the ledger will recognise it.
    pub identity: Identity,
    /// Only its headers were fetched: it is over `max_email_size_mb`.
    pub oversize: bool,
    /// Its container id.
    pub id: i64,
}

impl Builder<'_> {
    /// Build the ledger entry of one message not yet ingested.
    pub fn build(&self, job: ToBuild, folder: &str) -> Result<NewLedgerEntry, IngestError> {
        let ToBuild {
            message,
            identity,
            oversize,
            id,
        } = job;
        let config = self.config;
        let source = EmailSource {
            raw: &message.raw,
            email_id: u64::from(message.uid),
            folder,
            container_id: Some(id),
            label: self.label,
        };
        let options = build_options(config);
        // The pipeline is built never to panic; should a bug prove otherwise, this
        // message is recorded as failed and the others are still ingested.
        let built = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            build_container(&source, &options, self.vault)
        }))
        .map_err(|_| {
            IngestError::Message(
                "internal error while parsing (a bug: please report it with the email)".to_owned(),
            )
        })?;
        // The pipeline's only error is a vault write that failed.
        let mut container = built.map_err(|e| IngestError::Storage(e.to_string()))?;
        if oversize {
            container.data.parse_warnings.push(format!(
                "message is {} bytes, over config.max_email_size_mb ({} MB): only its headers were fetched",
                message.size, config.max_email_size_mb
            ));
        }
        NewLedgerEntry::new(message.uid, identity.message_id, identity.sha256, container)
            .map_err(|e| IngestError::Message(format!("cannot serialize its container: {e}")))
    }
}

/// Ingest one message fetched from `folder` (as typed; hashed into the SDI): recognise
/// it in the ledger by SHA-256 and Message-ID, or build its container with the next id
/// from `ids`. The caller flushes the vault before committing the entry.
pub fn ingest(
    ctx: &mut IngestContext<'_>,
    message: FetchedMessage,
    folder: &str,
    oversize: bool,
    ids: &mut std::ops::Range<i64>,
) -> Result<Ingested, IngestError> {
    let identity = Identity::of(&message.raw);
    if let Some((container, id)) = find_existing(&mut *ctx.store, &identity)? {
        return Ok(Ingested::Duplicate(container, id));
    }
    let id = match ids.next() {
        Some(id) => id,
        None => ctx
            .store
            .next_container_id()
            .map_err(|e| IngestError::Storage(e.to_string()))?,
    };
    let builder = Builder {
        config: ctx.config,
        label: ctx.label,
        vault: ctx.vault,
    };
    let job = ToBuild {
        message,
        identity,
        oversize,
        id,
    };
    builder.build(job, folder).map(Ingested::New)
}
