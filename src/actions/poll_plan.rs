//! Which UIDs a poll takes, and what it leaves queued: pure, so every case is unit-tested.

use std::collections::BTreeSet;

use crate::config::IngestManner;

/// What one poll ingests and the queue it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// UIDs to ingest now, ascending.
    pub take: Vec<u32>,
    /// UIDs left for later polls (latest-first overflow, earlier overflow still queued).
    pub pending: Vec<u32>,
    /// The new position: the lowest UID not yet considered.
    pub next_uid: u32,
}

/// Choose up to `limit` UIDs from the new ones (`new`, all at or above `next_uid`) and
/// the queue (`pending`, all below it).
///
/// Oldest first takes the lowest UIDs and leaves the rest above the position, to be
/// found again next time. Latest first takes the highest and queues every other one, so
/// a backlog larger than the limit is worked off by later polls instead of being
/// skipped for good (the reference's bug 3).
pub fn plan(
    new: &[u32],
    pending: &[u32],
    next_uid: u32,
    limit: usize,
    manner: IngestManner,
) -> Plan {
    let candidates: BTreeSet<u32> = new.iter().chain(pending).copied().collect();
    let take: Vec<u32> = match manner {
        IngestManner::OldestFirst => candidates.iter().take(limit).copied().collect(),
        IngestManner::LatestFirst => {
            let mut highest: Vec<u32> = candidates.iter().rev().take(limit).copied().collect();
            highest.reverse();
            highest
        }
    };
    let taken: BTreeSet<u32> = take.iter().copied().collect();
    let next_uid = match manner {
        // Every new UID is either taken or queued now.
        IngestManner::LatestFirst => new
            .iter()
            .max()
            .map_or(next_uid, |&m| m.saturating_add(1))
            .max(next_uid),
        // New UIDs not taken stay above the position and are found again.
        IngestManner::OldestFirst => new
            .iter()
            .filter(|u| taken.contains(u))
            .max()
            .map_or(next_uid, |&m| m.saturating_add(1))
            .max(next_uid),
    };
    let pending = candidates
        .into_iter()
        .filter(|u| !taken.contains(u) && *u < next_uid)
        .collect();
    Plan {
        take,
        pending,
        next_uid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLDEST: IngestManner = IngestManner::OldestFirst;
    const LATEST: IngestManner = IngestManner::LatestFirst;

    #[test]
    fn oldest_first_takes_lowest_and_leaves_the_rest_above_the_position() {
        let p = plan(&[3, 7, 8, 12], &[], 1, 2, OLDEST);
        assert_eq!(
            p,
            Plan {
                take: vec![3, 7],
                pending: vec![],
                next_uid: 8
            }
        );
        let p = plan(&[8, 12], &[], 8, 1, OLDEST);
        assert_eq!(
            p,
            Plan {
                take: vec![8],
                pending: vec![],
                next_uid: 9
            }
        );
    }

    #[test]
    fn latest_first_queues_the_overflow_instead_of_skipping_it() {
        // The reference ingested 8 and 12 and never 3 and 7.
        let p = plan(&[3, 7, 8, 12], &[], 1, 2, LATEST);
        assert_eq!(
            p,
            Plan {
                take: vec![8, 12],
                pending: vec![3, 7],
                next_uid: 13
            }
        );
        // Next poll with one new message: the newest first, then the queue.
        let p = plan(&[20], &[3, 7], 13, 2, LATEST);
        assert_eq!(
            p,
            Plan {
                take: vec![7, 20],
                pending: vec![3],
                next_uid: 21
            }
        );
        let p = plan(&[], &[3], 21, 2, LATEST);
        assert_eq!(
            p,
            Plan {
                take: vec![3],
                pending: vec![],
                next_uid: 21
            }
        );
    }

    #[test]
    fn nothing_new_keeps_the_position() {
        assert_eq!(
            plan(&[], &[], 5, 3, OLDEST),
            Plan {
                take: vec![],
                pending: vec![],
                next_uid: 5
            }
        );
        assert_eq!(
            plan(&[], &[], 5, 3, LATEST),
            Plan {
                take: vec![],
                pending: vec![],
                next_uid: 5
            }
        );
    }

    #[test]
    fn a_queue_left_by_latest_first_is_drained_in_oldest_first_too() {
        let p = plan(&[10, 11], &[2, 4], 10, 3, OLDEST);
        assert_eq!(
            p,
            Plan {
                take: vec![2, 4, 10],
                pending: vec![],
                next_uid: 11
            }
        );
    }
}
