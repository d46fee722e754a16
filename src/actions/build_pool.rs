//! The threads a poll builds containers on: one per core, started once per poll and fed
//! batch by batch, while the poll's own thread fetches the next batch.
//!
//! They live as long as the poll, rather than a batch, because glibc gives every new
//! thread a malloc arena of its own and keeps what is freed in it: threads started per
//! batch spread the poll over a dozen arenas and more than doubled its peak RSS.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex, PoisonError,
        mpsc::{Receiver, Sender, channel},
    },
    thread::Scope,
};

use super::ingest::{Builder, IngestError, ToBuild};
use crate::state::NewLedgerEntry;

/// What a worker hands back: the job's place in its batch, and the ledger entry.
type Done = (usize, Result<NewLedgerEntry, IngestError>);

/// Worker threads building containers for one poll. Dropping the pool closes its queue,
/// which ends every worker's loop; the scope then joins them.
pub struct BuildPool {
    jobs: Sender<(usize, ToBuild)>,
    done: Receiver<Done>,
}

/// A job with no result: not the message's fault, so the poll stops with it queued.
pub fn not_built() -> IngestError {
    IngestError::Storage("internal error: the container of this email was not built".to_owned())
}

impl BuildPool {
    /// Start one worker per core in `scope`; they stop when the pool is dropped.
    pub fn start<'scope>(
        scope: &'scope Scope<'scope, '_>,
        builder: Builder<'scope>,
        folder: &'scope str,
    ) -> Self {
        let workers = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let (jobs, queue) = channel::<(usize, ToBuild)>();
        let (finished, done) = channel();
        let queue = Arc::new(Mutex::new(queue));
        for _ in 0..workers {
            let finished = finished.clone();
            let queue = Arc::clone(&queue);
            scope.spawn(move || {
                loop {
                    // Messages differ a lot in size, so a worker takes the next job
                    // when it is free.
                    let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
                    let Ok((index, job)) = next else {
                        return;
                    };
                    let uid = job.message.uid;
                    // `build` already turns a panic of the pipeline into a failed
                    // message; this keeps the worker alive should anything else panic,
                    // so the batch never waits for a result that will not come.
                    let result =
                        catch_unwind(AssertUnwindSafe(|| builder.build(job, folder)))
                            .unwrap_or_else(|_| {
                                Err(IngestError::Message(format!(
                                    "internal error while building the container of email uid {uid} (a bug: please report it)"
                                )))
                            });
                    if finished.send((index, result)).is_err() {
                        return;
                    }
                }
            });
        }
        BuildPool { jobs, done }
    }

    /// Build the containers of `jobs` while `meanwhile` (the next batch's fetch) runs on
    /// this thread; the results come back in the order of `jobs`.
    pub fn build<T>(
        &self,
        jobs: Vec<ToBuild>,
        meanwhile: impl FnOnce() -> T,
    ) -> (Vec<Result<NewLedgerEntry, IngestError>>, T) {
        let count = jobs.len();
        let sent = jobs
            .into_iter()
            .enumerate()
            .map(|job| self.jobs.send(job).is_ok())
            .filter(|&sent| sent)
            .count();
        let other = meanwhile();
        let mut results: Vec<Option<Result<NewLedgerEntry, IngestError>>> =
            std::iter::repeat_with(|| None).take(count).collect();
        for _ in 0..sent {
            let Ok((index, result)) = self.done.recv() else {
                break;
            };
            if let Some(slot) = results.get_mut(index) {
                *slot = Some(result);
            }
        }
        let results = results
            .into_iter()
            .map(|result| result.unwrap_or_else(|| Err(not_built())))
            .collect();
        (results, other)
    }
}
