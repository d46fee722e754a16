//! The stateless store: state comes in with the request and goes back in the response.
//!
//! # The `state` object (format 1)
//!
//! ```json
//! {
//!   "soar_imap_state": 1,
//!   "first_run": false,
//!   "next_muid": 43,
//!   "folders": {
//!     "af1cd994dfcb9286c394d142687ff5a0": {
//!       "uidvalidity": 1700000000, "next_uid": 43, "first_run_done": true,
//!       "pending": "1:20,22",
//!       "failed": [{"uid": 21, "reason": "message too large", "attempts": 1}]
//!     }
//!   },
//!   "next_container_id": 13,
//!   "ledger": [{"id": 12, "sdi": "af1cd994dfcb9286c394d142687ff5a0 : 42",
//!               "message_id": "<a@b>", "sha256": "…64 hex…",
//!               "folder_hash": "af1cd994dfcb9286c394d142687ff5a0",
//!               "uidvalidity": 1700000000, "uid": 42}],
//!   "secrets": {"oauth_token": "{\"access_token\": …}"},
//!   "mailbox_actions": [{"folder": "INBOX", "uidvalidity": 1700000000,
//!                        "action": "move", "target": "Processed", "uids": "40:42"}],
//!   "app_version": "…"
//! }
//! ```
//!
//! - `first_run` and `next_muid` are the reference app's keys, written for the configured
//!   folder so an asset can go back and forth; this store reads them only from a state
//!   without `folders` (one the reference wrote), as a position whose UIDVALIDITY is
//!   unknown ([`super::LEGACY_UIDVALIDITY`]). Its 4.0 `pending_email_uids` list and an
//!   unencrypted `oauth_token` object are imported the same way.
//! - `folders` holds one position per folder hash: the one of its latest UIDVALIDITY
//!   (`null` for a carried-over one). `pending` is an IMAP sequence set.
//! - `ledger` keeps only the keys that recognise an ingested mail, never the container
//!   (the platform has it), so [`LedgerEntry::container`] is `None` for earlier runs.
//! - `secrets` holds token blobs as text. They are in the response only because in a
//!   stateless run the platform owns, and protects, the state.
//! - `mailbox_actions` (only when there are some) are the `after_ingest` actions of the
//!   containers a run returned: due once the caller passes this state back, which shows
//!   it stored the response that carried them.
//! - Keys this store does not own (`app_version`, ...) are passed through unchanged.

use std::{collections::BTreeMap, ops::Range};

use serde_json::{Map, Value, json};

use super::{
    BatchCommit, FailedUid, LEGACY_UIDVALIDITY, LedgerEntry, MailboxAction, Position, StateError,
    StateStore, decode_uid_set, encode_uid_set, json_type, validate_batch,
};
use crate::{config::AfterIngest, secret::Secret};

/// The version of the `state` layout this build reads and writes.
pub const STATE_FORMAT: u64 = 1;

/// Keys of the reference app this store consumes and rewrites.
const LEGACY_KEYS: &[&str] = &["first_run", "next_muid", "pending_email_uids"];
/// Keys this store writes.
const OWN_KEYS: &[&str] = &[
    "soar_imap_state",
    "first_run",
    "next_muid",
    "folders",
    "next_container_id",
    "ledger",
    "secrets",
    "mailbox_actions",
];

/// One folder's poll state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FolderState {
    uidvalidity: u32,
    position: Position,
    pending: Vec<u32>,
    failed: Vec<FailedUid>,
}

/// A ledger entry with where its mail was.
#[derive(Debug, Clone, PartialEq)]
struct Recorded {
    entry: LedgerEntry,
    folder_hash: String,
    uidvalidity: u32,
    uid: u32,
}

/// The [`StateStore`] of a stateless run.
#[derive(Debug, Clone)]
pub struct MemoryStore {
    folder_hash: String,
    folders: BTreeMap<String, FolderState>,
    ledger: Vec<Recorded>,
    next_container_id: i64,
    secrets: BTreeMap<String, Secret>,
    extra: Map<String, Value>,
    /// Mailbox actions the request's state carried: the caller stored the state of a
    /// complete response, so their containers were delivered and they are due.
    due: Vec<MailboxAction>,
    /// Mailbox actions of this run's containers: due once the caller passes the
    /// returned state back.
    planned: Vec<MailboxAction>,
}

/// One `mailbox_actions` item: `{"folder", "uidvalidity", "action", "target"?, "uids"}`.
fn parse_action(item: &Value, key: &str) -> Result<MailboxAction, StateError> {
    let field = |name: &str| (&item[name], format!("{key}.{name}"));
    let (folder, folder_key) = field("folder");
    let folder = folder
        .as_str()
        .filter(|f| !f.is_empty() && !f.contains(['\r', '\n', '\0']))
        .ok_or_else(|| invalid(folder_key, "expected a folder name"))?;
    let (v, k) = field("uidvalidity");
    let uidvalidity = u32::try_from(integer(v, &k)?)
        .map_err(|_| invalid(&k, "expected a UIDVALIDITY (a 32-bit number)"))?;
    let (target, target_key) = field("target");
    let action = match (item["action"].as_str(), target.as_str()) {
        (Some("mark_seen"), _) => AfterIngest::MarkSeen,
        (Some("flag"), _) => AfterIngest::Flag,
        (Some("move"), Some(target)) if !target.is_empty() => AfterIngest::Move(target.into()),
        (Some("move"), _) => return Err(invalid(target_key, "expected the folder to move to")),
        _ => {
            return Err(invalid(
                format!("{key}.action"),
                "expected \"mark_seen\", \"flag\" or \"move\"",
            ));
        }
    };
    let (uids, uids_key) = field("uids");
    let uids = uids
        .as_str()
        .ok_or_else(|| invalid(&uids_key, "expected an IMAP UID set such as \"1:5,9\""))
        .and_then(|set| decode_uid_set(set).map_err(|problem| invalid(&uids_key, problem)))?;
    Ok(MailboxAction {
        folder: folder.to_owned(),
        uidvalidity,
        action,
        uids,
    })
}

fn invalid(key: impl AsRef<str>, problem: impl Into<String>) -> StateError {
    let key = key.as_ref();
    StateError::InvalidState {
        key: if key.is_empty() {
            "state".into()
        } else {
            format!("state.{key}")
        },
        problem: problem.into(),
    }
}

/// A non-negative integer, also as a numeric string (the reference wrote `'1'`).
fn integer(value: &Value, key: &str) -> Result<u64, StateError> {
    let parsed = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    parsed.ok_or_else(|| {
        invalid(
            key,
            format!("expected a non-negative integer, got {}", json_type(value)),
        )
    })
}

fn uid(value: &Value, key: &str) -> Result<u32, StateError> {
    let n = integer(value, key)?;
    u32::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid(key, format!("expected a UID (1 to 4294967295), got {n}")))
}

fn string(value: &Value, key: &str) -> Result<String, StateError> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| invalid(key, format!("expected a string, got {}", json_type(value))))
}

fn boolean(value: &Value, key: &str) -> Result<bool, StateError> {
    value
        .as_bool()
        .ok_or_else(|| invalid(key, format!("expected a boolean, got {}", json_type(value))))
}

/// `pending`: a sequence set, or a list of UIDs (the reference's `pending_email_uids`).
fn uid_list(value: &Value, key: &str) -> Result<Vec<u32>, StateError> {
    match value {
        Value::String(text) => decode_uid_set(text).map_err(|problem| invalid(key, problem)),
        Value::Array(items) => {
            let mut uids = items
                .iter()
                .enumerate()
                .map(|(i, item)| uid(item, &format!("{key}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            uids.sort_unstable();
            uids.dedup();
            Ok(uids)
        }
        Value::Null => Ok(Vec::new()),
        other => Err(invalid(
            key,
            format!("expected a UID set, got {}", json_type(other)),
        )),
    }
}

fn parse_folder(value: &Value, key: &str) -> Result<FolderState, StateError> {
    let Value::Object(folder) = value else {
        return Err(invalid(
            key,
            format!("expected an object, got {}", json_type(value)),
        ));
    };
    let field = |name: &str| {
        (
            folder.get(name).unwrap_or(&Value::Null),
            format!("{key}.{name}"),
        )
    };
    let (v, k) = field("uidvalidity");
    let uidvalidity = if v.is_null() {
        LEGACY_UIDVALIDITY
    } else {
        uid(v, &k)?
    };
    let (v, k) = field("next_uid");
    let next_uid = uid(v, &k)?;
    let (v, k) = field("first_run_done");
    let first_run_done = !v.is_null() && boolean(v, &k)?;
    let (v, k) = field("pending");
    let pending = uid_list(v, &k)?;
    let (v, k) = field("failed");
    let failed = match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let k = format!("{k}[{i}]");
                Ok(FailedUid {
                    uid: uid(&item["uid"], &format!("{k}.uid"))?,
                    reason: item["reason"].as_str().unwrap_or_default().to_owned(),
                    attempts: u32::try_from(
                        integer(&item["attempts"], &format!("{k}.attempts")).unwrap_or(1),
                    )
                    .unwrap_or(u32::MAX),
                })
            })
            .collect::<Result<_, StateError>>()?,
        other => {
            return Err(invalid(
                k,
                format!("expected an array, got {}", json_type(other)),
            ));
        }
    };
    Ok(FolderState {
        uidvalidity,
        position: Position {
            next_uid,
            first_run_done,
        },
        pending,
        failed,
    })
}

fn parse_entry(value: &Value, key: &str) -> Result<Recorded, StateError> {
    let field = |name: &str| (&value[name], format!("{key}.{name}"));
    let (v, k) = field("id");
    let id = i64::try_from(integer(v, &k)?).map_err(|_| invalid(k, "id out of range"))?;
    let (v, k) = field("message_id");
    let message_id = if v.is_null() {
        None
    } else {
        Some(string(v, &k)?)
    };
    let (v, k) = field("uidvalidity");
    let uidvalidity = if v.is_null() {
        LEGACY_UIDVALIDITY
    } else {
        uid(v, &k)?
    };
    Ok(Recorded {
        entry: LedgerEntry {
            id,
            sdi: string(field("sdi").0, &field("sdi").1)?,
            message_id,
            sha256: string(field("sha256").0, &field("sha256").1)?,
            container: None,
            undelivered: false,
        },
        folder_hash: string(field("folder_hash").0, &field("folder_hash").1)?,
        uidvalidity,
        uid: uid(field("uid").0, &field("uid").1)?,
    })
}

impl MemoryStore {
    /// An empty store for the configured folder's hash.
    pub fn new(folder_hash: &str) -> Self {
        Self {
            folder_hash: folder_hash.to_owned(),
            folders: BTreeMap::new(),
            ledger: Vec::new(),
            next_container_id: 1,
            secrets: BTreeMap::new(),
            extra: Map::new(),
            due: Vec::new(),
            planned: Vec::new(),
        }
    }

    /// The store of the request's `state` (`null` or `{}` for a first run), for the
    /// configured folder's hash (the reference's keys describe that folder).
    pub fn from_json(state: &Value, folder_hash: &str) -> Result<Self, StateError> {
        let mut store = Self::new(folder_hash);
        let mut object = match state {
            Value::Null => return Ok(store),
            Value::Object(object) => object.clone(),
            other => {
                return Err(invalid(
                    "",
                    format!("expected an object, got {}", json_type(other)),
                ));
            }
        };
        if let Some(format) = object.get("soar_imap_state") {
            let format = integer(format, "soar_imap_state")?;
            if format > STATE_FORMAT {
                return Err(invalid(
                    "soar_imap_state",
                    format!(
                        "format {format} is newer than the {STATE_FORMAT} this soar-imap reads; upgrade soar-imap"
                    ),
                ));
            }
        }
        if let Some(folders) = object.get("folders") {
            let Value::Object(folders) = folders else {
                return Err(invalid(
                    "folders",
                    format!("expected an object, got {}", json_type(folders)),
                ));
            };
            for (hash, folder) in folders {
                let state = parse_folder(folder, &format!("folders.{hash}"))?;
                store.folders.insert(hash.clone(), state);
            }
        } else {
            store.import_legacy(&mut object)?;
        }
        if let Some(v) = object.get("next_container_id") {
            store.next_container_id = i64::try_from(integer(v, "next_container_id")?)
                .unwrap_or(i64::MAX)
                .max(1);
        }
        match object.get("ledger") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    store
                        .ledger
                        .push(parse_entry(item, &format!("ledger[{i}]"))?);
                }
            }
            Some(other) => {
                return Err(invalid(
                    "ledger",
                    format!("expected an array, got {}", json_type(other)),
                ));
            }
        }
        match object.get("mailbox_actions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    store
                        .due
                        .push(parse_action(item, &format!("mailbox_actions[{i}]"))?);
                }
            }
            Some(other) => {
                return Err(invalid(
                    "mailbox_actions",
                    format!("expected an array, got {}", json_type(other)),
                ));
            }
        }
        // Ids handed out before must stay unused even if the counter was lost.
        let highest = store.ledger.iter().map(|e| e.entry.id).max().unwrap_or(0);
        store.next_container_id = store.next_container_id.max(highest.saturating_add(1));
        match object.get("secrets") {
            None | Some(Value::Null) => {}
            Some(Value::Object(secrets)) => {
                for (key, value) in secrets {
                    // Never echo the value: it is a token.
                    let text = value
                        .as_str()
                        .ok_or_else(|| invalid(format!("secrets.{key}"), "expected a string"))?;
                    store
                        .secrets
                        .insert(key.clone(), Secret::new(text.to_owned()));
                }
            }
            Some(_) => return Err(invalid("secrets", "expected an object")),
        }
        for key in OWN_KEYS.iter().chain(LEGACY_KEYS) {
            object.remove(*key);
        }
        store.extra = object;
        Ok(store)
    }

    /// Read the reference app's `first_run`, `next_muid`, `pending_email_uids` and
    /// unencrypted `oauth_token`.
    fn import_legacy(&mut self, object: &mut Map<String, Value>) -> Result<(), StateError> {
        let next_muid = object
            .get("next_muid")
            .map(|v| uid(v, "next_muid"))
            .transpose()?;
        let first_run = match object.get("first_run") {
            None | Some(Value::Null) => None,
            Some(v) => Some(boolean(v, "first_run")?),
        };
        let pending = object
            .get("pending_email_uids")
            .map(|v| uid_list(v, "pending_email_uids"))
            .transpose()?;
        if next_muid.is_some() || first_run.is_some() || pending.is_some() {
            self.folders.insert(
                self.folder_hash.clone(),
                FolderState {
                    uidvalidity: LEGACY_UIDVALIDITY,
                    position: Position {
                        next_uid: next_muid.unwrap_or(1),
                        first_run_done: first_run == Some(false),
                    },
                    pending: pending.unwrap_or_default(),
                    failed: Vec::new(),
                },
            );
        }
        let encrypted = object.get("is_encrypted").and_then(Value::as_bool) == Some(true);
        if let Some(token @ Value::Object(_)) = object.get("oauth_token")
            && !encrypted
        {
            self.secrets
                .insert("oauth_token".into(), Secret::new(token.to_string()));
            object.remove("oauth_token");
        }
        Ok(())
    }

    /// The new `state` object for the response (see the module documentation). It holds
    /// the stored token blobs: the platform owns stateless state.
    pub fn to_json(&self) -> Value {
        let mut object = self.extra.clone();
        object.insert("soar_imap_state".into(), json!(STATE_FORMAT));
        if let Some(folder) = self.folders.get(&self.folder_hash) {
            object.insert("first_run".into(), json!(!folder.position.first_run_done));
            object.insert("next_muid".into(), json!(folder.position.next_uid));
        }
        let folders: Map<String, Value> = self
            .folders
            .iter()
            .map(|(hash, f)| {
                let uidvalidity = (f.uidvalidity != LEGACY_UIDVALIDITY).then_some(f.uidvalidity);
                let value = json!({
                    "uidvalidity": uidvalidity,
                    "next_uid": f.position.next_uid,
                    "first_run_done": f.position.first_run_done,
                    "pending": encode_uid_set(&f.pending),
                    "failed": f.failed,
                });
                (hash.clone(), value)
            })
            .collect();
        object.insert("folders".into(), Value::Object(folders));
        object.insert("next_container_id".into(), json!(self.next_container_id));
        let ledger: Vec<Value> = self
            .ledger
            .iter()
            .map(|e| {
                json!({
                    "id": e.entry.id,
                    "sdi": e.entry.sdi,
                    "message_id": e.entry.message_id,
                    "sha256": e.entry.sha256,
                    "folder_hash": e.folder_hash,
                    "uidvalidity": e.uidvalidity,
                    "uid": e.uid,
                })
            })
            .collect();
        object.insert("ledger".into(), Value::Array(ledger));
        let actions: Vec<Value> = self
            .due
            .iter()
            .chain(&self.planned)
            .filter(|a| !a.uids.is_empty())
            .map(|a| {
                let mut item = json!({
                    "folder": a.folder,
                    "uidvalidity": a.uidvalidity,
                    "action": a.action.as_str(),
                    "uids": encode_uid_set(&a.uids),
                });
                if let AfterIngest::Move(target) = &a.action {
                    item["target"] = json!(target);
                }
                item
            })
            .collect();
        if !actions.is_empty() {
            object.insert("mailbox_actions".into(), Value::Array(actions));
        }
        let secrets: Map<String, Value> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose().to_owned())))
            .collect();
        object.insert("secrets".into(), Value::Object(secrets));
        Value::Object(object)
    }

    fn find(&self, matches: impl Fn(&Recorded) -> bool) -> Option<LedgerEntry> {
        self.ledger
            .iter()
            .rev()
            .find(|e| matches(e))
            .map(|e| e.entry.clone())
    }

    fn folder(&self, folder_hash: &str, uidvalidity: u32) -> Option<&FolderState> {
        self.folders
            .get(folder_hash)
            .filter(|f| f.uidvalidity == uidvalidity)
    }
}

impl StateStore for MemoryStore {
    fn position(
        &self,
        folder_hash: &str,
        uidvalidity: u32,
    ) -> Result<Option<Position>, StateError> {
        Ok(self.folder(folder_hash, uidvalidity).map(|f| f.position))
    }

    fn known_uidvalidities(&self, folder_hash: &str) -> Result<Vec<u32>, StateError> {
        Ok(self
            .folders
            .get(folder_hash)
            .map(|f| f.uidvalidity)
            .filter(|&v| v != LEGACY_UIDVALIDITY)
            .into_iter()
            .collect())
    }

    fn pending(&self, folder_hash: &str, uidvalidity: u32) -> Result<Vec<u32>, StateError> {
        Ok(self
            .folder(folder_hash, uidvalidity)
            .map(|f| f.pending.clone())
            .unwrap_or_default())
    }

    fn failed(&self, folder_hash: &str, uidvalidity: u32) -> Result<Vec<FailedUid>, StateError> {
        Ok(self
            .folder(folder_hash, uidvalidity)
            .map(|f| f.failed.clone())
            .unwrap_or_default())
    }

    fn find_container(&self, sdi: &str) -> Result<Option<LedgerEntry>, StateError> {
        Ok(self.find(|e| e.entry.sdi == sdi))
    }

    fn find_by_uid(
        &self,
        folder_hash: &str,
        uidvalidity: u32,
        uid: u32,
    ) -> Result<Option<LedgerEntry>, StateError> {
        Ok(self
            .find(|e| e.folder_hash == folder_hash && e.uidvalidity == uidvalidity && e.uid == uid))
    }

    fn find_by_message(
        &self,
        message_id: Option<&str>,
        sha256: &str,
    ) -> Result<Option<LedgerEntry>, StateError> {
        Ok(self.find(|e| {
            e.entry.sha256 == sha256
                && message_id.is_none_or(|m| e.entry.message_id.as_deref() == Some(m))
        }))
    }

    fn container_by_id(&self, id: i64) -> Result<Option<LedgerEntry>, StateError> {
        Ok(self.find(|e| e.entry.id == id))
    }

    fn reserve_container_ids(&mut self, count: u32) -> Result<Range<i64>, StateError> {
        let start = self.next_container_id;
        self.next_container_id = start.saturating_add(i64::from(count));
        Ok(start..self.next_container_id)
    }

    fn commit_batch(&mut self, batch: &BatchCommit) -> Result<(), StateError> {
        validate_batch(batch, "stateless", self.next_container_id)?;
        // The same constraints as the database, checked before anything changes so a
        // refused batch leaves no trace.
        for (i, new) in batch.entries.iter().enumerate() {
            let id = new.container.id.unwrap_or_default();
            let clash = self.ledger.iter().any(|e| {
                e.entry.id == id
                    || (e.folder_hash == batch.folder_hash
                        && e.uidvalidity == batch.uidvalidity
                        && e.uid == new.uid)
            }) || batch.entries[..i]
                .iter()
                .any(|o| o.container.id == new.container.id || o.uid == new.uid);
            if clash {
                return Err(StateError::InvalidBatch {
                    asset_id: "stateless".into(),
                    problem: format!("container {id} (uid {}) is already in the ledger", new.uid),
                });
            }
        }
        if let Some((folder, action)) = &batch.after_ingest
            && *action != AfterIngest::None
            && !batch.entries.is_empty()
        {
            let uids = batch.entries.iter().map(|e| e.uid);
            // One item per folder, UIDVALIDITY and action, however many batches.
            match self.planned.iter_mut().find(|a| {
                a.folder == *folder && a.uidvalidity == batch.uidvalidity && a.action == *action
            }) {
                Some(planned) => planned.uids.extend(uids),
                None => self.planned.push(MailboxAction {
                    folder: folder.clone(),
                    uidvalidity: batch.uidvalidity,
                    action: action.clone(),
                    uids: uids.collect(),
                }),
            }
        }
        for new in &batch.entries {
            self.ledger.push(Recorded {
                entry: LedgerEntry {
                    id: new.container.id.unwrap_or_default(),
                    sdi: new.container.source_data_identifier.clone(),
                    message_id: new.message_id.clone(),
                    sha256: new.sha256.clone(),
                    container: Some(new.container.clone()),
                    undelivered: false,
                },
                folder_hash: batch.folder_hash.clone(),
                uidvalidity: batch.uidvalidity,
                uid: new.uid,
            });
        }
        if let Some(progress) = &batch.progress {
            let mut pending = progress.pending.clone();
            pending.sort_unstable();
            pending.dedup();
            let mut failed = progress.failed.clone();
            failed.sort_by_key(|f| f.uid);
            // One position per folder: a new UIDVALIDITY (or adopting a carried-over
            // position) replaces the old one, keeping stateless state small.
            self.folders.insert(
                batch.folder_hash.clone(),
                FolderState {
                    uidvalidity: batch.uidvalidity,
                    position: progress.position,
                    pending,
                    failed,
                },
            );
        }
        Ok(())
    }

    // A stateless run needs no delivery record: its state reaches the caller only in a
    // response written whole, and a caller that never got it polls again from the state
    // it had, which takes the same mail again.
    fn claim_undelivered(&mut self, _folder_hash: &str) -> Result<Vec<i64>, StateError> {
        Ok(Vec::new())
    }

    fn claim_container(&mut self, _id: i64) -> Result<(), StateError> {
        Ok(())
    }

    fn confirm_delivery(&mut self) -> Result<u64, StateError> {
        Ok(0)
    }

    fn due_actions(&self) -> Result<Vec<MailboxAction>, StateError> {
        Ok(self.due.clone())
    }

    fn actions_done(&mut self, done: &MailboxAction) -> Result<(), StateError> {
        let done_uids: std::collections::HashSet<u32> = done.uids.iter().copied().collect();
        for due in &mut self.due {
            if due.folder == done.folder
                && due.uidvalidity == done.uidvalidity
                && due.action == done.action
            {
                due.uids.retain(|uid| !done_uids.contains(uid));
            }
        }
        self.due.retain(|due| !due.uids.is_empty());
        Ok(())
    }

    fn get_secret_blob(&self, key: &str) -> Result<Option<Secret>, StateError> {
        Ok(self.secrets.get(key).cloned())
    }

    fn put_secret_blob(&mut self, key: &str, blob: Option<&Secret>) -> Result<(), StateError> {
        match blob {
            Some(blob) => self.secrets.insert(key.to_owned(), blob.clone()),
            None => self.secrets.remove(key),
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::test_support::{batch, entry, ingest};

    const FOLDER: &str = "af1cd994dfcb9286c394d142687ff5a0";

    #[test]
    fn json_round_trip_keeps_positions_ledger_keys_secrets_and_foreign_keys() {
        let mut store = MemoryStore::from_json(&json!({"app_version": "1.0"}), FOLDER).unwrap();
        let ids = ingest(&mut store, 77, &[5, 6]);
        store
            .put_secret_blob("oauth_token", Some(&Secret::new("{\"a\":1}".into())))
            .unwrap();
        // Within the run the whole container is there.
        assert!(
            store
                .container_by_id(ids[0])
                .unwrap()
                .unwrap()
                .container
                .is_some()
        );

        let state = store.to_json();
        assert_eq!(state["soar_imap_state"], 1);
        assert_eq!(state["first_run"], false);
        assert_eq!(state["next_muid"], 7);
        assert_eq!(state["app_version"], "1.0");
        assert_eq!(state["folders"][FOLDER]["pending"], "2:3,10");
        assert_eq!(state["folders"][FOLDER]["uidvalidity"], 77);
        assert_eq!(state["secrets"]["oauth_token"], "{\"a\":1}");
        assert!(
            state["ledger"][0].get("container").is_none(),
            "no raw email in state"
        );

        let back = MemoryStore::from_json(&state, FOLDER).unwrap();
        assert_eq!(back.to_json(), state);
        assert_eq!(back.position(FOLDER, 77).unwrap().unwrap().next_uid, 7);
        assert_eq!(back.known_uidvalidities(FOLDER).unwrap(), vec![77]);
        assert_eq!(back.failed(FOLDER, 77).unwrap()[0].uid, 4);
        let e = entry(ids[1], 6, "m6");
        let found = back
            .find_by_message(e.message_id.as_deref(), &e.sha256)
            .unwrap()
            .unwrap();
        assert_eq!((found.id, found.container), (ids[1], None));
        assert_eq!(back.find_by_uid(FOLDER, 77, 5).unwrap().unwrap().id, ids[0]);
        assert_eq!(
            back.find_container(&format!("{FOLDER} : 6"))
                .unwrap()
                .unwrap()
                .id,
            ids[1]
        );
        assert!(
            back.find_by_message(Some("<x@y>"), &e.sha256)
                .unwrap()
                .is_none()
        );
        let mut back = back;
        assert_eq!(back.next_container_id().unwrap(), ids[1] + 1);
    }

    #[test]
    fn reference_state_becomes_a_position_without_uidvalidity() {
        let legacy = json!({"first_run": false, "next_muid": 42, "app_version": "3.3.2"});
        let mut store = MemoryStore::from_json(&legacy, FOLDER).unwrap();
        assert_eq!(
            store.position(FOLDER, LEGACY_UIDVALIDITY).unwrap(),
            Some(Position {
                next_uid: 42,
                first_run_done: true
            })
        );
        // No UIDVALIDITY is known, so the poll adopts the server's rather than seeing a change.
        assert!(store.known_uidvalidities(FOLDER).unwrap().is_empty());
        assert_eq!(
            store.to_json()["folders"][FOLDER]["uidvalidity"],
            Value::Null
        );
        assert_eq!(store.to_json()["next_muid"], 42);

        store.commit_batch(&batch(1234, Vec::new(), 42)).unwrap();
        assert_eq!(store.position(FOLDER, LEGACY_UIDVALIDITY).unwrap(), None);
        assert_eq!(store.known_uidvalidities(FOLDER).unwrap(), vec![1234]);
        let state = store.to_json();
        assert_eq!(
            (state["first_run"].clone(), state["next_muid"].clone()),
            (json!(false), json!(42))
        );
        assert_eq!(state["app_version"], "3.3.2");
    }

    #[test]
    fn reference_variants_string_numbers_pending_and_tokens() {
        let legacy = json!({"next_muid": "1", "pending_email_uids": [9, 3, 3],
                            "oauth_token": {"access_token": "secret-token"}});
        let store = MemoryStore::from_json(&legacy, FOLDER).unwrap();
        assert_eq!(
            store.position(FOLDER, LEGACY_UIDVALIDITY).unwrap(),
            Some(Position {
                next_uid: 1,
                first_run_done: false
            })
        );
        assert_eq!(
            store.pending(FOLDER, LEGACY_UIDVALIDITY).unwrap(),
            vec![3, 9]
        );
        let token = store.get_secret_blob("oauth_token").unwrap().unwrap();
        assert!(token.expose().contains("secret-token"));
        let state = store.to_json();
        assert!(state.get("oauth_token").is_none() && state.get("pending_email_uids").is_none());
        assert!(!format!("{store:?}").contains("secret-token"));

        // An empty or absent state is a first run with nothing known.
        for empty in [Value::Null, json!({})] {
            let store = MemoryStore::from_json(&empty, FOLDER).unwrap();
            assert_eq!(store.position(FOLDER, LEGACY_UIDVALIDITY).unwrap(), None);
            assert!(store.to_json().get("next_muid").is_none());
        }
    }

    #[test]
    fn our_own_state_ignores_top_level_reference_keys() {
        // The asset's folder changed: its old position must not carry over, the reference bug.
        let state = json!({"soar_imap_state": 1, "first_run": false, "next_muid": 42,
                           "folders": {"oldhash": {"uidvalidity": 5, "next_uid": 42, "first_run_done": true}}});
        let store = MemoryStore::from_json(&state, FOLDER).unwrap();
        assert_eq!(store.position(FOLDER, LEGACY_UIDVALIDITY).unwrap(), None);
        assert_eq!(store.position("oldhash", 5).unwrap().unwrap().next_uid, 42);
        assert!(store.to_json().get("next_muid").is_none());
    }

    #[test]
    fn bad_state_names_the_key() {
        let cases = [
            (json!([1]), "state is invalid: expected an object"),
            (json!({"next_muid": "abc"}), "state.next_muid"),
            (json!({"first_run": "no"}), "state.first_run"),
            (
                json!({"folders": {"h": {"next_uid": 0}}}),
                "state.folders.h.next_uid",
            ),
            (
                json!({"folders": {"h": {"next_uid": 3, "pending": "1:x"}}}),
                "state.folders.h.pending",
            ),
            (json!({"ledger": [{"id": 1}]}), "state.ledger[0]"),
            (json!({"soar_imap_state": 9}), "newer"),
            (
                json!({"secrets": {"oauth_token": {"access_token": "tok"}}}),
                "state.secrets.oauth_token",
            ),
        ];
        for (state, expected) in cases {
            let err = MemoryStore::from_json(&state, FOLDER)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{state}: {err}");
            assert!(!err.contains("tok\""), "{err}");
        }
    }

    #[test]
    fn a_refused_batch_changes_nothing() {
        let mut store = MemoryStore::new(FOLDER);
        ingest(&mut store, 1, &[1]);
        let before = store.to_json();
        let ids = store.reserve_container_ids(2).unwrap();
        let entries = vec![entry(ids.start, 2, "a"), entry(ids.start + 1, 2, "b")];
        assert!(store.commit_batch(&batch(1, entries, 3)).is_err());
        let mut after = store.to_json();
        after["next_container_id"] = before["next_container_id"].clone();
        assert_eq!(after, before);
        // A uid already in the ledger is refused too.
        let id = store.next_container_id().unwrap();
        assert!(
            store
                .commit_batch(&batch(1, vec![entry(id, 1, "again")], 3))
                .is_err()
        );
    }
}
