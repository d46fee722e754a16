//! The store's delivery record and planned mailbox actions.
//!
//! A container a run commits waits in `undelivered`, under the run's number, until the
//! run has written its whole response
//! ([`crate::state::StateStore::confirm_delivery`]); what a run left there is claimed
//! and sent again by the next poll of its folder. Each container's `after_ingest` action
//! waits in `mailbox_actions` and is due once its container no longer waits for
//! delivery. The trait methods of [`SqliteStore`] call these.

use rusqlite::{Transaction, TransactionBehavior, params};

use super::{SqliteStore, classify};
use crate::{
    config::AfterIngest,
    state::{BatchCommit, MailboxAction, StateError},
};

/// Record that each new container of `batch` waits for this run's response; this run's
/// number (drawn now if it had none, unchanged for a batch of no container).
pub(super) fn await_delivery(
    tx: &Transaction<'_>,
    asset_id: &str,
    batch: &BatchCommit,
    known: Option<i64>,
) -> rusqlite::Result<Option<i64>> {
    if batch.entries.is_empty() {
        return Ok(known);
    }
    let run = delivery_run(tx, known)?;
    let mut wait = tx.prepare_cached(
        "INSERT INTO undelivered (asset_id, container_id, folder_hash, run) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for entry in &batch.entries {
        wait.execute(params![
            asset_id,
            entry.container.id,
            batch.folder_hash,
            run
        ])?;
    }
    Ok(Some(run))
}

impl SqliteStore {
    pub(super) fn take_undelivered(&mut self, folder_hash: &str) -> Result<Vec<i64>, StateError> {
        let path = self.path.clone();
        let err = |e| classify(&path, "claim undelivered containers", e);
        let others = "asset_id = ?1 AND folder_hash = ?2 AND run <> ?3";
        let mine = self.delivery_run.unwrap_or(0);
        // A read first: a run with nothing to redeliver (nearly every run) writes nothing.
        let waiting: bool = self
            .conn
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM undelivered WHERE {others})"
            ))
            .and_then(|mut stmt| {
                stmt.query_row(params![self.asset_id, folder_hash, mine], |r| r.get(0))
            })
            .map_err(err)?;
        if !waiting {
            return Ok(Vec::new());
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let run = delivery_run(&tx, self.delivery_run).map_err(err)?;
        let mut ids: Vec<i64> = tx
            .prepare(&format!(
                "UPDATE undelivered SET run = ?4 WHERE {others} RETURNING container_id"
            ))
            .and_then(|mut stmt| {
                stmt.query_map(params![self.asset_id, folder_hash, mine, run], |r| r.get(0))?
                    .collect()
            })
            .map_err(err)?;
        tx.commit().map_err(err)?;
        self.delivery_run = Some(run);
        ids.sort_unstable();
        Ok(ids)
    }

    pub(super) fn take_container(&mut self, id: i64) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| classify(&path, "claim an undelivered container", e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let run = delivery_run(&tx, self.delivery_run).map_err(err)?;
        tx.execute(
            "UPDATE undelivered SET run = ?3 WHERE asset_id = ?1 AND container_id = ?2",
            params![self.asset_id, id, run],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        self.delivery_run = Some(run);
        Ok(())
    }

    pub(super) fn settle_delivery(&mut self) -> Result<u64, StateError> {
        let Some(run) = self.delivery_run else {
            return Ok(0);
        };
        let delivered = self
            .conn
            .execute(
                "DELETE FROM undelivered WHERE asset_id = ?1 AND run = ?2",
                params![self.asset_id, run],
            )
            .map_err(self.err("record the delivery"))?;
        Ok(delivered as u64)
    }

    pub(super) fn read_due_actions(&self) -> Result<Vec<MailboxAction>, StateError> {
        type Row = (String, u32, String, Option<String>, u32);
        let rows: Vec<Row> = self
            .conn
            .prepare_cached(
                "SELECT folder, uidvalidity, action, target, uid FROM mailbox_actions m \
                 WHERE asset_id = ?1 AND NOT EXISTS (SELECT 1 FROM undelivered u \
                 WHERE u.asset_id = m.asset_id AND u.container_id = m.container_id) \
                 ORDER BY folder, uidvalidity, action, target, uid",
            )
            .and_then(|mut stmt| {
                stmt.query_map([&self.asset_id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect()
            })
            .map_err(self.err("read the mailbox actions"))?;
        let mut due: Vec<MailboxAction> = Vec::new();
        for (folder, uidvalidity, action, target, uid) in rows {
            let action = match (action.as_str(), target) {
                ("mark_seen", _) => AfterIngest::MarkSeen,
                ("flag", _) => AfterIngest::Flag,
                ("move", Some(target)) => AfterIngest::Move(target),
                _ => {
                    return Err(StateError::BadRow {
                        path: self.path.clone(),
                        what: format!("mailbox action of uid {uid} in folder {folder:?}"),
                    });
                }
            };
            match due.last_mut() {
                Some(last)
                    if last.folder == folder
                        && last.uidvalidity == uidvalidity
                        && last.action == action =>
                {
                    last.uids.push(uid);
                }
                _ => due.push(MailboxAction {
                    folder,
                    uidvalidity,
                    action,
                    uids: vec![uid],
                }),
            }
        }
        Ok(due)
    }

    pub(super) fn forget_actions(&mut self, done: &MailboxAction) -> Result<(), StateError> {
        let path = self.path.clone();
        let err = |e| classify(&path, "record the mailbox actions done", e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        {
            let mut forget = tx
                .prepare_cached(
                    "DELETE FROM mailbox_actions WHERE asset_id = ?1 AND folder = ?2 \
                     AND uidvalidity = ?3 AND uid = ?4",
                )
                .map_err(err)?;
            for uid in &done.uids {
                forget
                    .execute(params![self.asset_id, done.folder, done.uidvalidity, uid])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }
}

/// This run's number in the `undelivered` table: `known`, or a new one drawn inside
/// `tx`, so it is only ever used by the run that drew it.
fn delivery_run(tx: &Transaction<'_>, known: Option<i64>) -> rusqlite::Result<i64> {
    match known {
        Some(run) => Ok(run),
        None => tx.query_row(
            "UPDATE counters SET value = value + 1 WHERE name = 'delivery_run' RETURNING value",
            [],
            |row| row.get(0),
        ),
    }
}

/// Plan `action` for each new container's mail, once the container is delivered.
pub(super) fn plan_actions(
    tx: &Transaction<'_>,
    asset_id: &str,
    batch: &BatchCommit,
    folder: &str,
    action: &AfterIngest,
) -> rusqlite::Result<()> {
    let (name, target) = match action {
        AfterIngest::None => return Ok(()),
        AfterIngest::MarkSeen => ("mark_seen", None),
        AfterIngest::Flag => ("flag", None),
        AfterIngest::Move(target) => ("move", Some(target.as_str())),
    };
    let mut plan = tx.prepare_cached(
        "INSERT INTO mailbox_actions (asset_id, container_id, folder, uidvalidity, uid, action, target) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for entry in &batch.entries {
        plan.execute(params![
            asset_id,
            entry.container.id,
            folder,
            batch.uidvalidity,
            entry.uid,
            name,
            target
        ])?;
    }
    Ok(())
}
