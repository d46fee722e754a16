//! Fault injection around `on poll`, against a real Dovecot: the connection cut after
//! any number of bytes in either direction, a full or read-only `data_dir`, and a
//! corrupt state database (SIGKILL at seeded random instants is in `poll_faults.rs`).
//! After each fault the next poll must end with every message ingested exactly once,
//! and the faulty run must have said clearly what went wrong.
//!
//! The disk tests mount a tmpfs (root only); without permission they print why and
//! pass without checking anything.

use std::{collections::BTreeMap, fmt::Write as _, path::Path, process::Command, time::Instant};

use serde_json::Value;

use crate::{
    dovecot::Dovecot,
    poll_faults::{
        Cut, Proxy, append_all, assert_ledger_has_each_once, assert_no_message_seen, config, poll,
        poll_request,
    },
};

/// A short report (about 600 bytes), unique by `tag` and `n`.
fn short_message(tag: &str, n: u32) -> Vec<u8> {
    let mut raw = format!(
        "From: sender{n}@example.com\r\nTo: soc@example.org\r\nSubject: {tag} short {n}\r\n\
         Message-ID: <{tag}-{n}@example.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n\
         Please check https://site{n}.example.com/login from 198.51.100.{}\r\n",
        n % 250 + 1
    );
    for line in 0..4 {
        let _ = write!(
            raw,
            "line {line}: the quick brown fox jumps over the lazy dog\r\n"
        );
    }
    raw.into_bytes()
}

/// The UID in each new (not `duplicate`) container's source data identifier.
fn new_uids(response: &Value) -> Vec<u32> {
    crate::poll::new_uids(response, "INBOX")
}

/// The steps of a poll's conversation, as failure messages name them.
const STEPS: [&str; 9] = [
    "cannot connect",
    "TLS handshake",
    "IMAP greeting",
    "cannot log in",
    "cannot list folders",
    "cannot examine folder",
    "cannot search UIDs",
    "cannot fetch message sizes",
    "cannot fetch messages",
];

#[test]
fn a_connection_cut_after_any_number_of_bytes_loses_and_duplicates_nothing() {
    // Two fetch batches (50 and 10 messages), so the conversation has a batch boundary
    // with a commit in between.
    const N: u32 = 60;
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=N).map(|n| short_message("bytes", n)).collect();
    append_all(&server, "INBOX", &messages);
    let proxy = Proxy::start(server.imaps_port);
    let request = poll_request(&config(&server, proxy.port, "INBOX", 1000, 1000), "phish");

    let measure = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let (run, response) = poll(&request, measure.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response), (1..=N).collect::<Vec<_>>());
    let uncut = proxy.finished_connection();

    let cuts = cut_points(&uncut);
    assert!(cuts.len() >= 40, "{cuts:?} from {uncut:?}");
    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    let mut really_cut = 0;
    for &cut in &cuts {
        let home = tempfile::tempdir().unwrap();
        proxy.cut_next(cut);
        let (first, response) = poll(&request, home.path());
        let connection = proxy.finished_connection();
        let context = format!(
            "{cut:?} (uncut: {uncut:?}):\n{}\n{}",
            first.stdout, first.stderr
        );
        really_cut += usize::from(connection.cut);
        assert!(!first.stderr.contains("panicked"), "{context}");
        match first.code {
            0 => assert_eq!(response["status"], "success", "{context}"),
            1 => {
                assert_eq!(response["status"], "failed", "{context}");
                let message = response["message"].as_str().unwrap();
                let step = message
                    .strip_prefix("Poll failed: ")
                    .and_then(|rest| STEPS.into_iter().find(|step| rest.starts_with(step)));
                let step = step.unwrap_or_else(|| panic!("names no step: {context}"));
                *failures.entry(step).or_default() += 1;
            }
            other => panic!("exit {other}, {context}"),
        }
        let mut seen = new_uids(&response);

        let (second, response) = poll(&request, home.path());
        proxy.finished_connection();
        assert_eq!(
            second.code, 0,
            "{context}\nsecond poll:\n{}\n{}",
            second.stdout, second.stderr
        );
        let rest = new_uids(&response);
        for uid in &rest {
            assert!(!seen.contains(uid), "UID {uid} ingested twice; {context}");
        }
        seen.extend(rest);
        seen.sort_unstable();
        assert_eq!(seen, (1..=N).collect::<Vec<_>>(), "{context}");
        assert_ledger_has_each_once(home.path(), "phish", "bytes", N);
    }
    eprintln!(
        "{} cut points ({really_cut} cut a connection) in {:?}; failed polls by step: {failures:?}",
        cuts.len(),
        started.elapsed()
    );
    assert!(
        really_cut >= 40,
        "only {really_cut} cuts landed in the conversation"
    );
    // The cuts fell all along the conversation, not just in one part of it.
    assert!(failures.len() >= 6, "{failures:?}");
    assert_no_message_seen(&server, "INBOX");
}

/// Where to cut a poll's connection, from an uncut run of it: the first bytes and the
/// last, a spread over the whole conversation in both directions, and either side of
/// every place one side starts to answer the other (TLS handshake steps, each command
/// and response, the batch boundaries).
fn cut_points(uncut: &crate::poll_faults::Connection) -> Vec<Cut> {
    let mut down: Vec<u64> = vec![0, 1, uncut.total - 1, uncut.total];
    down.extend((1..=12).map(|i| uncut.total * i / 13));
    for &end in uncut.ends.iter().filter(|&&e| e > 0) {
        down.extend([end - 1, end + 1]);
    }
    let mut up: Vec<u64> = vec![0, 1, uncut.up_total - 1];
    for &start in uncut.starts.iter().filter(|&&s| s > 0) {
        up.extend([start, start + 1]);
    }
    down.sort_unstable();
    down.dedup();
    up.sort_unstable();
    up.dedup();
    down.into_iter()
        .map(Cut::AfterBytes)
        .chain(up.into_iter().map(Cut::AfterClientBytes))
        .collect()
}

/// A tmpfs of a fixed size on a fresh temporary directory, unmounted when dropped: a
/// disk that can fill up, or be made read-only, on purpose.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mount one of `bytes` bytes and at most `inodes` files and directories, or say why
    /// it cannot be done here (not root, or no permission to mount in this container).
    fn mount_with(bytes: u64, inodes: Option<u64>) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut options = format!("size={bytes},mode=0700");
        if let Some(inodes) = inodes {
            let _ = write!(options, ",nr_inodes={inodes}");
        }
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if output.status.success() {
            Ok(Tmpfs { dir })
        } else {
            Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `mount -o remount,OPTIONS`, e.g. `ro` or `rw`.
    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "mount -o remount,{options} failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so a file some process still holds open cannot keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Mount a tmpfs for a test, or print why the test is skipped.
fn tmpfs_or_skip(bytes: u64, test: &str) -> Option<Tmpfs> {
    tmpfs_with_inodes_or_skip(bytes, None, test)
}

fn tmpfs_with_inodes_or_skip(bytes: u64, inodes: Option<u64>, test: &str) -> Option<Tmpfs> {
    match Tmpfs::mount_with(bytes, inodes) {
        Ok(tmpfs) => Some(tmpfs),
        Err(reason) => {
            eprintln!("SKIPPED {test}: cannot mount a tmpfs here ({reason}); it needs root");
            None
        }
    }
}

/// A report with a `size`-byte binary attachment of its own (distinct per `n`), which
/// a poll writes to the vault.
fn message_with_file(tag: &str, n: u32, size: usize) -> Vec<u8> {
    use base64::Engine as _;
    let mut state = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let bytes: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut body = String::new();
    for line in encoded.as_bytes().chunks(76) {
        body.push_str(std::str::from_utf8(line).unwrap());
        body.push_str("\r\n");
    }
    format!(
        "From: sender{n}@example.com\r\nTo: soc@example.org\r\nSubject: {tag} file {n}\r\n\
         Message-ID: <{tag}-{n}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee the attached sample {n} from 203.0.113.{}\r\n\
         --b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"sample-{n}.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}--b--\r\n",
        n % 250 + 1
    )
    .into_bytes()
}

/// Poll until a poll finds nothing new (at most `limit` polls), checking each succeeds;
/// the UIDs ingested, in order.
fn poll_until_done(request: &Value, home: &Path, limit: usize, context: &str) -> Vec<u32> {
    let mut uids = Vec::new();
    for _ in 0..limit {
        let (run, response) = poll(request, home);
        assert_eq!(run.code, 0, "{context}:\n{}\n{}", run.stdout, run.stderr);
        let new = new_uids(&response);
        if new.is_empty() {
            return uids;
        }
        uids.extend(new);
    }
    panic!("{context}: still finding mail after {limit} polls: {uids:?}");
}

/// What runs out on the data directory's disk.
#[derive(Debug, Clone, Copy)]
enum Shortage {
    /// Bytes, while the vault stores the second batch's attachments.
    BytesInTheVault,
    /// Bytes, while the database commits the second batch (no attachments stored).
    BytesInTheDatabase,
    /// Inodes: no new vault file can be created, while the database still grows in
    /// place (a vault of many small files exhausts inodes before bytes).
    Inodes,
}

/// Files and directories under `dir`, and the bytes they hold on a tmpfs (whole pages).
fn usage(dir: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let (mut inodes, mut bytes) = (1, 0);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = entry.metadata().unwrap();
            inodes += 1;
            bytes += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    (inodes, bytes)
}

#[test]
fn a_full_disk_fails_the_poll_clearly_and_freeing_space_loses_and_duplicates_nothing() {
    // Two batches of 50: the disk fills up during the second.
    const N: u32 = 100;
    const FILE: usize = 16_000;
    const FILLER: u64 = 8 << 20;
    let test = "a_full_disk_fails_the_poll_clearly";
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=N)
        .map(|n| message_with_file("full", n, FILE))
        .collect();
    append_all(&server, "INBOX", &messages);

    for shortage in [
        Shortage::BytesInTheVault,
        Shortage::BytesInTheDatabase,
        Shortage::Inodes,
    ] {
        let mut config = config(&server, server.imaps_port, "INBOX", 1000, 1000);
        config["extract_attachments"] =
            Value::Bool(!matches!(shortage, Shortage::BytesInTheDatabase));
        let request = poll_request(&config, "phish");
        // What the first batch leaves on disk, measured on a roomy tmpfs.
        let Some(roomy) = tmpfs_or_skip(256 << 20, test) else {
            return;
        };
        let mut first_batch = config.clone();
        first_batch["first_run_max_emails"] = 50.into();
        let (run, _) = poll(
            &poll_request(&first_batch, "phish"),
            &roomy.path().join("data"),
        );
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let (inodes, bytes) = usage(roomy.path());
        drop(roomy);

        let disk = match shortage {
            // Room for the first batch and half the second batch's attachments (each
            // file of FILE bytes takes four 4 KiB pages).
            Shortage::BytesInTheVault => tmpfs_or_skip(bytes + 25 * 16 * 1024 + FILLER, test),
            // Room for the first batch and half the second.
            Shortage::BytesInTheDatabase => tmpfs_or_skip(bytes * 3 / 2 + FILLER, test),
            // Room for the first batch's files, the journal's two and a few more.
            Shortage::Inodes => tmpfs_with_inodes_or_skip(256 << 20, Some(inodes + 2 + 6), test),
        };
        let Some(disk) = disk else { return };
        let home = disk.path().join("data");
        let filler = disk.path().join("filler");
        if !matches!(shortage, Shortage::Inodes) {
            std::fs::write(&filler, vec![0_u8; usize::try_from(FILLER).unwrap()]).unwrap();
        }
        let (first, response) = poll(&request, &home);
        let context = format!(
            "{shortage:?} ({inodes} inodes, {bytes} bytes for one batch):\n{}\n{}",
            first.stdout, first.stderr
        );
        assert!(!first.stderr.contains("panicked"), "{context}");
        assert_eq!(first.code, 1, "{context}");
        let message = response["message"].as_str().unwrap();
        assert!(message.starts_with("Poll failed: "), "{context}");
        assert!(
            message.contains("No space left on device") || message.contains("disk is full"),
            "{context}"
        );
        assert!(
            message.contains(&home.display().to_string()),
            "names the file: {context}"
        );
        // The store whose write failed is the one named. The vault and the database
        // share the disk, and a poll writes the next batch's attachments while it
        // commits the batch before, so when the vault fills the disk the write that
        // fails can be either's.
        let named: &[&str] = match shortage {
            Shortage::BytesInTheVault => &["cannot store attachment", "state database"],
            Shortage::Inodes => &["cannot store attachment"],
            Shortage::BytesInTheDatabase => &["state database"],
        };
        assert!(named.iter().any(|n| message.contains(n)), "{context}");
        let mut seen = new_uids(&response);
        assert!(seen.len() < N as usize, "{context}");

        match shortage {
            Shortage::Inodes => disk.remount("nr_inodes=100000"),
            _ => std::fs::remove_file(&filler).unwrap(),
        }
        let rest = poll_until_done(&request, &home, 3, &context);
        for uid in &rest {
            assert!(!seen.contains(uid), "UID {uid} ingested twice; {context}");
        }
        seen.extend(rest);
        seen.sort_unstable();
        assert_eq!(seen, (1..=N).collect::<Vec<_>>(), "{context}");
        assert_ledger_has_each_once(&home, "phish", "full", N);
    }
    assert_no_message_seen(&server, "INBOX");
}

#[test]
fn a_read_only_data_dir_fails_the_poll_clearly_and_loses_nothing() {
    let Some(disk) = tmpfs_or_skip(64 << 20, "a_read_only_data_dir") else {
        return;
    };
    let home = disk.path().join("data");
    let server = Dovecot::start();
    let first: Vec<Vec<u8>> = (1..=10).map(|n| message_with_file("ro", n, 2000)).collect();
    append_all(&server, "INBOX", &first);
    let request = poll_request(
        &config(&server, server.imaps_port, "INBOX", 1000, 1000),
        "phish",
    );
    assert_eq!(
        poll_until_done(&request, &home, 2, "before"),
        (1..=10).collect::<Vec<_>>()
    );

    // New mail arrives while the data directory is read-only.
    let more: Vec<Vec<u8>> = (11..=20)
        .map(|n| message_with_file("ro", n, 2000))
        .collect();
    append_all(&server, "INBOX", &more);
    disk.remount("ro");
    let (run, response) = poll(&request, &home);
    let context = format!("{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{context}");
    assert_eq!(run.code, 1, "{context}");
    let message = response["message"].as_str().unwrap();
    eprintln!("read-only: {message}");
    assert!(message.contains("Read-only file system"), "{context}");
    assert!(message.contains(&home.display().to_string()), "{context}");
    assert!(new_uids(&response).is_empty(), "{context}");

    disk.remount("rw");
    assert_eq!(
        poll_until_done(&request, &home, 2, "after"),
        (11..=20).collect::<Vec<_>>()
    );
    assert_ledger_has_each_once(&home, "phish", "ro", 20);
    assert_no_message_seen(&server, "INBOX");
}

/// How the state database gets damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// Replaced by bytes that are no database at all.
    Garbage,
    /// Cut to half its length.
    Truncated,
    /// Cut to nothing (`: > state.sqlite3`, or a file system that lost it in a crash).
    Emptied,
    /// One page in the middle, holding a stored email, overwritten (a bad disk block).
    Overwritten,
}

impl Damage {
    fn apply(self, bytes: &mut Vec<u8>, marker: &[u8]) {
        match self {
            Damage::Garbage => {
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = u8::try_from(i * 7 % 251).unwrap();
                }
            }
            Damage::Truncated => bytes.truncate(bytes.len() / 2),
            Damage::Emptied => bytes.clear(),
            Damage::Overwritten => {
                let at = bytes
                    .windows(marker.len())
                    .position(|w| w == marker)
                    .expect("the stored email is in the file");
                let page = at / 4096 * 4096;
                bytes[page..page + 4096].fill(0x5a);
            }
        }
    }
}

/// The containers of a response by source data identifier, without their ledger ids
/// (what the platform compares is the rest).
fn by_sdi(response: &Value) -> BTreeMap<String, Value> {
    response["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.as_object_mut().unwrap().remove("id");
            (c["source_data_identifier"].as_str().unwrap().to_owned(), c)
        })
        .collect()
}

#[test]
fn a_corrupt_state_database_is_reported_and_moving_it_aside_resumes_without_duplicates() {
    const N: u32 = 30;
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=N).map(|n| message_with_file("bad", n, 3000)).collect();
    append_all(&server, "INBOX", &messages);
    let config = config(&server, server.imaps_port, "INBOX", 1000, 1000);
    let request = poll_request(&config, "phish");
    let get_email = |home: &Path, container_id: &Value| {
        let request = serde_json::json!({"identifier": "get_email", "asset_id": "phish",
            "config": config, "parameters": [{"container_id": container_id}]});
        crate::poll_faults::run(&request, home, crate::poll_faults::RUN_LIMIT)
    };

    for damage in [
        Damage::Garbage,
        Damage::Truncated,
        Damage::Emptied,
        Damage::Overwritten,
    ] {
        let home = tempfile::tempdir().unwrap();
        let (run, response) = poll(&request, home.path());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let before = by_sdi(&response);
        assert_eq!(before.len(), N as usize);
        let ids: Vec<Value> = response["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect();

        let db = home.path().join("state.sqlite3");
        let mut bytes = std::fs::read(&db).unwrap();
        damage.apply(&mut bytes, b"See the attached sample 15 from");
        std::fs::write(&db, &bytes).unwrap();

        // Whatever meets the damage says so, naming the file and what to do; nothing
        // panics, nothing is ingested again, and the file is left as it is.
        let mut reports = Vec::new();
        let (run, response) = poll(&request, home.path());
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert!(new_uids(&response).is_empty(), "{damage:?}: {}", run.stdout);
        if run.code != 0 {
            reports.push(response["message"].as_str().unwrap().to_owned());
        }
        // get email reads the ledger: every container of the damaged page is reported.
        let looked_up = if damage == Damage::Overwritten {
            &ids[..]
        } else {
            &ids[..1]
        };
        for id in looked_up {
            let run = get_email(home.path(), id);
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
            let response = run.json();
            if run.code != 0 {
                reports.push(response["message"].as_str().unwrap().to_owned());
            }
        }
        assert!(!reports.is_empty(), "{damage:?} went unnoticed");
        for report in &reports {
            assert!(
                report.contains(&db.display().to_string()),
                "{damage:?}: {report}"
            );
            assert!(report.contains("Move it aside"), "{damage:?}: {report}");
        }
        let after = std::fs::read(&db).unwrap();
        if damage == Damage::Overwritten {
            // The poll still commits elsewhere in the file; the damage stays there for
            // the user to see, not papered over.
            assert!(
                after
                    .windows(4096)
                    .any(|page| page.iter().all(|&b| b == 0x5a))
            );
        } else {
            assert_eq!(after, bytes, "{damage:?}: the file was changed");
        }

        // The user does what the message says: no backup, so the file goes aside and
        // the next poll starts a new database. It takes the folder again, and every
        // container and artifact comes with the very identifiers it had: the platform,
        // which deduplicates on them, sees nothing new.
        std::fs::rename(&db, home.path().join("state.sqlite3.corrupt")).unwrap();
        let (run, response) = poll(&request, home.path());
        assert_eq!(run.code, 0, "{damage:?}: {}\n{}", run.stdout, run.stderr);
        assert_eq!(by_sdi(&response), before, "{damage:?}");
        assert!(poll_until_done(&request, home.path(), 1, "after").is_empty());
        assert_ledger_has_each_once(home.path(), "phish", "bad", N);
    }
    assert_no_message_seen(&server, "INBOX");
}
