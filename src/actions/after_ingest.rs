//! After-ingest mailbox actions (`after_ingest`): mark processed mail seen, flag it, or
//! move it out of the polled folder, once its container is delivered.
//!
//! An action is planned in the transaction that commits the container, and becomes due
//! only when the container is delivered: after the run that carries it has written its
//! whole response (right then, by [`crate::dispatch::Delivery::confirm`]), or, for a
//! stateless run, when the caller passes the returned state back. Whatever is due and
//! not done yet (the run was killed after its response, the server said no) is done
//! first by the next poll. Doing an action twice changes nothing: a flag set again is
//! set, and `UID MOVE` of mail already gone moves nothing.

use crate::{
    config::AfterIngest,
    imap::MailSession,
    state::{MailboxAction, StateStore},
};

/// UIDs per command: 1,000 scattered UIDs make a line of about 11 KB, far below what
/// servers accept (Dovecot: 64 KB).
const UIDS_PER_COMMAND: usize = 1000;

/// What [`run_due`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Done {
    /// Mails acted on.
    pub mails: usize,
    /// Mails whose folder's UIDVALIDITY changed since they were fetched: their UIDs
    /// name nothing any more, so their actions were dropped.
    pub stale: usize,
}

/// Do every due action over `session`, folder by folder; stop at the first that
/// fails (it stays due, with the rest, for the next poll).
pub fn run_due(session: &mut dyn MailSession, store: &mut dyn StateStore) -> Result<Done, String> {
    let due = store.due_actions().map_err(|e| e.to_string())?;
    let mut done = Done::default();
    if due.is_empty() {
        return Ok(done);
    }
    let capabilities = session.capabilities().map_err(|e| e.to_string())?;
    for action in &due {
        match act(session, &capabilities, action) {
            Ok(true) => done.mails += action.uids.len(),
            Ok(false) => done.stale += action.uids.len(),
            Err(reason) => {
                return Err(format!(
                    "after_ingest \"{}\" of {} emails in folder {:?} failed: {reason}; it is tried again by the next poll",
                    action.action.as_str(),
                    action.uids.len(),
                    action.folder
                ));
            }
        }
        store.actions_done(action).map_err(|e| e.to_string())?;
    }
    tracing::info!(
        "after_ingest: {} emails done{}",
        done.mails,
        if done.stale > 0 {
            format!(
                ", {} dropped (their folder's UIDVALIDITY changed)",
                done.stale
            )
        } else {
            String::new()
        }
    );
    Ok(done)
}

/// `after_ingest` was turned off: forget what is still due rather than act on old mail
/// long after, should it be turned on again. How many mails that concerned.
pub fn drop_due(store: &mut dyn StateStore) -> Result<usize, String> {
    let due = store.due_actions().map_err(|e| e.to_string())?;
    let mut dropped = 0;
    for action in &due {
        store.actions_done(action).map_err(|e| e.to_string())?;
        dropped += action.uids.len();
    }
    if dropped > 0 {
        tracing::info!(
            "after_ingest is now none: the actions planned for {dropped} emails are dropped"
        );
    }
    Ok(dropped)
}

/// Do one action; `false` when its UIDs are stale.
fn act(
    session: &mut dyn MailSession,
    capabilities: &[String],
    action: &MailboxAction,
) -> Result<bool, String> {
    let (status, permanent) = session.select(&action.folder).map_err(|e| e.to_string())?;
    if status.uid_validity != Some(action.uidvalidity) {
        tracing::warn!(
            "after_ingest: UIDVALIDITY of folder '{}' is now {:?}, not {}: the {} emails' UIDs name nothing any more; their action is dropped",
            action.folder,
            status.uid_validity,
            action.uidvalidity,
            action.uids.len()
        );
        return Ok(false);
    }
    let allowed = |flag: &str| {
        permanent
            .iter()
            .any(|p| p.eq_ignore_ascii_case(flag) || p == "\\*")
    };
    let needs = |flag: &str| {
        if allowed(flag) {
            Ok(())
        } else {
            Err(format!(
                "the server does not let this user set {flag} in folder {:?} (it opened read-only, or PERMANENTFLAGS lacks it)",
                action.folder
            ))
        }
    };
    let err = |e: crate::imap::ImapError| e.to_string();
    // A command line stays short whatever UIDs a poll took (servers cap its length).
    let chunks = || action.uids.chunks(UIDS_PER_COMMAND);
    match &action.action {
        AfterIngest::None => {}
        AfterIngest::MarkSeen => {
            needs("\\Seen")?;
            for uids in chunks() {
                session.add_flags(uids, "\\Seen").map_err(err)?;
            }
        }
        AfterIngest::Flag => {
            needs("\\Flagged")?;
            for uids in chunks() {
                session.add_flags(uids, "\\Flagged").map_err(err)?;
            }
        }
        AfterIngest::Move(target) => {
            let how = MoveWith::of(capabilities)?;
            if !session.list_folders().map_err(err)?.contains(target) {
                session.create_folder(target).map_err(|e| {
                    format!("{e} (config.after_ingest_folder {target:?} does not exist and could not be created)")
                })?;
                tracing::info!("Created folder '{target}'");
            }
            for uids in chunks() {
                match how {
                    MoveWith::Move => session.move_messages(uids, target).map_err(err)?,
                    MoveWith::CopyExpunge => {
                        needs("\\Deleted")?;
                        session.copy_messages(uids, target).map_err(err)?;
                        session.add_flags(uids, "\\Deleted").map_err(err)?;
                        session.expunge_messages(uids).map_err(err)?;
                    }
                }
            }
            tracing::info!(
                "Moved {} emails from '{}' to '{target}'",
                action.uids.len(),
                action.folder
            );
        }
    }
    Ok(true)
}

/// How the server lets mail be moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveWith {
    /// `UID MOVE` (RFC 6851): atomic.
    Move,
    /// `UID COPY`, `UID STORE +FLAGS (\Deleted)`, `UID EXPUNGE` of exactly those UIDs
    /// (UIDPLUS, RFC 4315).
    CopyExpunge,
}

impl MoveWith {
    /// The way these capabilities allow, or why there is none.
    pub fn of(capabilities: &[String]) -> Result<MoveWith, String> {
        let has = |name: &str| capabilities.iter().any(|c| c.eq_ignore_ascii_case(name));
        if has("MOVE") {
            Ok(MoveWith::Move)
        } else if has("UIDPLUS") {
            Ok(MoveWith::CopyExpunge)
        } else {
            Err("the server offers neither MOVE (RFC 6851) nor UIDPLUS (RFC 4315); moving without them needs a plain EXPUNGE, which would also remove any other message marked \\Deleted in the folder, so soar-imap refuses".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        imap::{FetchedMessage, FolderStatus, ImapError},
        state::MemoryStore,
    };

    /// A folder with UIDVALIDITY 7 whose session records the flag and move commands.
    #[derive(Default)]
    struct Recording {
        permanent: Vec<String>,
        commands: Vec<String>,
    }

    impl MailSession for Recording {
        fn capabilities(&mut self) -> Result<Vec<String>, ImapError> {
            Ok(vec!["IMAP4rev1".into(), "MOVE".into()])
        }
        fn list_folders(&mut self) -> Result<Vec<String>, ImapError> {
            Ok(vec!["INBOX".into(), "Done".into()])
        }
        fn examine(&mut self, _: &str) -> Result<FolderStatus, ImapError> {
            unreachable!("after_ingest selects")
        }
        fn search_uids(&mut self, _: u32, _: u32) -> Result<Vec<u32>, ImapError> {
            Ok(Vec::new())
        }
        fn fetch_sizes(&mut self, _: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
            Ok(Vec::new())
        }
        fn start_messages(&mut self, _: &[u32]) -> Result<(), ImapError> {
            Ok(())
        }
        fn next_message(&mut self) -> Result<Option<FetchedMessage>, ImapError> {
            Ok(None)
        }
        fn fetch_headers(&mut self, _: &[u32]) -> Result<Vec<FetchedMessage>, ImapError> {
            Ok(Vec::new())
        }
        fn logout(&mut self) -> Result<(), ImapError> {
            Ok(())
        }
        fn select(&mut self, _: &str) -> Result<(FolderStatus, Vec<String>), ImapError> {
            let status = FolderStatus {
                exists: 3000,
                uid_validity: Some(7),
                uid_next: Some(3001),
            };
            Ok((status, self.permanent.clone()))
        }
        fn add_flags(&mut self, uids: &[u32], flags: &str) -> Result<(), ImapError> {
            self.commands.push(format!("{flags} {}", uids.len()));
            Ok(())
        }
        fn move_messages(&mut self, uids: &[u32], folder: &str) -> Result<(), ImapError> {
            self.commands
                .push(format!("move {} to {folder}", uids.len()));
            Ok(())
        }
    }

    /// A stateless store whose state carries these due actions.
    fn due(actions: &serde_json::Value) -> MemoryStore {
        let state = serde_json::json!({"mailbox_actions": actions});
        MemoryStore::from_json(&state, "x").unwrap()
    }

    #[test]
    fn many_uids_go_in_commands_of_at_most_a_thousand_and_stale_ones_are_dropped() {
        let mut store = due(&serde_json::json!([
            {"folder": "INBOX", "uidvalidity": 7, "action": "flag", "uids": "1:2500"},
            {"folder": "INBOX", "uidvalidity": 6, "action": "move", "target": "Done", "uids": "1:3"},
        ]));
        let mut session = Recording {
            permanent: vec!["\\Flagged".into(), "\\Deleted".into()],
            ..Recording::default()
        };
        let done = run_due(&mut session, &mut store).unwrap();
        assert_eq!(
            done,
            Done {
                mails: 2500,
                stale: 3
            }
        );
        assert_eq!(
            session.commands,
            ["\\Flagged 1000", "\\Flagged 1000", "\\Flagged 500"]
        );
        assert!(store.due_actions().unwrap().is_empty(), "all settled");
    }

    #[test]
    fn a_flag_the_folder_does_not_keep_is_an_error_and_the_action_stays_due() {
        let mut store = due(&serde_json::json!([
            {"folder": "INBOX", "uidvalidity": 7, "action": "mark_seen", "uids": "4"},
        ]));
        // Read-only: no PERMANENTFLAGS.
        let mut session = Recording::default();
        let error = run_due(&mut session, &mut store).unwrap_err();
        assert!(
            error.starts_with("after_ingest \"mark_seen\" of 1 emails in folder \"INBOX\" failed: the server does not let this user set \\Seen"),
            "{error}"
        );
        assert!(session.commands.is_empty());
        assert_eq!(store.due_actions().unwrap().len(), 1);
    }

    #[test]
    fn a_move_takes_move_then_uidplus_and_never_a_plain_expunge() {
        let caps = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            MoveWith::of(&caps(&["IMAP4rev1", "MOVE", "UIDPLUS"])),
            Ok(MoveWith::Move)
        );
        assert_eq!(
            MoveWith::of(&caps(&["IMAP4rev1", "UIDPLUS"])),
            Ok(MoveWith::CopyExpunge)
        );
        let refused = MoveWith::of(&caps(&["IMAP4rev1"])).unwrap_err();
        assert!(refused.contains("neither MOVE"), "{refused}");
    }
}
