//! Poll state and the container ledger: the one seam through which the poll remembers.
//!
//! The poll reads where it stopped ([`Position`] per folder hash and UIDVALIDITY), which
//! UIDs still wait ([`StateStore::pending`], the latest-first overflow) or failed
//! ([`FailedUid`]), and which mails it already turned into containers (the ledger). It
//! writes all of that back through [`StateStore::commit_batch`], which stores a batch's
//! containers and the position that covers them in one transaction: killed at any
//! instant, the next poll neither loses a mail nor creates a second container for it.
//!
//! Two stores implement the seam: [`SqliteStore`], one `SQLite` file under `data_dir`
//! shared by all assets and locked per asset, and [`MemoryStore`] for stateless runs,
//! read from and written back to the request's `state` object.

mod lock;
mod memory;
mod schema;
mod sqlite;

use std::path::PathBuf;

use crate::{config::AfterIngest, container::Container, secret::Secret};

pub use crate::imap::uid_set::{MAX_UID_SET_LEN, decode_uid_set, encode_uid_set};
pub use lock::AssetLock;
pub use memory::{MemoryStore, STATE_FORMAT};
pub use schema::SCHEMA_VERSION;
pub use sqlite::{DATABASE_FILE, DEFAULT_LOCK_WAIT, SqliteStore};

/// The UIDVALIDITY of a position carried over from the reference app, which never
/// recorded one.
///
/// RFC 3501 makes UIDVALIDITY a non-zero number, so 0 cannot clash with a real one. The
/// poll reads such a position with `position(folder_hash, LEGACY_UIDVALIDITY)` when it
/// has none for the server's current UIDVALIDITY, and adopts it: the first
/// [`StateStore::commit_batch`] for that folder under a real UIDVALIDITY removes it.
pub const LEGACY_UIDVALIDITY: u32 = 0;

/// Where the poll of one folder, under one UIDVALIDITY, stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The lowest UID not yet considered; everything below it is ingested, pending or
    /// failed. The reference app's `next_muid`.
    pub next_uid: u32,
    /// A scheduled poll of this folder has completed, so later polls take `max_emails`
    /// instead of `first_run_max_emails`. The reference app's `first_run` negated.
    pub first_run_done: bool,
}

impl Default for Position {
    fn default() -> Self {
        Self {
            next_uid: 1,
            first_run_done: false,
        }
    }
}

/// A UID that could not be ingested, kept so it is neither retried forever in the way
/// of newer mail nor forgotten.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FailedUid {
    /// The message's UID.
    pub uid: u32,
    /// Why it failed, for the summary and for the analyst.
    pub reason: String,
    /// How many polls tried it.
    pub attempts: u32,
}

/// The complete poll state of one folder under one UIDVALIDITY, as a batch leaves it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FolderProgress {
    /// The new position.
    pub position: Position,
    /// UIDs below `position.next_uid` still to ingest, any order (stored ascending).
    pub pending: Vec<u32>,
    /// UIDs that failed, with their reasons.
    pub failed: Vec<FailedUid>,
}

/// An attachment file a ledger container refers to, for the vault index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultFile {
    /// SHA-1 hex of the bytes: the vault id.
    pub vault_id: String,
    /// The attachment's own name (metadata only).
    pub file_name: String,
    /// Size in bytes.
    pub size: u64,
}

impl VaultFile {
    /// The files named by a container's Vault Artifacts.
    pub fn from_container(container: &Container) -> Vec<VaultFile> {
        container
            .artifacts
            .iter()
            .filter(|a| a["name"] == "Vault Artifact")
            .filter_map(|a| {
                let cef = &a["cef"];
                Some(VaultFile {
                    vault_id: cef["vaultId"].as_str()?.to_owned(),
                    file_name: cef["fileName"].as_str().unwrap_or_default().to_owned(),
                    size: cef["fileSize"].as_u64().unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// One container to add to the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct NewLedgerEntry {
    /// The message's UID in the batch's folder and UIDVALIDITY.
    pub uid: u32,
    /// The `Message-ID` header, when the message has one.
    pub message_id: Option<String>,
    /// SHA-256 hex of the raw message bytes.
    pub sha256: String,
    /// The container; its `id` must be one from [`StateStore::reserve_container_ids`].
    pub container: Container,
    /// Its attachments, for the vault index (see [`VaultFile::from_container`]).
    pub vault_files: Vec<VaultFile>,
    /// The container's JSON, as the ledger stores it and the response carries it:
    /// serialized once, on the thread that built it.
    pub json: String,
}

impl NewLedgerEntry {
    /// The entry for `container`, its vault files and its JSON.
    pub fn new(
        uid: u32,
        message_id: Option<String>,
        sha256: String,
        container: Container,
    ) -> Result<Self, serde_json::Error> {
        Ok(NewLedgerEntry {
            uid,
            message_id,
            sha256,
            vault_files: VaultFile::from_container(&container),
            json: container_json(&container)?,
            container,
        })
    }
}

/// Everything one batch changes, committed atomically by [`StateStore::commit_batch`].
#[derive(Debug, Clone, PartialEq)]
pub struct BatchCommit {
    /// The folder hash the batch was fetched from.
    pub folder_hash: String,
    /// The folder's UIDVALIDITY when it was fetched (never [`LEGACY_UIDVALIDITY`]).
    pub uidvalidity: u32,
    /// New containers.
    pub entries: Vec<NewLedgerEntry>,
    /// The folder's new poll state; `None` leaves it as it is (Poll Now, get email).
    pub progress: Option<FolderProgress>,
    /// What to do to each new container's mail once the container is delivered
    /// (`after_ingest`), in the folder of that name (as typed); `None` for nothing.
    pub after_ingest: Option<(String, AfterIngest)>,
}

/// Mail whose containers were delivered, waiting for one mailbox action
/// (`after_ingest`): the UIDs of one folder under one UIDVALIDITY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxAction {
    /// The folder, as typed.
    pub folder: String,
    /// Its UIDVALIDITY when the mail was fetched: under another, the UIDs mean nothing.
    pub uidvalidity: u32,
    /// What to do (never [`AfterIngest::None`]).
    pub action: AfterIngest,
    /// The mail, ascending.
    pub uids: Vec<u32>,
}

/// A container the ledger knows.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    /// The container id.
    pub id: i64,
    /// Its source data identifier.
    pub sdi: String,
    /// The mail's `Message-ID`, when it had one.
    pub message_id: Option<String>,
    /// SHA-256 hex of the raw mail.
    pub sha256: String,
    /// The whole container (raw email and artifacts included). `None` from a
    /// [`MemoryStore`] for entries of earlier runs: stateless state keeps only the keys.
    pub container: Option<Container>,
    /// An earlier run committed it but never delivered its response whole (see
    /// [`StateStore::claim_undelivered`]), and this run has not claimed it yet.
    pub undelivered: bool,
}

/// Poll state, ledger and token storage for one asset.
///
/// Lookups never change anything; [`StateStore::commit_batch`] is the only write of poll
/// state, so a run that dies before it leaves the previous state intact.
pub trait StateStore {
    /// The saved position of `folder_hash` under `uidvalidity`, if any.
    fn position(&self, folder_hash: &str, uidvalidity: u32)
    -> Result<Option<Position>, StateError>;

    /// Every UIDVALIDITY the folder has a position under, ascending, without
    /// [`LEGACY_UIDVALIDITY`]: a non-empty list without the server's current one means
    /// UIDVALIDITY changed.
    fn known_uidvalidities(&self, folder_hash: &str) -> Result<Vec<u32>, StateError>;

    /// UIDs still to ingest below the position (the latest-first overflow), ascending.
    fn pending(&self, folder_hash: &str, uidvalidity: u32) -> Result<Vec<u32>, StateError>;

    /// UIDs that failed, ascending by UID.
    fn failed(&self, folder_hash: &str, uidvalidity: u32) -> Result<Vec<FailedUid>, StateError>;

    /// The newest container with this source data identifier.
    fn find_container(&self, sdi: &str) -> Result<Option<LedgerEntry>, StateError>;

    /// The container of the mail at this UID, if it was ingested.
    fn find_by_uid(
        &self,
        folder_hash: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> Result<Option<LedgerEntry>, StateError>;

    /// The container of the same mail ingested before (under another UID or UIDVALIDITY,
    /// or from another folder of this asset): the SHA-256 of the raw bytes must match,
    /// and the `Message-ID` too when the mail has one.
    fn find_by_message(
        &self,
        message_id: Option<&str>,
        sha256: &str,
    ) -> Result<Option<LedgerEntry>, StateError>;

    /// The container with this id, for `get email` by `container_id`.
    fn container_by_id(&self, id: i64) -> Result<Option<LedgerEntry>, StateError>;

    /// Reserve `count` container ids: positive, increasing, never handed out again even
    /// if the run dies before using them. The reservation is durable on return.
    fn reserve_container_ids(&mut self, count: u32) -> Result<std::ops::Range<i64>, StateError>;

    /// Reserve one container id.
    fn next_container_id(&mut self) -> Result<i64, StateError> {
        Ok(self.reserve_container_ids(1)?.start)
    }

    /// Store a batch's containers, their vault index rows and the folder's new progress
    /// in one transaction: all of it is durable on return, or none of it is.
    fn commit_batch(&mut self, batch: &BatchCommit) -> Result<(), StateError>;

    /// The containers of `folder_hash` that runs of this asset committed but never
    /// delivered (each run's response was cut off: killed, crashed, stdout closed), by
    /// ascending id. From now on they belong to this run's delivery: the run hands them
    /// out again, and [`StateStore::confirm_delivery`] settles them with its own.
    ///
    /// Delivery is at least once: a container counts as delivered only once the whole
    /// response that carries it was written, so one killed after that point is sent
    /// again, under the same source data identifiers, which the platform deduplicates.
    fn claim_undelivered(&mut self, folder_hash: &str) -> Result<Vec<i64>, StateError>;

    /// Claim one undelivered container found by a lookup (see
    /// [`LedgerEntry::undelivered`]) for this run's delivery.
    fn claim_container(&mut self, id: i64) -> Result<(), StateError>;

    /// This run's whole response has been written: every container it committed or
    /// claimed is delivered. Returns how many were.
    fn confirm_delivery(&mut self) -> Result<u64, StateError>;

    /// The mailbox actions whose containers are delivered, by folder, UIDVALIDITY and
    /// action: due now. (Those of undelivered containers wait: moving mail whose
    /// container never reached anyone would lose it.)
    fn due_actions(&self) -> Result<Vec<MailboxAction>, StateError>;

    /// These actions are done (or can never be: the UIDs are stale): forget them.
    fn actions_done(&mut self, done: &MailboxAction) -> Result<(), StateError>;

    /// A secret blob (OAuth tokens as JSON text) stored under `key`.
    fn get_secret_blob(&self, key: &str) -> Result<Option<Secret>, StateError>;

    /// Store (or with `None` delete) the secret blob under `key`, durably.
    fn put_secret_blob(&mut self, key: &str, blob: Option<&Secret>) -> Result<(), StateError>;
}

/// What to do about a corrupt or emptied state database (see [`StateError::Corrupt`]).
const RECOVERY: &str = "nothing was changed. Move it aside with its -wal and -shm files if there are any (keep them for inspection), and restore it from a backup if you have one. Without a backup, the next run starts a new database: the folder is ingested again from its first email, each under the source data identifier it had before, so the platform recognises the containers it already has instead of creating duplicates; stored OAuth tokens are lost too (run `soar-imap oauth login` again unless config.refresh_token is set)";

/// Why state could not be read or written. Messages name the file or asset and never
/// carry a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Another run holds the asset's lock.
    #[error(
        "another soar-imap run is using asset \"{asset_id}\" (lock {}, waited {waited_ms} ms); try again when it finishes",
        lock.display()
    )]
    Busy {
        /// The asset.
        asset_id: String,
        /// The lock file.
        lock: PathBuf,
        /// How long this run waited.
        waited_ms: u128,
    },
    /// A file or directory of the state store could not be created or opened.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was attempted, e.g. `create state directory`.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    // Neither a corrupt nor an emptied database is ever replaced by the connector: a
    // SOC engineer expects to be told, not to find the whole folder ingested again
    // behind their back, and the file may be restorable. What the message tells them
    // to do loses nothing and shows the platform no duplicate: a backup resumes from
    // where it stood; without one, a new database takes the folder from its first
    // email again. Either way mail is sent again only with the very container and
    // artifact source data identifiers it had before, which is what the platform
    // deduplicates on (tests/it/faults.rs checks they are identical).
    /// The database file is not a readable `SQLite` database.
    #[error(
        "state database {} is unreadable or corrupt ({source}); {RECOVERY}",
        path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The database file is empty: its contents were lost.
    #[error(
        "state database {} is empty: its contents were lost (truncated, or the disk or file system failed); {RECOVERY}",
        path.display()
    )]
    Empty {
        /// The database file.
        path: PathBuf,
    },
    /// The database file is gone but its write-ahead log is not: `SQLite` would replay
    /// that log into a new database, mixing old pages into it.
    #[error(
        "state database {} is missing but its write-ahead log {} is still there; move the log aside too (with the -shm file if there is one), or put the database back",
        path.display(),
        journal.display()
    )]
    StrayJournal {
        /// The missing database file.
        path: PathBuf,
        /// Its write-ahead log.
        journal: PathBuf,
    },
    /// The database was written by a newer soar-imap.
    #[error(
        "state database {} has schema version {found}, newer than the {supported} this soar-imap supports; upgrade soar-imap",
        path.display()
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// A database operation failed.
    #[error("cannot {action} in state database {}: {source}", path.display())]
    Database {
        /// What was attempted.
        action: &'static str,
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored value cannot be read back (a hand-edited or damaged row).
    #[error(
        "state database {} holds an unreadable {what} (damaged, or edited by hand); {RECOVERY}",
        path.display()
    )]
    BadRow {
        /// The database file.
        path: PathBuf,
        /// Which row, e.g. `container 12`.
        what: String,
    },
    /// The request's `state` object is not one this connector understands.
    #[error("{key} is invalid: {problem}")]
    InvalidState {
        /// The offending key as a JSON path, e.g. `state.folders.<hash>.next_uid`.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The caller passed an inconsistent batch (a bug in the caller, not in the data).
    #[error("invalid state batch for asset \"{asset_id}\": {problem}")]
    InvalidBatch {
        /// The asset.
        asset_id: String,
        /// What is wrong.
        problem: String,
    },
}

/// Checks shared by both stores, before anything is written.
fn validate_batch(
    batch: &BatchCommit,
    asset_id: &str,
    next_free_id: i64,
) -> Result<(), StateError> {
    let invalid = |problem: String| StateError::InvalidBatch {
        asset_id: asset_id.to_owned(),
        problem,
    };
    if batch.uidvalidity == LEGACY_UIDVALIDITY {
        return Err(invalid(
            "uidvalidity 0 is not a server's UIDVALIDITY".into(),
        ));
    }
    if batch.folder_hash.is_empty() {
        return Err(invalid("empty folder hash".into()));
    }
    for entry in &batch.entries {
        match entry.container.id {
            Some(id) if id > 0 && id < next_free_id => {}
            Some(id) => return Err(invalid(format!("container id {id} was never reserved"))),
            None => {
                return Err(invalid(format!("container of uid {} has no id", entry.uid)));
            }
        }
        let hex = entry.sha256.len() == 64 && entry.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex {
            return Err(invalid(format!(
                "sha256 of uid {} is not 64 hex digits",
                entry.uid
            )));
        }
    }
    if let Some(progress) = &batch.progress {
        if progress.position.next_uid == 0 {
            return Err(invalid("next_uid 0 (UIDs start at 1)".into()));
        }
        if progress.pending.len() > MAX_UID_SET_LEN {
            return Err(invalid(format!(
                "{} pending UIDs, more than the {MAX_UID_SET_LEN} kept",
                progress.pending.len()
            )));
        }
    }
    Ok(())
}

/// The container JSON kept in the ledger, with its id (it is the ledger's key).
fn container_json(container: &Container) -> Result<String, serde_json::Error> {
    serde_json::to_string(container)
}

/// Parse a stored container; `None` when it is not a container.
fn parse_container(text: &str) -> Option<Container> {
    serde_json::from_str::<Container>(text).ok()
}

use crate::protocol::json_type;

#[cfg(test)]
pub(crate) mod test_support {
    //! Builders shared by the store tests.
    use super::*;

    /// Reserve ids and commit one entry per uid, moving the position past them.
    pub fn ingest(store: &mut dyn StateStore, uidvalidity: u32, uids: &[u32]) -> Vec<i64> {
        let ids = store
            .reserve_container_ids(u32::try_from(uids.len()).unwrap())
            .unwrap();
        let entries = ids
            .clone()
            .zip(uids)
            .map(|(id, &uid)| entry(id, uid, &format!("m{uid}")))
            .collect();
        let next = uids.iter().max().map_or(1, |u| u + 1);
        store
            .commit_batch(&batch(uidvalidity, entries, next))
            .unwrap();
        ids.collect()
    }
    use crate::container::ContainerData;

    /// A small container with one Vault Artifact.
    pub fn container(id: i64, uid: u32, subject: &str) -> Container {
        Container {
            id: Some(id),
            name: subject.to_owned(),
            source_data_identifier: format!("af1cd994dfcb9286c394d142687ff5a0 : {uid}"),
            label: "email".into(),
            run_automation: false,
            data: ContainerData {
                raw_email: format!("Subject: {subject}\r\n\r\nbody"),
                raw_email_encoding: None,
                parse_warnings: Vec::new(),
            },
            artifacts: vec![serde_json::json!({
                "name": "Vault Artifact",
                "cef": {"vaultId": "a9993e364706816aba3e25717850c26c9cd0d89d",
                        "fileName": "a.txt", "fileSize": 3},
                "run_automation": true,
            })],
            duplicate: false,
            redelivered: false,
        }
    }

    /// A ledger entry for `container(id, uid, subject)`.
    pub fn entry(id: i64, uid: u32, subject: &str) -> NewLedgerEntry {
        use sha2::Digest as _;
        let container = container(id, uid, subject);
        NewLedgerEntry::new(
            uid,
            Some(format!("<{subject}@example.com>")),
            // The ledger checks the stored email against it when reading.
            crate::sdi::hex(&sha2::Sha256::digest(container.data.raw_email.as_bytes())),
            container,
        )
        .unwrap()
    }

    /// A batch that moves the folder to `next_uid`.
    pub fn batch(uidvalidity: u32, entries: Vec<NewLedgerEntry>, next_uid: u32) -> BatchCommit {
        BatchCommit {
            folder_hash: "af1cd994dfcb9286c394d142687ff5a0".into(),
            uidvalidity,
            entries,
            after_ingest: None,
            progress: Some(FolderProgress {
                position: Position {
                    next_uid,
                    first_run_done: true,
                },
                pending: vec![2, 3, 10],
                failed: vec![FailedUid {
                    uid: 4,
                    reason: "message too large".into(),
                    attempts: 1,
                }],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_files_come_from_vault_artifacts() {
        let files = VaultFile::from_container(&test_support::container(1, 5, "s"));
        assert_eq!(
            files,
            vec![VaultFile {
                vault_id: "a9993e364706816aba3e25717850c26c9cd0d89d".into(),
                file_name: "a.txt".into(),
                size: 3,
            }]
        );
    }

    #[test]
    fn batches_with_unreserved_ids_or_legacy_uidvalidity_are_refused() {
        let good = test_support::batch(7, vec![test_support::entry(1, 5, "a")], 6);
        assert!(validate_batch(&good, "a", 2).is_ok());
        let err = validate_batch(&good, "a", 1).unwrap_err();
        assert!(err.to_string().contains("never reserved"), "{err}");
        let legacy = BatchCommit {
            uidvalidity: LEGACY_UIDVALIDITY,
            ..good.clone()
        };
        assert!(validate_batch(&legacy, "a", 2).is_err());
        let mut bad_hash = good;
        bad_hash.entries[0].sha256 = "abc".into();
        assert!(validate_batch(&bad_hash, "a", 2).is_err());
    }
}
