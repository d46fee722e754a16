//! `on poll` against a real Dovecot: limits, ordering, UIDVALIDITY changes, crashes.

use std::path::Path;

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    support::{Run, run_json},
};

fn message(n: u32) -> Vec<u8> {
    format!(
        "From: sender{n}@example.com\r\nTo: soc@example.org\r\nSubject: report {n}\r\nMessage-ID: <poll-{n}@example.com>\r\n\r\nPlease check https://site{n}.example.com/login from 198.51.100.{n}\r\n"
    )
    .into_bytes()
}

fn config(server: &Dovecot, folder: &str, first_run: u32, max: u32, manner: &str) -> Value {
    json!({
        "server": "localhost", "port": server.imaps_port, "use_ssl": true,
        "username": USER, "password": PASSWORD, "ca_cert": server.ca_pem(),
        "folder": folder, "first_run_max_emails": first_run, "max_emails": max,
        "ingest_manner": manner, "timeout_secs": 10,
    })
}

fn poll(config: &Value, home: &Path) -> (Run, Value) {
    let run = run_json(
        &json!({"identifier": "on_poll", "asset_id": "phish", "config": config,
                "parameters": [{"container_count": 4_294_967_295_u64, "artifact_count": 4_294_967_295_u64}]}),
        home,
    );
    let response = run.json();
    assert!(
        !run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD),
        "password leaked"
    );
    (run, response)
}

/// The UIDs (from the SDIs) of the containers a poll created, checking the SDI format:
/// neither those it found already ingested nor those it sent again for an earlier run.
pub fn new_uids(response: &Value, folder: &str) -> Vec<u32> {
    let prefix = format!("{} : ", soar_imap::sdi::md5_hex(folder.as_bytes()));
    response["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("duplicate").is_none() && c.get("redelivered").is_none())
        .map(|c| {
            let sdi = c["source_data_identifier"].as_str().unwrap();
            sdi.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("SDI {sdi} lacks {prefix}"))
                .parse()
                .unwrap()
        })
        .collect()
}

fn no_message_seen(server: &Dovecot, folder: &str) {
    let flags = server.flags(folder);
    assert!(
        flags.iter().all(|(_, f)| !f.contains("\\Seen")),
        "{flags:?}"
    );
}

#[test]
fn scheduled_polls_take_first_run_then_max_and_mark_nothing_read() {
    let server = Dovecot::start();
    let folder = "Phish Reports";
    server.create_mailbox(folder);
    for n in 1..=10 {
        server.save(folder, &message(n));
    }
    let home = tempfile::tempdir().unwrap();
    let config = config(&server, folder, 4, 3, "oldest first");
    let mut all = Vec::new();
    for (expected, first) in [
        (vec![1, 2, 3, 4], true),
        (vec![5, 6, 7], false),
        (vec![8, 9, 10], false),
        (vec![], false),
    ] {
        let (run, response) = poll(&config, home.path());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        assert_eq!(new_uids(&response, folder), expected);
        assert_eq!(
            run.stderr.contains("First time Ingestion detected."),
            first,
            "{}",
            run.stderr
        );
        let summary = &response["action_results"][0]["summary"];
        assert_eq!(summary["emails_ingested"], expected.len());
        assert_eq!(summary["emails_failed"], 0);
        all.extend(expected);
    }
    assert_eq!(all, (1..=10).collect::<Vec<_>>());
    no_message_seen(&server, folder);
}

#[test]
fn latest_first_ingests_everything_over_successive_polls_each_once() {
    let server = Dovecot::start();
    for n in 1..=20 {
        server.save("INBOX", &message(n));
    }
    let home = tempfile::tempdir().unwrap();
    let config = config(&server, "INBOX", 3, 3, "latest first");
    let mut seen = Vec::new();
    let (_, first) = poll(&config, home.path());
    assert_eq!(new_uids(&first, "INBOX"), [18, 19, 20], "the newest first");
    seen.extend(new_uids(&first, "INBOX"));
    for _ in 0..8 {
        let (run, response) = poll(&config, home.path());
        assert_eq!(run.code, 0, "{}", run.stdout);
        seen.extend(new_uids(&response, "INBOX"));
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<_>>(),
        "every message exactly once"
    );
}

#[test]
fn a_recreated_folder_with_a_new_uidvalidity_creates_no_duplicates_and_loses_nothing() {
    let server = Dovecot::start();
    let folder = "Reports";
    server.create_mailbox(folder);
    for n in 1..=5 {
        server.save(folder, &message(n));
    }
    let home = tempfile::tempdir().unwrap();
    let config = config(&server, folder, 100, 100, "oldest first");
    let (_, first) = poll(&config, home.path());
    assert_eq!(new_uids(&first, folder), [1, 2, 3, 4, 5]);

    // The folder is deleted and recreated with the same mail plus one really new message.
    server.delete_mailbox(folder);
    server.create_mailbox(folder);
    for n in 1..=6 {
        server.save(folder, &message(n));
    }
    let (run, second) = poll(&config, home.path());
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        second["message"].as_str().unwrap().contains("UIDVALIDITY"),
        "{}",
        second["message"]
    );
    assert_eq!(new_uids(&second, folder), [6], "only the new message");
    assert_eq!(
        second["action_results"][0]["summary"]["duplicates_skipped"],
        5
    );
    let (_, third) = poll(&config, home.path());
    assert!(new_uids(&third, folder).is_empty());
}
