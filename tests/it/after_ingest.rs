//! `after_ingest` against a real Dovecot: processed mail moved (with MOVE, or with
//! COPY + EXPUNGE of exactly its UIDs when the server lacks MOVE), marked seen or
//! flagged, only once its container is delivered, and never twice.

use std::{io::Read as _, process::Stdio, thread, time::Duration};

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    poll::new_uids,
    poll_faults::{append_all, ledger_count, message, poll, poll_request, spawn},
    support::wait_bounded,
};

/// The asset: INBOX polled oldest first, at most `first_run` emails, then `after`.
fn asset(server: &Dovecot, first_run: u32, after: &Value) -> Value {
    let mut config = json!({
        "server": "localhost", "port": server.imaps_port, "use_ssl": true,
        "username": USER, "password": PASSWORD, "ca_cert": server.ca_pem(),
        "folder": "INBOX", "first_run_max_emails": first_run, "max_emails": 1000,
        "timeout_secs": 10,
    });
    for (key, value) in after.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

/// An asset that moves what it ingests to `target`.
fn moving_to(server: &Dovecot, target: &str) -> Value {
    asset(
        server,
        1000,
        &json!({"after_ingest": "move", "after_ingest_folder": target}),
    )
}

/// `n` reports tagged `tag` in the INBOX of `server`, and an empty data directory.
fn inbox_of(server: &Dovecot, tag: &str, n: u32) -> tempfile::TempDir {
    let reports: Vec<Vec<u8>> = (1..=n).map(|i| message(tag, i)).collect();
    append_all(server, "INBOX", &reports);
    tempfile::tempdir().unwrap()
}

/// How many messages `mailbox` holds.
fn messages(server: &Dovecot, mailbox: &str) -> u32 {
    let status = server.status(mailbox);
    status
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("messages="))
        .unwrap_or_else(|| panic!("no message count in {status:?}"))
        .parse()
        .unwrap()
}

/// A folder of `n` reports and a poll that moves what it ingests to "Processed".
fn moved_by_a_poll(server: &Dovecot, n: u32) {
    let home = inbox_of(server, "move", n);
    let config = moving_to(server, "Processed");
    let (run, response) = poll(&poll_request(&config, "phish"), home.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), (1..=n).collect::<Vec<_>>());
    assert_eq!(messages(server, "INBOX"), 0, "{}", run.stderr);
    assert_eq!(messages(server, "Processed"), n);
    assert!(
        run.stderr
            .contains("Moved 10 emails from 'INBOX' to 'Processed'"),
        "{}",
        run.stderr
    );
    // Nothing is left to ingest or to move.
    let (run, response) = poll(&poll_request(&config, "phish"), home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(new_uids(&response, "INBOX").is_empty());
    assert_eq!(
        response["action_results"][0]["summary"]["after_ingest_done"],
        0
    );
    assert_eq!(messages(server, "Processed"), n);
}

#[test]
fn move_empties_the_inbox_into_the_folder_once() {
    moved_by_a_poll(&Dovecot::start(), 10);
}

#[test]
fn without_move_copy_and_uid_expunge_give_the_same() {
    let server = Dovecot::start_with_capabilities("IMAP4rev1 LITERAL+ UIDPLUS");
    moved_by_a_poll(&server, 10);
}

#[test]
fn without_move_or_uidplus_nothing_is_expunged_and_the_refusal_says_why() {
    let server = Dovecot::start_with_capabilities("IMAP4rev1 LITERAL+");
    let home = inbox_of(&server, "refuse", 3);
    let config = moving_to(&server, "Processed");
    let (run, response) = poll(&poll_request(&config, "phish"), home.path());
    // Ingesting never waits on housekeeping: the containers are delivered.
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), [1, 2, 3]);
    assert!(run.stderr.contains("neither MOVE"), "{}", run.stderr);
    assert_eq!(messages(&server, "INBOX"), 3);
    // The next poll tries again, and says so in its message.
    let (_, response) = poll(&poll_request(&config, "phish"), home.path());
    let message = response["message"].as_str().unwrap();
    assert!(
        message.contains("after_ingest \"move\" of 3 emails in folder \"INBOX\" failed")
            && message.contains("neither MOVE"),
        "{message}"
    );
    assert_eq!(messages(&server, "INBOX"), 3);
    // Turned off, what was planned is dropped, not done later when turned on again.
    let off = asset(&server, 1000, &json!({"after_ingest": "none"}));
    let (run, _) = poll(&poll_request(&off, "phish"), home.path());
    assert!(
        run.stderr
            .contains("actions planned for 3 emails are dropped"),
        "{}",
        run.stderr
    );
    let (_, response) = poll(&poll_request(&config, "phish"), home.path());
    assert_eq!(
        response["message"],
        "Ingested 0 new emails (0 already ingested, 0 failed)"
    );
}

#[test]
fn moved_mail_is_still_found_by_container_id_and_by_uid_in_its_new_folder() {
    let server = Dovecot::start();
    let home = inbox_of(&server, "found", 2);
    let config = moving_to(&server, "Processed");
    let (_, response) = poll(&poll_request(&config, "phish"), home.path());
    let id = response["containers"][1]["id"].as_i64().unwrap();
    assert_eq!(messages(&server, "INBOX"), 0);
    let get = |parameter: Value| {
        let run = crate::support::run_json(
            &json!({"identifier": "get_email", "asset_id": "phish", "config": config,
                    "parameters": [parameter]}),
            home.path(),
        );
        assert_eq!(run.code, 0, "{}", run.stdout);
        run.json()["action_results"][0]["data"][0]["Subject"].clone()
    };
    assert_eq!(get(json!({"container_id": id})), "found report 2");
    assert_eq!(
        get(json!({"id": 2, "folder": "Processed"})),
        "found report 2"
    );
}

#[test]
fn mark_seen_and_flag_touch_only_the_mail_ingested() {
    for (action, flag) in [("mark_seen", "\\Seen"), ("flag", "\\Flagged")] {
        let server = Dovecot::start();
        let home = inbox_of(&server, action, 8);
        // The first poll takes 5 of the 8.
        let config = asset(&server, 5, &json!({"after_ingest": action}));
        let (run, response) = poll(&poll_request(&config, "phish"), home.path());
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(new_uids(&response, "INBOX"), [1, 2, 3, 4, 5]);
        let flagged: Vec<u32> = server
            .flags("INBOX")
            .into_iter()
            .filter(|(_, flags)| flags.contains(flag))
            .map(|(uid, _)| uid)
            .collect();
        assert_eq!(flagged, [1, 2, 3, 4, 5], "{action}");
        // Nothing else was touched: no other flag on any message.
        for (uid, flags) in server.flags("INBOX") {
            assert!(
                flags
                    .split_whitespace()
                    .all(|f| f == flag || f == "\\Recent"),
                "{action}: uid {uid} has {flags}"
            );
        }
    }
}

#[test]
fn a_poll_killed_after_its_commit_and_before_the_move_moves_once_and_duplicates_nothing() {
    const N: u32 = 200;
    let server = Dovecot::start();
    let home = inbox_of(&server, "killmove", N);
    let config = moving_to(&server, "Processed");
    let request = poll_request(&config, "phish");
    // A reader that never reads: the run commits its first batch, then blocks writing
    // the containers (far more than a pipe holds). Killed there, it has committed mail
    // that is not delivered, so it must not have moved any.
    let mut child = spawn(&request, home.path(), Stdio::piped);
    let mut stderr = child.stderr.take().unwrap();
    let err = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ledger_count(home.path(), "phish") == 0 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    thread::sleep(Duration::from_millis(200));
    child.kill().unwrap();
    assert!(wait_bounded(&mut child, Duration::from_secs(10)).is_some());
    drop(child.stdout.take());
    drop(err.join().unwrap());
    let committed = ledger_count(home.path(), "phish");
    assert!(committed > 0);
    assert_eq!(
        messages(&server, "INBOX"),
        N,
        "nothing moved before delivery"
    );

    // The rerun delivers what the killed run committed, ingests the rest, then moves
    // every mail once.
    let (run, response) = poll(&request, home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let containers = response["containers"].as_array().unwrap();
    let redelivered = containers
        .iter()
        .filter(|c| c["redelivered"] == true)
        .count();
    assert_eq!(redelivered, committed as usize);
    assert_eq!(containers.len(), N as usize);
    assert_eq!(messages(&server, "INBOX"), 0);
    assert_eq!(messages(&server, "Processed"), N, "each mail moved once");
    assert_eq!(ledger_count(home.path(), "phish"), N);
}

#[test]
fn a_stateless_poll_moves_mail_only_once_its_state_comes_back() {
    let server = Dovecot::start();
    let home = inbox_of(&server, "stateless", 4);
    let config = moving_to(&server, "Done");
    let mut request = poll_request(&config, "phish");
    request["state"] = json!({});
    let (run, response) = poll(&request, home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), [1, 2, 3, 4]);
    // Not yet: the caller may not have stored the containers.
    assert_eq!(messages(&server, "INBOX"), 4);
    let state = &response["state"];
    assert_eq!(state["mailbox_actions"][0]["uids"], "1:4", "{state}");
    assert_eq!(state["mailbox_actions"][0]["target"], "Done");
    // The caller passes the state back: delivered, so moved, before anything else.
    request["state"] = state.clone();
    let (run, response) = poll(&request, home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(messages(&server, "INBOX"), 0);
    assert_eq!(messages(&server, "Done"), 4);
    assert_eq!(
        response["action_results"][0]["summary"]["after_ingest_done"],
        4
    );
    assert!(response["state"].get("mailbox_actions").is_none());
    assert!(!home.path().join("state.sqlite3").exists());
}

#[test]
fn test_connectivity_reports_what_after_ingest_needs_and_fails_without_it() {
    let test = |server: &Dovecot, after: &Value| {
        let config = asset(server, 1000, after);
        let run = crate::support::run_json(
            &json!({"identifier": "test_asset_connectivity", "config": config}),
            tempfile::tempdir().unwrap().path(),
        );
        let response = run.json();
        (run.code, response)
    };
    let server = Dovecot::start();
    let (code, response) = test(
        &server,
        &json!({"after_ingest": "move", "after_ingest_folder": "Processed"}),
    );
    assert_eq!(code, 0, "{response}");
    let report = &response["action_results"][0]["data"][0]["after_ingest"];
    assert_eq!(report["folder_read_write"], true, "{report}");
    assert_eq!(report["move"], true);
    assert_eq!(report["move_with"], "UID MOVE");
    assert_eq!(report["target_exists"], false);
    let (code, response) = test(&server, &json!({}));
    assert_eq!(code, 0);
    assert!(response["action_results"][0]["data"][0]["after_ingest"].is_null());

    let old = Dovecot::start_with_capabilities("IMAP4rev1 LITERAL+");
    let (code, response) = test(
        &old,
        &json!({"after_ingest": "move", "after_ingest_folder": "Processed"}),
    );
    assert_eq!(code, 1);
    let message = response["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Connectivity test failed: after_ingest \"move\": the server offers neither MOVE"
        ),
        "{message}"
    );
    // Flags need no MOVE: the same server passes with mark_seen.
    let (code, response) = test(&old, &json!({"after_ingest": "mark_seen"}));
    assert_eq!(code, 0, "{response}");
}

#[test]
fn a_target_folder_the_server_will_not_create_is_named_and_the_mail_stays() {
    let server = Dovecot::start();
    let home = inbox_of(&server, "nocreate", 2);
    // Dovecot refuses a name that begins with its hierarchy separator.
    let config = moving_to(&server, ".Done");
    let (run, response) = poll(&poll_request(&config, "phish"), home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), [1, 2]);
    assert!(
        run.stderr.contains(
            "config.after_ingest_folder \".Done\" does not exist and could not be created"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(messages(&server, "INBOX"), 2);
}
