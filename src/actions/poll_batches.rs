//! The batches of a poll: fetched, decided in UID order against the ledger, built on
//! every core and committed, each with the folder state that covers it (see
//! [`super::on_poll`] for the rule that makes this crash-safe).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{
    build_pool::{BuildPool, not_built},
    ingest::{Builder, Identity, IngestContext, IngestError, ToBuild, find_existing},
    on_poll::{Folder, READER_GONE, Selection, Tally},
    poll_plan::Plan,
};
use crate::{
    container::{Container, ContainerSink, Outgoing},
    imap::{FetchedMessage, MailSession},
    state::{BatchCommit, FailedUid, FolderProgress, NewLedgerEntry, Position, StateStore},
    vault::Vault,
};

/// Messages per batch (built together, committed in one transaction): memory is bounded
/// by a few batches, not by the mailbox.
const BATCH_MESSAGES: usize = 50;
/// Bytes per batch, from the size probe: what a poll holds at once is a few batches'
/// worth (fetched, built, committing), whatever the size of the mail.
const BATCH_BYTES: u64 = 16 * 1024 * 1024;
/// UIDs in a page: one size probe and one fetch of whole messages (see [`Fetcher`]), a
/// round trip or two per page rather than per batch on a distant server.
const PROBE_UIDS: usize = 1000;

/// What becomes of each UID of a batch, decided in UID order before the batch's
/// containers are built.
enum Step {
    /// Expunged between search and fetch: nothing to ingest, nothing lost.
    Vanished,
    /// Already ingested: in the ledger (its container, when the ledger keeps
    /// containers), or earlier in this poll (the same bytes under another UID).
    Duplicate(Option<Container>),
    /// New: its container is built with the others of the batch.
    Build,
    /// The ledger could not be read: the poll stops here.
    Stop(IngestError),
}

/// A fetched batch: each message, and whether it is over the size limit (headers only).
type Fetched = Vec<(FetchedMessage, bool)>;

/// A batch built and decided, waiting for its commit: its entries and the folder state
/// that covers it.
struct Settled {
    entries: Vec<NewLedgerEntry>,
    progress: Option<FolderProgress>,
}

/// Fetch and ingest the selection batch by batch, committing each batch's containers
/// with the folder state that covers them, in UID order.
///
/// Three things overlap: while the pool builds batch N on every core, this thread
/// commits batch N-1 (its vault flush and `SQLite` commit, the waits for the disk
/// included) and then reads batch N+1 off the connection, where the server has kept
/// sending the page's messages meanwhile. Each folder state committed still queues every
/// UID not committed yet, so a poll killed at any instant loses and duplicates nothing.
pub(super) fn ingest_selection(
    session: &mut dyn MailSession,
    ctx: &mut IngestContext<'_>,
    folder: &Folder,
    selection: &Selection,
    containers: &mut dyn ContainerSink,
    tally: &mut Tally,
) -> Result<(), String> {
    let Selection { plan, position, .. } = selection;
    let mut remaining: BTreeSet<u32> = plan.take.iter().copied().collect();
    let mut failed = selection.failed.clone();
    if plan.take.is_empty() {
        if position.is_some() {
            // A successful poll with nothing to take still spends the first run.
            let progress = Some(progress(plan, &remaining, &failed, true));
            commit(ctx.store, folder, Vec::new(), progress)?;
        }
        return Ok(());
    }
    // One durable reservation per poll; ids of duplicates are simply never used.
    let count = u32::try_from(plan.take.len()).unwrap_or(u32::MAX);
    let mut ids = ctx
        .store
        .reserve_container_ids(count)
        .map_err(|e| e.to_string())?;
    let builder = Builder {
        config: ctx.config,
        label: ctx.label,
        vault: ctx.vault,
    };
    let mut fetcher = Fetcher::new(session, ctx.config.max_email_size_mb);
    let (store, vault) = (&mut *ctx.store, ctx.vault);
    std::thread::scope(|scope| {
        let pool = BuildPool::start(scope, builder, &ctx.config.folder);
        // The UIDs of the poll not fetched yet.
        let mut rest: &[u32] = &plan.take;
        let mut prefetched: Option<Result<Batch<'_>, String>> = None;
        let mut waiting: Option<Settled> = None;
        // Messages of the batches not committed yet, which the ledger cannot know.
        let mut in_flight = InFlight::default();
        while !rest.is_empty() {
            if containers.closed() {
                // Nobody receives the containers any more: what is built is committed
                // (to go out again with the next poll), the rest stays queued.
                settle(waiting.take(), store, vault, folder, containers, tally)?;
                return Err(READER_GONE.into());
            }
            let batch = match prefetched.take() {
                Some(batch) => batch,
                None => fetcher.next(rest, tally),
            };
            let decided = batch.and_then(|Batch { uids, fetched }| {
                rest = &rest[uids.len().min(rest.len())..];
                // Fetch ahead only while a batch is small: two large batches at once
                // would double the memory a poll needs.
                let bytes: u64 = fetched.iter().map(|(m, _)| m.raw.len() as u64).sum();
                let ahead = !rest.is_empty() && bytes <= BATCH_BYTES;
                in_flight.next_batch();
                decide(&mut *store, uids, fetched, &mut ids, &mut in_flight).map(|d| (d, ahead))
            });
            let (Decided { steps, jobs }, ahead) = match decided {
                Ok(decided) => decided,
                Err(error) => {
                    // A failed fetch ends the poll here, once the batch before is in.
                    settle(waiting.take(), store, vault, folder, containers, tally)?;
                    return Err(error);
                }
            };
            let (built, (settled, fetched_ahead)) = pool.build(jobs, || {
                let settled = settle(waiting.take(), store, vault, folder, containers, tally);
                let fetched_ahead = (ahead && settled.is_ok()).then(|| fetcher.next(rest, tally));
                (settled, fetched_ahead)
            });
            // The batch before could not be committed: it and this one stay queued.
            settled?;
            prefetched = fetched_ahead;
            let entries = match outcomes(
                steps,
                built,
                &mut remaining,
                &mut failed,
                tally,
                containers,
            ) {
                Ok(entries) => entries,
                Err(Stopped {
                    entries,
                    uid,
                    reason,
                }) => {
                    // Keep what the batch built so far, with this UID and the rest of
                    // the poll still queued, and stop: the disk needs someone first.
                    remaining.insert(uid);
                    let progress = position.map(|_| progress(plan, &remaining, &failed, false));
                    let settled = Settled { entries, progress };
                    if let Err(e) = settle(Some(settled), store, vault, folder, containers, tally) {
                        // The disk is full for the database too: this batch is fetched
                        // again by the next poll.
                        tracing::warn!("{e}");
                    }
                    return Err(format!(
                        "{reason}; the poll stopped at email uid {uid}, which stays queued with the rest for the next poll"
                    ));
                }
            };
            let last = rest.is_empty();
            let progress = position.map(|_| progress(plan, &remaining, &failed, last));
            waiting = Some(Settled { entries, progress });
        }
        settle(waiting, store, vault, folder, containers, tally)
    })
}

/// A batch that stopped at `uid` (the store or the vault failed): the entries before it.
struct Stopped {
    entries: Vec<NewLedgerEntry>,
    uid: u32,
    reason: String,
}

/// Go through a batch's steps in UID order with the containers built for it: count
/// vanished mail and duplicates (handing on the duplicates' containers), record failed
/// mail, and collect the new entries, up to the first UID the disk stopped.
fn outcomes(
    steps: Vec<(u32, Step)>,
    built: Vec<Result<NewLedgerEntry, IngestError>>,
    remaining: &mut BTreeSet<u32>,
    failed: &mut Vec<FailedUid>,
    tally: &mut Tally,
    containers: &mut dyn ContainerSink,
) -> Result<Vec<NewLedgerEntry>, Stopped> {
    let mut built = built.into_iter();
    let mut entries = Vec::new();
    for (uid, step) in steps {
        remaining.remove(&uid);
        let outcome = match step {
            Step::Vanished => {
                tally.vanished += 1;
                continue;
            }
            Step::Duplicate(container) => {
                tally.duplicates += 1;
                if let Some(container) = container {
                    tally.redelivered += usize::from(container.redelivered);
                    containers.send(container.into());
                }
                continue;
            }
            Step::Build => built.next().unwrap_or_else(|| Err(not_built())),
            Step::Stop(error) => Err(error),
        };
        match outcome {
            Ok(entry) => entries.push(entry),
            Err(IngestError::Storage(reason)) => {
                return Err(Stopped {
                    entries,
                    uid,
                    reason,
                });
            }
            Err(IngestError::Message(reason)) => {
                tracing::error!("email uid {uid} failed: {reason}");
                let failure = FailedUid {
                    uid,
                    reason,
                    attempts: 1,
                };
                tally.failed.push(failure.clone());
                failed.retain(|f| f.uid != uid);
                failed.push(failure);
            }
        }
    }
    Ok(entries)
}

/// SHA-256 digests of the new messages of the last two batches: those not committed
/// yet, which the ledger does not know. The same bytes under another UID of the same
/// poll are a duplicate too.
#[derive(Default)]
struct InFlight {
    previous: HashSet<String>,
    current: HashSet<String>,
}

impl InFlight {
    /// A new batch begins: the one before last is committed by now.
    fn next_batch(&mut self) {
        self.previous = std::mem::take(&mut self.current);
    }

    /// Whether these bytes are already on their way into the ledger; if not, they are
    /// from now on.
    fn seen(&mut self, sha256: &str) -> bool {
        self.previous.contains(sha256) || !self.current.insert(sha256.to_owned())
    }
}

/// Each UID of a batch with its step, and the containers to build.
struct Decided {
    steps: Vec<(u32, Step)>,
    jobs: Vec<ToBuild>,
}

/// Decide what becomes of each UID of a fetched batch, in UID order: the new ones get
/// their container ids and become jobs for the [`BuildPool`].
fn decide(
    store: &mut dyn StateStore,
    uids: &[u32],
    mut fetched: Fetched,
    ids: &mut std::ops::Range<i64>,
    in_flight: &mut InFlight,
) -> Result<Decided, String> {
    let mut steps = Vec::with_capacity(uids.len());
    let mut jobs = Vec::new();
    for &uid in uids {
        let Some(at) = fetched.iter().position(|(m, _)| m.uid == uid) else {
            steps.push((uid, Step::Vanished));
            continue;
        };
        let (message, oversize) = fetched.swap_remove(at);
        let identity = Identity::of(&message.raw);
        match find_existing(&mut *store, &identity) {
            Ok(Some((container, _))) => steps.push((uid, Step::Duplicate(container))),
            Ok(None) if in_flight.seen(&identity.sha256) => {
                tracing::info!("email uid {uid} has the same bytes as one before it in this poll");
                steps.push((uid, Step::Duplicate(None)));
            }
            Ok(None) => {
                let id = match ids.next() {
                    Some(id) => id,
                    None => store.next_container_id().map_err(|e| e.to_string())?,
                };
                tracing::info!("Parsing email uid: {uid}");
                jobs.push(ToBuild {
                    message,
                    identity,
                    oversize,
                    id,
                });
                steps.push((uid, Step::Build));
            }
            Err(error) => {
                // Nothing after this UID is decided: the poll stops at it.
                steps.push((uid, Step::Stop(error)));
                break;
            }
        }
    }
    Ok(Decided { steps, jobs })
}

/// Commit a settled batch, if there is one (see [`commit_and_emit`]).
fn settle(
    settled: Option<Settled>,
    store: &mut dyn StateStore,
    vault: &dyn Vault,
    folder: &Folder,
    containers: &mut dyn ContainerSink,
    tally: &mut Tally,
) -> Result<(), String> {
    match settled {
        Some(Settled { entries, progress }) => {
            commit_and_emit(store, vault, folder, entries, progress, containers, tally)
        }
        None => Ok(()),
    }
}

/// Commit a batch, then hand its containers on and count them: a container on stdout,
/// or in the summary, is always in the ledger, and every vault file the ledger names
/// is durable before the ledger names it.
fn commit_and_emit(
    store: &mut dyn StateStore,
    vault: &dyn Vault,
    folder: &Folder,
    entries: Vec<NewLedgerEntry>,
    progress: Option<FolderProgress>,
    containers: &mut dyn ContainerSink,
    tally: &mut Tally,
) -> Result<(), String> {
    vault.flush().map_err(|e| e.to_string())?;
    let committed = commit(store, folder, entries, progress)?;
    tally.ingested += committed.len();
    tally.artifacts += committed
        .iter()
        .map(|e| e.container.artifacts.len())
        .sum::<usize>();
    for entry in committed {
        containers.send(Outgoing {
            container: entry.container,
            json: Some(entry.json),
        });
    }
    // How far the poll is, once a batch: the progress line of a poll at a terminal is
    // drawn from it (src/progress.rs); below the default log level otherwise.
    tracing::debug!(
        target: crate::progress::TARGET,
        found = tally.found,
        ingested = tally.ingested,
        duplicates = tally.duplicates,
        failed = tally.failed.len(),
        bytes = tally.bytes,
        "progress"
    );
    Ok(())
}

/// The folder's state after a batch: the final position and queue, with every UID of
/// this poll not processed yet added to the queue.
fn progress(
    plan: &Plan,
    remaining: &BTreeSet<u32>,
    failed: &[FailedUid],
    finished: bool,
) -> FolderProgress {
    let mut pending: Vec<u32> = plan.pending.iter().chain(remaining).copied().collect();
    pending.sort_unstable();
    pending.dedup();
    let mut failed = failed.to_vec();
    failed.sort_by_key(|f| f.uid);
    FolderProgress {
        position: Position {
            next_uid: plan.next_uid,
            first_run_done: finished,
        },
        pending,
        failed,
    }
}

fn commit(
    store: &mut dyn StateStore,
    folder: &Folder,
    entries: Vec<NewLedgerEntry>,
    progress: Option<FolderProgress>,
) -> Result<Vec<NewLedgerEntry>, String> {
    if entries.is_empty() && progress.is_none() {
        return Ok(entries);
    }
    let batch = BatchCommit {
        folder_hash: folder.hash.clone(),
        uidvalidity: folder.uidvalidity,
        entries,
        progress,
        after_ingest: folder.after_ingest.clone(),
    };
    store.commit_batch(&batch).map_err(|e| e.to_string())?;
    // The committed entries come back, so their containers go on without a copy (one
    // deep clone of every container, raw email included, per poll before).
    Ok(batch.entries)
}

/// A batch: its UIDs, the next ones of the poll, and the messages fetched (a UID with
/// no message was expunged in the meantime).
struct Batch<'p> {
    uids: &'p [u32],
    fetched: Fetched,
}

/// Fetches a poll's batches over its session, a page of UIDs at a time: one size probe
/// for [`PROBE_UIDS`] UIDs, one `UID FETCH` of the header blocks of the page's oversize
/// mail (when it has any), and one `UID FETCH` of its other messages (up to
/// [`STRETCH_BYTES`] of them at a time), read a batch at a time as the poll needs them.
/// A page of twenty batches costs three round trips, not one or two per batch, and the
/// server sends the next batch while this one is built and committed; what is not read
/// yet waits in the connection, held back by TCP, not in memory.
struct Fetcher<'s> {
    session: &'s mut dyn MailSession,
    max_email_size_mb: u64,
    /// `RFC822.SIZE` of UIDs probed and not taken yet; `None`: expunged since.
    sizes: HashMap<u32, Option<u64>>,
    /// Messages that came before their batch was taken: the header blocks of oversize
    /// mail, and whole messages a server sends out of UID order (bounded by a stretch).
    arrived: HashMap<u32, (FetchedMessage, bool)>,
    /// The UIDs of the last fetch of whole messages that have not come (yet: the
    /// session knows whether its answer is still being read).
    awaited: HashSet<u32>,
}

/// Bytes of whole messages asked for in one `UID FETCH`: a server that answers out of
/// UID order makes the poll hold at most this much ahead of its batch.
const STRETCH_BYTES: u64 = 32 * 1024 * 1024;

impl<'s> Fetcher<'s> {
    fn new(session: &'s mut dyn MailSession, max_email_size_mb: u64) -> Self {
        Self {
            session,
            max_email_size_mb,
            sizes: HashMap::new(),
            arrived: HashMap::new(),
            awaited: HashSet::new(),
        }
    }

    fn limit(&self) -> u64 {
        self.max_email_size_mb.saturating_mul(1024 * 1024)
    }

    /// The next batch from `rest`: up to [`BATCH_MESSAGES`] UIDs, fewer when their sizes
    /// add up past [`BATCH_BYTES`] (one at least) or the page ends, so a batch is
    /// bounded in bytes as well as in messages.
    fn next<'p>(&mut self, rest: &'p [u32], tally: &mut Tally) -> Result<Batch<'p>, String> {
        let limit = self.limit();
        if rest
            .first()
            .is_some_and(|uid| !self.sizes.contains_key(uid))
        {
            self.start_page(&rest[..rest.len().min(PROBE_UIDS)], tally)?;
        }
        let candidates = &rest[..rest.len().min(BATCH_MESSAGES)];
        let mut taken = 0;
        let mut bytes = 0u64;
        for uid in candidates {
            // A UID past the page waits for the next one.
            let Some(size) = self.sizes.get(uid) else {
                break;
            };
            // Only headers of an oversized message are fetched; an expunged one is
            // nothing.
            let size = size.filter(|&s| s <= limit).unwrap_or(0);
            if taken > 0 && bytes + size > BATCH_BYTES {
                break;
            }
            bytes += size;
            taken += 1;
        }
        let uids = &candidates[..taken];
        let mut fetched = Vec::with_capacity(uids.len());
        for (at, uid) in uids.iter().enumerate() {
            let Some(size) = self.sizes.get(uid).copied().flatten() else {
                self.sizes.remove(uid);
                continue; // expunged before the probe
            };
            if let Some(message) = self.arrived.remove(uid) {
                fetched.push(message);
            } else if size <= limit {
                if !self.awaited.contains(uid) {
                    self.start_stretch(&rest[at..], tally)?;
                }
                if let Some(message) = self.await_message(*uid, tally)? {
                    fetched.push((message, false));
                }
            }
            // Otherwise it was expunged since: it did not come.
            self.sizes.remove(uid);
        }
        Ok(Batch { uids, fetched })
    }

    /// Probe the sizes of a page of UIDs and fetch the header blocks of its oversize
    /// mail.
    fn start_page(&mut self, page: &[u32], tally: &mut Tally) -> Result<(), String> {
        self.finish_stretch(tally)?;
        let probed: HashMap<u32, u32> = self
            .session
            .fetch_sizes(page)
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let limit = self.limit();
        let mut oversize = Vec::new();
        for uid in page {
            let size = probed.get(uid).map(|&s| u64::from(s));
            if size.is_some_and(|s| s > limit) {
                oversize.push(*uid);
            }
            self.sizes.insert(*uid, size);
        }
        if !oversize.is_empty() {
            for mut m in self
                .session
                .fetch_headers(&oversize)
                .map_err(|e| e.to_string())?
            {
                if let Some(&Some(size)) = self.sizes.get(&m.uid) {
                    m.size = u32::try_from(size).unwrap_or(u32::MAX);
                }
                tally.bytes += m.raw.len() as u64;
                self.arrived.insert(m.uid, (m, true));
            }
        }
        Ok(())
    }

    /// Ask for the whole messages of `rest` from its first UID on, as far as the page's
    /// probed sizes go and up to [`STRETCH_BYTES`] (one message at least).
    fn start_stretch(&mut self, rest: &[u32], tally: &mut Tally) -> Result<(), String> {
        self.finish_stretch(tally)?;
        let limit = self.limit();
        let mut stretch = Vec::new();
        let mut bytes = 0u64;
        for uid in rest {
            let Some(size) = self.sizes.get(uid) else {
                break;
            };
            let Some(size) = size.filter(|&s| s <= limit) else {
                continue;
            };
            if !stretch.is_empty() && bytes + size > STRETCH_BYTES {
                break;
            }
            bytes += size;
            stretch.push(*uid);
        }
        self.session
            .start_messages(&stretch)
            .map_err(|e| e.to_string())?;
        self.awaited = stretch.into_iter().collect();
        Ok(())
    }

    /// Read the fetch under way until `uid` comes, keeping messages that come before it;
    /// `None` once the answer is complete without it (expunged since the probe).
    fn await_message(
        &mut self,
        uid: u32,
        tally: &mut Tally,
    ) -> Result<Option<FetchedMessage>, String> {
        while self.awaited.contains(&uid) {
            let Some(message) = self.read_next(tally)? else {
                break;
            };
            if message.uid == uid {
                return Ok(Some(message));
            }
            self.arrived.insert(message.uid, (message, false));
        }
        Ok(None)
    }

    /// Read the rest of the fetch under way, if any, before the next command.
    fn finish_stretch(&mut self, tally: &mut Tally) -> Result<(), String> {
        while let Some(message) = self.read_next(tally)? {
            self.arrived.insert(message.uid, (message, false));
        }
        self.awaited.clear();
        Ok(())
    }

    /// The next message of the fetch under way, counted; `None` once its answer is
    /// complete (or when none is under way).
    fn read_next(&mut self, tally: &mut Tally) -> Result<Option<FetchedMessage>, String> {
        let message = self.session.next_message().map_err(|e| e.to_string())?;
        if let Some(message) = &message {
            tally.bytes += message.raw.len() as u64;
            self.awaited.remove(&message.uid);
        }
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::{FolderStatus, ImapError};

    /// A mailbox of `(uid, size)` messages that counts the commands it answers, and
    /// can send its answers in any order.
    #[derive(Default)]
    struct Counting {
        mailbox: Vec<(u32, usize)>,
        reversed: bool,
        probes: usize,
        fetches: Vec<Vec<u32>>,
        headers: Vec<Vec<u32>>,
        answer: Vec<FetchedMessage>,
    }

    impl Counting {
        fn message(&self, uid: u32, header_only: bool) -> Option<FetchedMessage> {
            let &(uid, size) = self.mailbox.iter().find(|(u, _)| *u == uid)?;
            Some(FetchedMessage {
                uid,
                size: u32::try_from(size).unwrap(),
                raw: vec![b'x'; if header_only { 10 } else { size }],
            })
        }
    }

    impl MailSession for Counting {
        fn capabilities(&mut self) -> Result<Vec<String>, ImapError> {
            unimplemented!()
        }
        fn list_folders(&mut self) -> Result<Vec<String>, ImapError> {
            unimplemented!()
        }
        fn examine(&mut self, _: &str) -> Result<FolderStatus, ImapError> {
            unimplemented!()
        }
        fn search_uids(&mut self, _: u32, _: u32) -> Result<Vec<u32>, ImapError> {
            unimplemented!()
        }
        fn fetch_sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
            assert!(self.answer.is_empty(), "a command in the middle of a fetch");
            self.probes += 1;
            Ok(uids
                .iter()
                .filter_map(|&uid| self.message(uid, false))
                .map(|m| (m.uid, m.size))
                .collect())
        }
        fn start_messages(&mut self, uids: &[u32]) -> Result<(), ImapError> {
            assert!(self.answer.is_empty(), "a command in the middle of a fetch");
            self.fetches.push(uids.to_vec());
            let mut answer: Vec<FetchedMessage> = uids
                .iter()
                .filter_map(|&uid| self.message(uid, false))
                .collect();
            // Popped from the back.
            if !self.reversed {
                answer.reverse();
            }
            self.answer = answer;
            Ok(())
        }
        fn next_message(&mut self) -> Result<Option<FetchedMessage>, ImapError> {
            Ok(self.answer.pop())
        }
        fn fetch_headers(&mut self, uids: &[u32]) -> Result<Vec<FetchedMessage>, ImapError> {
            assert!(self.answer.is_empty(), "a command in the middle of a fetch");
            self.headers.push(uids.to_vec());
            Ok(uids
                .iter()
                .filter_map(|&uid| self.message(uid, true))
                .collect())
        }
        fn logout(&mut self) -> Result<(), ImapError> {
            unimplemented!()
        }
    }

    /// A message fetched for a batch: its UID, its byte count, whether only its header
    /// block was fetched (oversize).
    type Got = (u32, usize, bool);

    /// Every batch of `uids` over `session`: its UIDs, and what was fetched for it.
    fn batches(session: &mut Counting, uids: &[u32]) -> Vec<(Vec<u32>, Vec<Got>)> {
        let mut fetcher = Fetcher::new(session, 25);
        let mut tally = Tally::default();
        let mut rest = uids;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let Batch { uids, fetched } = fetcher.next(rest, &mut tally).unwrap();
            assert!(!uids.is_empty());
            // Nothing is read ahead of its batch from a server that answers in order.
            rest = &rest[uids.len()..];
            let got = fetched
                .iter()
                .map(|(m, oversize)| (m.uid, m.raw.len(), *oversize))
                .collect();
            out.push((uids.to_vec(), got));
        }
        out
    }

    #[test]
    fn a_page_of_batches_is_one_probe_and_one_fetch() {
        let mut session = Counting {
            mailbox: (1..=2500).map(|uid| (uid, 1000)).collect(),
            ..Counting::default()
        };
        let uids: Vec<u32> = (1..=2500).collect();
        let batches = batches(&mut session, &uids);
        // 50 per batch, with a page ending every 1,000 UIDs.
        assert_eq!(batches.len(), 50);
        assert!(
            batches
                .iter()
                .all(|(uids, fetched)| uids.len() == 50 && fetched.len() == 50)
        );
        assert_eq!(session.probes, 3);
        let fetched: Vec<usize> = session.fetches.iter().map(Vec::len).collect();
        assert_eq!(fetched, [1000, 1000, 500]);
        let all: Vec<u32> = batches
            .iter()
            .flat_map(|(_, f)| f.iter().map(|m| m.0))
            .collect();
        assert_eq!(all, uids);
    }

    #[test]
    fn a_batch_of_large_mail_is_bounded_in_bytes_not_only_in_messages() {
        // 12 emails of 3 MiB: a batch of 50 messages would hold all 36 MiB at once.
        let mut session = Counting {
            mailbox: (1..=12).map(|uid| (uid, 3 << 20)).collect(),
            ..Counting::default()
        };
        let uids: Vec<u32> = (1..=12).collect();
        let batches = batches(&mut session, &uids);
        let sizes: Vec<usize> = batches
            .iter()
            .map(|(_, f)| f.iter().map(|m| m.1).sum())
            .collect();
        assert_eq!(sizes, [15 << 20, 15 << 20, 6 << 20]);
        // Two fetches, the first stopping at 32 MiB.
        let fetched: Vec<usize> = session.fetches.iter().map(Vec::len).collect();
        assert_eq!(fetched, [10, 2]);
    }

    #[test]
    fn expunged_mail_oversize_mail_and_any_answer_order_lose_nothing() {
        // 1-100; 7 expunged before the probe (absent), 30 and 31 over the 25 MB limit.
        let mut mailbox: Vec<(u32, usize)> =
            (1..=100).filter(|&u| u != 7).map(|u| (u, 500)).collect();
        for m in &mut mailbox {
            if m.0 == 30 || m.0 == 31 {
                m.1 = 26 << 20;
            }
        }
        for reversed in [false, true] {
            let mut session = Counting {
                mailbox: mailbox.clone(),
                reversed,
                ..Counting::default()
            };
            let uids: Vec<u32> = (1..=100).collect();
            let batches = batches(&mut session, &uids);
            let taken: Vec<u32> = batches.iter().flat_map(|(u, _)| u.clone()).collect();
            assert_eq!(taken, uids);
            let mut fetched: Vec<(u32, usize, bool)> =
                batches.into_iter().flat_map(|(_, f)| f).collect();
            fetched.sort_unstable();
            assert_eq!(fetched.len(), 99, "all but the expunged one");
            assert!(fetched.iter().all(|m| m.0 != 7));
            for m in &fetched {
                let oversize = m.0 == 30 || m.0 == 31;
                assert_eq!(m.2, oversize, "{m:?}");
                assert_eq!(m.1, if oversize { 10 } else { 500 }, "{m:?}");
            }
            assert_eq!(session.headers, [vec![30, 31]]);
            assert_eq!(session.fetches.len(), 1);
        }
    }
}
