//! `on poll`: ingest new mail of the asset's folder as containers (SPEC §3).
//!
//! Crash safety comes from one rule: every batch commits its containers together with a
//! folder state in which the position already covers the whole poll but every UID of
//! the poll not yet processed sits in the pending queue. Killed at any instant, the
//! next poll finds unprocessed mail queued (never skipped) and processed mail in the
//! ledger (never duplicated).

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::{
    after_ingest,
    ingest::IngestContext,
    poll_batches::ingest_selection,
    poll_plan::{Plan, plan},
    redeliver::redeliver,
};
use crate::{
    config::{AfterIngest, Config, IngestManner},
    container::ContainerSink,
    dispatch::echo_parameter,
    imap::{MailSession, search_all},
    protocol::{ActionResult, Status},
    sdi::md5_hex,
    state::{FailedUid, LEGACY_UIDVALIDITY, Position, StateStore},
};

/// `container_count` of a scheduled poll (the platform's "no limit").
pub const SCHEDULED: u64 = 4_294_967_295;
/// Why a poll stops when its containers can no longer be written.
pub(super) const READER_GONE: &str = "the response could not be written (its reader went away, or its disk is full); the poll stopped, and what it committed goes out again with the next poll, the rest stays queued";

/// What the poll did, for `summary`.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) found: usize,
    pub(super) ingested: usize,
    pub(super) duplicates: usize,
    pub(super) failed: Vec<FailedUid>,
    pub(super) artifacts: usize,
    pub(super) bytes: u64,
    pub(super) vanished: usize,
    /// Containers sent again because the run that committed them never delivered them.
    pub(super) redelivered: usize,
    /// Mails `after_ingest` acted on (delivered by earlier runs), and why it stopped.
    pub(super) after_ingest: after_ingest::Done,
    pub(super) after_ingest_error: Option<String>,
}

/// Run one poll for one parameter object.
pub fn run(
    parameter: &Map<String, Value>,
    ctx: &mut IngestContext<'_>,
    containers: &mut dyn ContainerSink,
) -> ActionResult {
    let echoed = echo_parameter(parameter);
    let started = Instant::now();
    let mut tally = Tally::default();
    let outcome = poll(parameter, ctx, containers, &mut tally);
    let elapsed = started.elapsed();
    tracing::info!("Time taken: {}", clock(elapsed));
    let summary = summary(&tally, elapsed);
    match outcome {
        Ok(note) => ActionResult {
            status: Status::Success,
            message: format!(
                "Ingested {} new emails ({} already ingested, {} failed){}{}{note}",
                tally.ingested,
                tally.duplicates,
                tally.failed.len(),
                redelivered_note(tally.redelivered),
                tally
                    .after_ingest_error
                    .as_ref()
                    .map_or_else(String::new, |e| format!("; {e}")),
            ),
            parameter: echoed,
            data: Vec::new(),
            summary,
        },
        Err(reason) => {
            let mut result = ActionResult::failed(echoed, format!("Poll failed: {reason}"));
            result.summary = summary;
            result
        }
    }
}

fn summary(tally: &Tally, elapsed: Duration) -> Map<String, Value> {
    let Value::Object(map) = json!({
        "emails_found": tally.found,
        "emails_ingested": tally.ingested,
        "duplicates_skipped": tally.duplicates,
        "emails_failed": tally.failed.len(),
        "failed": tally.failed,
        "emails_vanished": tally.vanished,
        "redelivered": tally.redelivered,
        "after_ingest_done": tally.after_ingest.mails,
        "artifacts": tally.artifacts,
        "bytes_fetched": tally.bytes,
        "elapsed_ms": u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
    }) else {
        return Map::new();
    };
    map
}

/// What the message says of redelivered containers, when there were any.
fn redelivered_note(count: usize) -> String {
    match count {
        0 => String::new(),
        1 => "; redelivered 1 container an earlier run committed but did not deliver".into(),
        n => format!("; redelivered {n} containers an earlier run committed but did not deliver"),
    }
}

/// `H:MM:SS`, as the reference's "Time taken" line.
fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `container_count`: absent or 4294967295 means a scheduled poll; otherwise Poll Now
/// with that limit.
fn poll_now_limit(parameter: &Map<String, Value>) -> Result<Option<usize>, String> {
    let bad = |v: &Value| format!("parameters.container_count must be a positive integer, got {v}");
    let count = match parameter.get("container_count") {
        None | Some(Value::Null) => return Ok(None),
        Some(v @ Value::Number(n)) => n.as_u64().filter(|&n| n > 0).ok_or_else(|| bad(v))?,
        Some(v @ Value::String(s)) => s
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(v))?,
        Some(other) => return Err(bad(other)),
    };
    if count == SCHEDULED {
        Ok(None)
    } else {
        Ok(Some(usize::try_from(count).unwrap_or(usize::MAX)))
    }
}

/// The folder being polled, as EXAMINE found it.
pub(super) struct Folder {
    pub(super) hash: String,
    pub(super) uidvalidity: u32,
    uid_next: u32,
    /// The folder's name and what to do to its mail once delivered, if anything.
    pub(super) after_ingest: Option<(String, AfterIngest)>,
}

/// What the poll takes, and the folder state it started from (`None` for Poll Now,
/// which never moves the position).
pub(super) struct Selection {
    pub(super) plan: Plan,
    pub(super) position: Option<Position>,
    pub(super) failed: Vec<FailedUid>,
    note: String,
}

fn poll(
    parameter: &Map<String, Value>,
    ctx: &mut IngestContext<'_>,
    containers: &mut dyn ContainerSink,
    tally: &mut Tally,
) -> Result<String, String> {
    let config = ctx.config;
    let poll_now = poll_now_limit(parameter)?;
    // Before the server is even reached: what an earlier run left undelivered goes out
    // first, whether or not the mailbox answers this time.
    let folder_hash = md5_hex(config.folder.as_bytes());
    tally.redelivered = redeliver(&mut *ctx.store, &folder_hash, containers)?;
    if containers.closed() {
        return Err(READER_GONE.into());
    }
    let mut session = ctx.open.open(config, &mut *ctx.store)?;
    // Mail delivered by earlier runs whose after_ingest action is not done yet (the run
    // was killed after its response, the server said no): before anything else. A
    // failure is reported and the poll goes on: ingesting never waits on housekeeping.
    let done = if config.after_ingest == AfterIngest::None {
        after_ingest::drop_due(&mut *ctx.store).map(|_| after_ingest::Done::default())
    } else {
        after_ingest::run_due(session.as_mut(), &mut *ctx.store)
    };
    match done {
        Ok(done) => tally.after_ingest = done,
        Err(reason) => {
            tracing::warn!("{reason}");
            tally.after_ingest_error = Some(reason);
        }
    }
    let status = session.examine(&config.folder).map_err(|e| e.to_string())?;
    tracing::info!("Selected folder '{}'", config.folder);
    let folder = Folder {
        hash: folder_hash,
        uidvalidity: status
            .uid_validity
            .filter(|&v| v != LEGACY_UIDVALIDITY)
            .ok_or_else(|| {
                format!(
                    "the server sent no UIDVALIDITY for folder {:?}",
                    config.folder
                )
            })?,
        uid_next: status.uid_next.unwrap_or(u32::MAX),
        after_ingest: (config.after_ingest != AfterIngest::None)
            .then(|| (config.folder.clone(), config.after_ingest.clone())),
    };
    let selection = match poll_now {
        Some(limit) => {
            tracing::info!("POLL NOW Getting {limit} most recent email uid(s)");
            let all =
                search_all(session.as_mut(), 1, folder.uid_next).map_err(|e| e.to_string())?;
            let plan = plan(&all, &[], 1, limit, config.ingest_manner);
            Selection {
                plan,
                position: None,
                failed: Vec::new(),
                note: String::new(),
            }
        }
        None => select_scheduled(session.as_mut(), &*ctx.store, config, &folder)?,
    };
    tally.found = selection.plan.take.len();
    ingest_selection(
        session.as_mut(),
        ctx,
        &folder,
        &selection,
        containers,
        tally,
    )?;
    if let Err(e) = session.logout() {
        tracing::warn!("{e}");
    }
    Ok(selection.note)
}

/// A scheduled poll: from the saved position of this folder and UIDVALIDITY (or a
/// legacy one, or the start of the folder after a UIDVALIDITY change, or a first run).
fn select_scheduled(
    session: &mut dyn MailSession,
    store: &dyn StateStore,
    config: &Config,
    folder: &Folder,
) -> Result<Selection, String> {
    let err = |e: crate::state::StateError| e.to_string();
    let mut note = String::new();
    let saved = store
        .position(&folder.hash, folder.uidvalidity)
        .map_err(err)?;
    let (position, pending) = if let Some(position) = saved {
        (
            position,
            store
                .pending(&folder.hash, folder.uidvalidity)
                .map_err(err)?,
        )
    } else if let Some(legacy) = store
        .position(&folder.hash, LEGACY_UIDVALIDITY)
        .map_err(err)?
    {
        (legacy, Vec::new())
    } else if let Some(old) = store.known_uidvalidities(&folder.hash).map_err(err)?.last() {
        // The old UIDs mean nothing now: take the folder from the start; the ledger
        // recognises mail already ingested, so nothing is duplicated.
        let new = folder.uidvalidity;
        note = format!(
            "; UIDVALIDITY of folder {:?} changed from {old} to {new}",
            config.folder
        );
        tracing::warn!(
            "UIDVALIDITY of folder '{}' changed from {old} to {new}: polling it from the start; mail already ingested is recognised and not duplicated",
            config.folder
        );
        (
            Position {
                next_uid: 1,
                first_run_done: true,
            },
            Vec::new(),
        )
    } else {
        tracing::info!("First time Ingestion detected.");
        (Position::default(), Vec::new())
    };
    let limit = if position.first_run_done {
        config.max_emails
    } else {
        config.first_run_max_emails
    };
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    match config.ingest_manner {
        IngestManner::LatestFirst => {
            tracing::info!(
                "Getting {limit} MOST RECENT emails uids since uid(inclusive) {}",
                position.next_uid
            );
        }
        IngestManner::OldestFirst => {
            tracing::info!(
                "Getting NEXT {limit} email uids since uid(inclusive) {}",
                position.next_uid
            );
        }
    }
    let new = search_all(session, position.next_uid, folder.uid_next).map_err(|e| e.to_string())?;
    let failed = store
        .failed(&folder.hash, folder.uidvalidity)
        .map_err(err)?;
    let plan = plan(
        &new,
        &pending,
        position.next_uid,
        limit,
        config.ingest_manner,
    );
    Ok(Selection {
        plan,
        position: Some(position),
        failed,
        note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_count_tells_poll_now_from_scheduled() {
        let p = |v: Value| poll_now_limit(v.as_object().unwrap());
        assert_eq!(p(json!({})), Ok(None));
        assert_eq!(p(json!({"container_count": 4_294_967_295_u64})), Ok(None));
        assert_eq!(p(json!({"container_count": "4294967295"})), Ok(None));
        assert_eq!(p(json!({"container_count": 10})), Ok(Some(10)));
        assert!(p(json!({"container_count": 0})).is_err());
        assert!(p(json!({"container_count": "lots"})).is_err());
    }

    use std::cell::RefCell;

    use crate::{
        container::{Container, Outgoing},
        imap::{FetchedMessage, FolderStatus, ImapError},
        state::MemoryStore,
        vault::{MemoryVault, Vault, VaultError},
    };

    thread_local! {
        /// The in-memory mailbox the fake session serves: (UID, raw message).
        static MAILBOX: RefCell<Vec<(u32, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
        /// The bytes of each `UID FETCH` of whole messages the fake session answered.
        static FETCHED_BYTES: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    /// A session over `MAILBOX`: the poll logic without a server.
    #[derive(Default)]
    struct FakeSession {
        /// The messages of the fetch under way not read yet.
        answer: std::collections::VecDeque<FetchedMessage>,
    }

    impl MailSession for FakeSession {
        fn capabilities(&mut self) -> Result<Vec<String>, ImapError> {
            Ok(vec!["IMAP4rev1".into()])
        }
        fn list_folders(&mut self) -> Result<Vec<String>, ImapError> {
            Ok(vec!["INBOX".into()])
        }
        fn examine(&mut self, _: &str) -> Result<FolderStatus, ImapError> {
            let next = MAILBOX.with(|m| m.borrow().iter().map(|(u, _)| *u).max().unwrap_or(0) + 1);
            let exists = MAILBOX.with(|m| u32::try_from(m.borrow().len()).unwrap());
            Ok(FolderStatus {
                exists,
                uid_validity: Some(77),
                uid_next: Some(next),
            })
        }
        fn search_uids(&mut self, from: u32, to: u32) -> Result<Vec<u32>, ImapError> {
            Ok(MAILBOX.with(|m| {
                m.borrow()
                    .iter()
                    .map(|(u, _)| *u)
                    .filter(|u| (from..=to).contains(u))
                    .collect()
            }))
        }
        fn fetch_sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
            Ok(messages(uids)
                .into_iter()
                .map(|m| (m.uid, m.size))
                .collect())
        }
        fn start_messages(&mut self, uids: &[u32]) -> Result<(), ImapError> {
            let fetched = messages(uids);
            let bytes = fetched.iter().map(|m| m.raw.len()).sum();
            FETCHED_BYTES.with(|f| f.borrow_mut().push(bytes));
            self.answer = fetched.into();
            Ok(())
        }
        fn next_message(&mut self) -> Result<Option<FetchedMessage>, ImapError> {
            Ok(self.answer.pop_front())
        }
        fn fetch_headers(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, ImapError> {
            Ok(messages(uids))
        }
        fn logout(&mut self) -> Result<(), ImapError> {
            Ok(())
        }
    }

    /// The messages of `MAILBOX` with these UIDs.
    fn messages(uids: &[u32]) -> Vec<FetchedMessage> {
        MAILBOX.with(|m| {
            m.borrow()
                .iter()
                .filter(|(u, _)| uids.contains(u))
                .map(|(u, raw)| FetchedMessage {
                    uid: *u,
                    size: u32::try_from(raw.len()).unwrap(),
                    raw: raw.clone(),
                })
                .collect()
        })
    }

    #[allow(
        clippy::unnecessary_wraps,
        reason = "it must have the SessionSource signature"
    )]
    fn open_fake(_: &Config) -> Result<Box<dyn MailSession>, String> {
        Ok(Box::new(FakeSession::default()))
    }

    /// A vault that fails on the attachment `poison`: with a full disk (an I/O error)
    /// while `disk_full`, or with a panic (a bug some message's content meets).
    #[derive(Default)]
    struct PickyVault {
        files: MemoryVault,
        disk_full: bool,
        panics: bool,
    }

    impl Vault for PickyVault {
        fn store(&self, vault_id: &str, bytes: &[u8]) -> Result<(), VaultError> {
            if bytes == b"poison" {
                assert!(!self.panics, "a bug met by one message");
                if self.disk_full {
                    let broken =
                        crate::vault::DirVault::new(std::path::Path::new("/proc/self/no-such-dir"));
                    return broken.store(vault_id, bytes);
                }
            }
            self.files.store(vault_id, bytes)
        }
    }

    fn mail(uid: u32, attachment: &str) -> (u32, Vec<u8>) {
        let raw = format!(
            "From: a{uid}@example.com\r\nSubject: mail {uid}\r\nMessage-ID: <{uid}@example.com>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhttp://site{uid}.example.com/\r\n--b\r\nContent-Type: application/octet-stream; name=f.bin\r\n\r\n{attachment}\r\n--b--\r\n"
        );
        (uid, raw.into_bytes())
    }

    /// Poll `MAILBOX` once with `store` and `vault` into `sink`.
    fn poll_into(
        store: &mut MemoryStore,
        vault: &PickyVault,
        sink: &mut dyn crate::container::ContainerSink,
    ) -> ActionResult {
        let config =
            Config::from_json(&json!({"server": "fake", "username": "u", "password": "p"}))
                .unwrap();
        let mut ctx = IngestContext {
            config: &config,
            label: "email",
            store,
            vault,
            open: &open_fake,
        };
        run(&Map::new(), &mut ctx, sink)
    }

    /// Poll `MAILBOX` once with `store` and `vault`: the result and what went out.
    fn poll_outgoing(
        store: &mut MemoryStore,
        vault: &mut PickyVault,
    ) -> (ActionResult, Vec<Outgoing>) {
        let mut containers = Vec::new();
        let result = poll_into(store, vault, &mut |c| containers.push(c));
        (result, containers)
    }

    /// Poll `MAILBOX` once with `store` and `vault`: the result and the UIDs of the new
    /// containers.
    fn poll_once(store: &mut MemoryStore, vault: &mut PickyVault) -> (ActionResult, Vec<u32>) {
        let (result, containers) = poll_outgoing(store, vault);
        let uids = containers
            .iter()
            .map(|c| {
                let sdi = &c.container.source_data_identifier;
                sdi[sdi.rfind(' ').unwrap() + 1..].parse().unwrap()
            })
            .collect();
        (result, uids)
    }

    #[test]
    fn a_bad_message_is_recorded_and_skipped_and_the_poll_goes_on() {
        MAILBOX
            .with(|m| *m.borrow_mut() = vec![mail(1, "ok"), mail(2, "poison"), mail(3, "ok too")]);
        let mut store = MemoryStore::new(&md5_hex(b"inbox"));
        let mut vault = PickyVault {
            panics: true,
            ..PickyVault::default()
        };
        let (result, uids) = poll_once(&mut store, &mut vault);
        assert_eq!(result.status, Status::Success, "{}", result.message);
        assert_eq!(result.summary["emails_ingested"], 2);
        assert_eq!(result.summary["emails_failed"], 1);
        assert_eq!(result.summary["failed"][0]["uid"], 2);
        assert!(
            result.summary["failed"][0]["reason"]
                .as_str()
                .unwrap()
                .starts_with("internal error while parsing")
        );
        assert_eq!(uids, [1, 3]);
        // The failure is remembered, not retried in the way of new mail.
        assert_eq!(store.failed(&md5_hex(b"inbox"), 77).unwrap()[0].uid, 2);
        assert_eq!(
            store
                .position(&md5_hex(b"inbox"), 77)
                .unwrap()
                .unwrap()
                .next_uid,
            4
        );
    }

    #[test]
    fn after_ingest_plans_only_the_mail_that_became_containers() {
        MAILBOX
            .with(|m| *m.borrow_mut() = vec![mail(1, "ok"), mail(2, "poison"), mail(3, "ok too")]);
        let mut store = MemoryStore::new(&md5_hex(b"inbox"));
        let vault = PickyVault {
            panics: true,
            ..PickyVault::default()
        };
        let config = Config::from_json(&json!({"server": "fake", "username": "u",
            "password": "p", "after_ingest": "move", "after_ingest_folder": "Done"}))
        .unwrap();
        let mut ctx = IngestContext {
            config: &config,
            label: "email",
            store: &mut store,
            vault: &vault,
            open: &open_fake,
        };
        let result = run(&Map::new(), &mut ctx, &mut |_: Outgoing| {});
        assert_eq!(result.summary["emails_failed"], 1);
        // UID 2 failed to ingest: it stays where it is, untouched.
        let state = store.to_json();
        assert_eq!(
            state["mailbox_actions"],
            json!([{"folder": "inbox", "uidvalidity": 77, "action": "move",
                    "target": "Done", "uids": "1,3"}])
        );
        // Planned, not due: the caller has not passed this state back yet.
        assert!(store.due_actions().unwrap().is_empty());
    }

    #[test]
    fn a_vault_that_cannot_store_stops_the_poll_and_the_next_poll_loses_nothing() {
        MAILBOX.with(|m| {
            *m.borrow_mut() = vec![
                mail(1, "ok"),
                mail(2, "poison"),
                mail(3, "ok too"),
                mail(4, "fine"),
            ];
        });
        let mut store = MemoryStore::new(&md5_hex(b"inbox"));
        let mut vault = PickyVault {
            disk_full: true,
            ..PickyVault::default()
        };
        let (result, uids) = poll_once(&mut store, &mut vault);
        assert_eq!(result.status, Status::Failed);
        assert!(
            result
                .message
                .starts_with("Poll failed: cannot store attachment"),
            "{}",
            result.message
        );
        assert!(result.message.contains("email uid 2"), "{}", result.message);
        // What came before the failure is kept, and counted as it is in the ledger.
        assert_eq!(uids, [1]);
        assert_eq!(result.summary["emails_ingested"], 1);
        assert_eq!(result.summary["emails_failed"], 0);
        let folder = md5_hex(b"inbox");
        assert!(store.failed(&folder, 77).unwrap().is_empty());
        assert_eq!(store.pending(&folder, 77).unwrap(), [2, 3, 4]);

        // The disk is fixed: the next poll takes exactly the rest.
        vault.disk_full = false;
        let (result, uids) = poll_once(&mut store, &mut vault);
        assert_eq!(result.status, Status::Success, "{}", result.message);
        assert_eq!(uids, [2, 3, 4]);
        assert!(store.pending(&folder, 77).unwrap().is_empty());
        let (_, uids) = poll_once(&mut store, &mut vault);
        assert!(uids.is_empty());
    }

    #[test]
    fn batches_built_on_every_core_commit_in_uid_order_with_ids_in_uid_order() {
        // Three batches (50, 50, 20), each built in parallel while the next is fetched.
        MAILBOX.with(|m| {
            *m.borrow_mut() = (1..=120)
                .map(|uid| mail(uid, &format!("file {uid}")))
                .collect();
        });
        let mut store = MemoryStore::new(&md5_hex(b"inbox"));
        let mut vault = PickyVault::default();
        let (result, containers) = poll_outgoing(&mut store, &mut vault);
        assert_eq!(result.status, Status::Success, "{}", result.message);
        assert_eq!(result.summary["emails_ingested"], 120);
        // Each new container goes out with the JSON the ledger stored, serialized once.
        for outgoing in &containers {
            let json = outgoing.json.as_deref().expect("serialized for the ledger");
            assert_eq!(json, serde_json::to_string(&outgoing.container).unwrap());
        }
        let containers: Vec<Container> = containers.into_iter().map(|o| o.container).collect();
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        let expected: Vec<String> = (1..=120).map(|uid| format!("mail {uid}")).collect();
        assert_eq!(names, expected);
        let ids: Vec<i64> = containers.iter().map(|c| c.id.unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        // Every attachment reached the vault.
        assert_eq!(vault.files.len(), 120);
    }

    #[test]
    fn a_fetch_of_large_mail_is_bounded_in_bytes_not_only_in_messages() {
        // 12 emails of ~3 MiB: one fetch of the whole page would ask for all 36 MiB at
        // once (see poll_batches' tests for the batches themselves).
        let big = "x".repeat(3 << 20);
        MAILBOX.with(|m| *m.borrow_mut() = (1..=12).map(|uid| mail(uid, &big)).collect());
        FETCHED_BYTES.with(|f| f.borrow_mut().clear());
        let mut store = MemoryStore::new(&md5_hex(b"inbox"));
        let mut vault = PickyVault::default();
        let (result, uids) = poll_once(&mut store, &mut vault);
        assert_eq!(result.status, Status::Success, "{}", result.message);
        assert_eq!(uids, (1..=12).collect::<Vec<u32>>());
        let fetches = FETCHED_BYTES.with(|f| f.borrow().clone());
        assert_eq!(fetches.len(), 2, "{fetches:?}");
        assert!(fetches.iter().all(|&b| b <= 32 << 20), "{fetches:?}");
    }

    #[test]
    fn the_same_bytes_twice_in_one_poll_make_one_container() {
        // UIDs 1 and 2 in the first batch, 60 in the second, 120 in the third: none is
        // in the ledger when the next is decided, which only the poll itself can know.
        let copy = mail(1, "ok").1;
        MAILBOX.with(|m| {
            *m.borrow_mut() = (1..=120)
                .map(|uid| match uid {
                    1 | 2 | 60 | 120 => (uid, copy.clone()),
                    _ => mail(uid, "other"),
                })
                .collect();
        });
        let mut store = MemoryStore::new(&md5_hex(b"inbox"));
        let mut vault = PickyVault::default();
        let (result, uids) = poll_once(&mut store, &mut vault);
        assert_eq!(result.status, Status::Success, "{}", result.message);
        assert_eq!(result.summary["emails_ingested"], 117);
        assert_eq!(result.summary["duplicates_skipped"], 3);
        // 2 and 60 come while 1 is on its way into the ledger, so are only counted;
        // 120 comes once 1 is in it, so 1's container goes out again flagged
        // `duplicate`, as for any mail ingested before.
        assert_eq!(uids.iter().filter(|&&u| u == 1).count(), 2, "{uids:?}");
        assert!(!uids.contains(&2) && !uids.contains(&60) && !uids.contains(&120));
    }

    /// A reader that takes `capacity` containers, then goes away.
    struct Reader {
        capacity: usize,
        got: Vec<Outgoing>,
    }

    impl crate::container::ContainerSink for Reader {
        fn send(&mut self, container: Outgoing) {
            if !self.closed() {
                self.got.push(container);
            }
        }
        fn closed(&self) -> bool {
            self.got.len() >= self.capacity
        }
    }

    #[test]
    fn a_poll_whose_reader_went_away_stops_and_leaves_the_rest_queued() {
        MAILBOX.with(|m| {
            *m.borrow_mut() = (1..=200)
                .map(|uid| mail(uid, &format!("f {uid}")))
                .collect();
        });
        let folder = md5_hex(b"inbox");
        let mut store = MemoryStore::new(&folder);
        let mut reader = Reader {
            capacity: 10,
            got: Vec::new(),
        };
        let result = poll_into(&mut store, &PickyVault::default(), &mut reader);
        assert_eq!(result.status, Status::Failed);
        assert!(result.message.contains(READER_GONE), "{}", result.message);
        // It stopped within a batch or two of the reader going: not the whole folder.
        let ingested = result.summary["emails_ingested"].as_u64().unwrap();
        assert!((10..=150).contains(&ingested), "{ingested}");
        let pending = store.pending(&folder, 77).unwrap();
        assert_eq!(
            pending.len() as u64,
            200 - ingested,
            "the rest stays queued"
        );
        // Nothing lost: the next poll takes exactly the rest.
        let (result, uids) = poll_once(&mut store, &mut PickyVault::default());
        assert_eq!(result.status, Status::Success, "{}", result.message);
        assert_eq!(uids, pending);
    }

    #[test]
    fn time_taken_reads_like_the_reference() {
        assert_eq!(clock(Duration::from_secs(5)), "0:00:05");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
