//! Delivery against a real Dovecot: a container counts as delivered once the response
//! that carries it was written whole. Runs killed at seeded random moments, a reader that
//! goes away midway, a full disk under a redirected stdout: what such a run committed
//! goes out again, first, with the next poll of the asset's folder, flagged
//! `redelivered`, identical otherwise; never to another asset, never after a run that
//! completed.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead as _, BufReader, Read as _},
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    poll::new_uids,
    poll_faults::{
        KillSetup, Lcg, append_all, assert_ledger_has_each_once, config, ledger_count, message,
        open_db, poll, poll_request, spawn,
    },
    support::{Run, run_json, wait_bounded},
};

/// A Dovecot whose INBOX holds `n` reports tagged `tag`, and an empty data directory.
fn inbox_of(tag: &str, n: u32) -> (Dovecot, tempfile::TempDir) {
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=n).map(|i| message(tag, i)).collect();
    append_all(&server, "INBOX", &messages);
    (server, tempfile::tempdir().unwrap())
}

/// The source data identifier of UID `uid` of `folder`.
fn sdi(folder: &str, uid: u32) -> String {
    format!("{} : {uid}", soar_imap::sdi::md5_hex(folder.as_bytes()))
}

/// A container as the ledger holds it: without the flags that say how it went out.
fn unflagged(container: &Value) -> Value {
    let mut container = container.clone();
    if let Some(map) = container.as_object_mut() {
        map.remove("redelivered");
        map.remove("duplicate");
    }
    container
}

/// The containers of a response, by SDI.
fn containers(response: &Value) -> Vec<Value> {
    response["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The containers of a poll's response flagged `redelivered`, checking that they come
/// before every other container and that the summary and message count them.
fn redelivered_first(response: &Value) -> Vec<Value> {
    let all = containers(response);
    let count = all
        .iter()
        .take_while(|c| c.get("redelivered") == Some(&json!(true)))
        .count();
    assert!(
        all[count..].iter().all(|c| c.get("redelivered").is_none()),
        "redelivered containers come first"
    );
    let summary = &response["action_results"][0]["summary"];
    assert_eq!(summary["redelivered"], count, "{summary}");
    if count > 0 {
        let message = response["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("redelivered {count} container")),
            "{message}"
        );
    }
    all[..count].to_vec()
}

/// Rows still waiting for delivery in the state database.
fn undelivered_rows(home: &Path) -> u32 {
    open_db(home)
        .query_row("SELECT count(*) FROM undelivered", [], |row| row.get(0))
        .unwrap()
}

/// What a run cut off wrote on stdout before it died: every container line it finished
/// (`{"containers":[` / `<c1>` / `,<c2>` / ...), or `None` when the response is whole.
fn written_before_the_cut(stdout: &str) -> Option<Vec<Value>> {
    if serde_json::from_str::<Value>(stdout).is_ok() {
        return None;
    }
    Some(
        stdout
            .lines()
            .skip(1)
            .filter_map(|line| serde_json::from_str::<Value>(line.trim_start_matches(',')).ok())
            .filter(|c| c.get("source_data_identifier").is_some())
            .collect(),
    )
}

/// What the runs of a kill experiment wrote, by SDI (containers without their flags).
#[derive(Default)]
struct Seen {
    /// In complete responses: what a platform received.
    delivered: BTreeMap<String, Value>,
    /// Written by runs cut off before their response was whole: what a platform reading
    /// the response as one document never received.
    cut_off: BTreeMap<String, Value>,
    /// Containers flagged `redelivered` in complete responses.
    redelivered: usize,
}

impl Seen {
    /// A complete response: its redelivered containers come first, each exactly as a
    /// cut-off run wrote it (same id, container and artifact SDIs). How many it carries.
    fn complete(&mut self, response: &Value, seed: u64) -> usize {
        for container in redelivered_first(response) {
            self.redelivered += 1;
            let sdi = container["source_data_identifier"].as_str().unwrap();
            if let Some(written) = self.cut_off.get(sdi) {
                assert_eq!(
                    &unflagged(&container),
                    written,
                    "seed {seed}: {sdi} changed on redelivery"
                );
            }
        }
        let all = containers(response);
        for container in &all {
            let sdi = container["source_data_identifier"].as_str().unwrap();
            self.delivered.insert(sdi.to_owned(), unflagged(container));
        }
        all.len()
    }

    /// What a cut-off run wrote; how many containers.
    fn cut_off(&mut self, written: Vec<Value>) -> usize {
        let count = written.len();
        for container in written {
            let sdi = container["source_data_identifier"].as_str().unwrap();
            self.cut_off.insert(sdi.to_owned(), unflagged(&container));
        }
        count
    }
}

/// One poll of `request` killed with SIGKILL: at a random instant of the first half of
/// the time the mail left would take (`early`), else at a random instant within a batch
/// once it committed one more (or, once the ledger holds all `total`, wrote its first
/// container), so kills land between a commit and the write of its containers too, and
/// among the containers it sends again. The delay and its stdout.
fn run_killed(
    request: &Value,
    home: &Path,
    rng: &mut Lcg,
    early: bool,
    (batch_ms, whole_ms, total): (u64, u64, u32),
) -> (u64, String) {
    let before = ledger_count(home, "phish");
    let mut child = spawn(request, home, Stdio::piped);
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let lines = Arc::new(AtomicUsize::new(0));
    let out = thread::spawn({
        let lines = Arc::clone(&lines);
        move || {
            let mut reader = BufReader::new(stdout);
            let mut s = String::new();
            while reader.read_line(&mut s)? > 0 {
                lines.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, std::io::Error>(s)
        }
    });
    let err = thread::spawn(move || {
        let mut s = Vec::new();
        stderr.read_to_end(&mut s).map(|_| s)
    });
    let delay = if early {
        // Within the first half of what is left to ingest.
        let left_ms = whole_ms * u64::from(total.saturating_sub(before)) / u64::from(total);
        rng.below(left_ms / 2 + 1)
    } else {
        // Until it commits new containers; once the ledger holds the whole folder,
        // until it writes one (it is sending containers again).
        let deadline = Instant::now() + Duration::from_secs(20);
        let waiting = || {
            if before < total {
                ledger_count(home, "phish") == before
            } else {
                lines.load(Ordering::Relaxed) < 2
            }
        };
        while child.try_wait().unwrap().is_none() && waiting() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(2));
        }
        rng.below(batch_ms)
    };
    thread::sleep(Duration::from_millis(delay));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let stdout = out.join().unwrap().expect("stdout is UTF-8");
    drop(err.join().unwrap());
    assert!(!stdout.contains(PASSWORD), "a password leaked: {stdout}");
    (delay, stdout)
}

#[test]
fn polls_killed_at_random_moments_deliver_every_committed_container_in_a_later_response() {
    const N: u32 = 300;
    const KILLS: u32 = 8;
    let KillSetup {
        server: _server,
        home,
        request,
        seed,
        mut rng,
        whole_ms,
        batch_ms,
    } = KillSetup::new("deliver", N);

    let mut record = Seen::default();
    let mut history = Vec::new();
    for attempt in 0..KILLS {
        let before = ledger_count(home.path(), "phish");
        let (delay, stdout) = run_killed(
            &request,
            home.path(),
            &mut rng,
            attempt % 2 == 0,
            // The first wait for a commit kills at once: at least one run is certainly
            // cut off after committing, however the machine's speed changed since the
            // uninterrupted poll was timed.
            (if attempt == 1 { 1 } else { batch_ms }, whole_ms, N),
        );
        let after = ledger_count(home.path(), "phish");
        let written = match written_before_the_cut(&stdout) {
            // It finished before the kill: a complete response, delivered.
            None => {
                record.complete(&serde_json::from_str(&stdout).unwrap(), seed);
                None
            }
            Some(written) => Some(record.cut_off(written)),
        };
        history.push((attempt, delay, before, after, written));
    }
    eprintln!("(attempt, delay ms, ledger before, after, containers written if cut): {history:?}");
    assert!(
        history
            .iter()
            .any(|&(_, _, before, after, written)| written.is_some() && after > before),
        "no kill landed after a run committed containers (seed {seed}): {history:?}"
    );
    let undelivered_after_kills = undelivered_rows(home.path());

    // Complete polls until one brings nothing: the first sends again, first, all that
    // the killed runs committed, then ingests the rest.
    let mut polls = 0;
    loop {
        let (run, response) = poll(&request, home.path());
        assert_eq!(run.code, 0, "seed {seed}: {}\n{}", run.stdout, run.stderr);
        polls += 1;
        if record.complete(&response, seed) == 0 {
            break;
        }
        assert!(polls < 4, "seed {seed}: polls keep sending containers");
    }
    let Seen {
        delivered,
        cut_off,
        redelivered,
    } = record;

    let expected: BTreeSet<String> = (1..=N).map(|uid| sdi("INBOX", uid)).collect();
    let got: BTreeSet<String> = delivered.keys().cloned().collect();
    assert_eq!(
        got, expected,
        "seed {seed}: the complete responses carry each message; {history:?}"
    );
    for sdi in cut_off.keys() {
        assert!(
            delivered.contains_key(sdi),
            "seed {seed}: {sdi} never delivered"
        );
    }
    assert_ledger_has_each_once(home.path(), "phish", "deliver", N);
    assert_eq!(undelivered_rows(home.path()), 0, "nothing left waiting");
    eprintln!(
        "figures (seed {seed}): {KILLS} kills, {} of them cut a response off; {} containers \
         written by cut-off runs; {undelivered_after_kills} committed but undelivered after \
         the kills; {redelivered} redelivered in complete responses; {} distinct SDIs in \
         complete responses; {} ledger rows; {polls} complete polls after the kills",
        history.iter().filter(|h| h.4.is_some()).count(),
        cut_off.len(),
        delivered.len(),
        ledger_count(home.path(), "phish"),
    );
}

#[test]
fn a_reader_that_goes_away_midway_gets_the_containers_again_from_that_asset_only() {
    const N: u32 = 200;
    let (server, home) = inbox_of("reader", N);
    let config = config(&server, server.imaps_port, "INBOX", 1000, 1000);

    // A consumer reads the first two containers, then closes its end (`| head -3`).
    let mut child = spawn(&poll_request(&config, "a"), home.path(), Stdio::piped);
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).map(|_| s)
    });
    let mut lines = BufReader::new(stdout);
    let mut read = Vec::new();
    for _ in 0..3 {
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        read.push(line);
    }
    drop(lines);
    let status = wait_bounded(&mut child, Duration::from_mins(1)).expect("the run ends");
    let stderr = err.join().unwrap().unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "a response cut off fails the run: {stderr}"
    );
    assert!(
        stderr.contains("cannot write the whole response on stdout")
            && stderr.contains("containers are not delivered"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // It noticed and stopped rather than polling on for nobody (200 containers are far
    // more than a pipe holds, so the write failed within the first batches).
    assert!(stderr.contains("the poll stopped"), "{stderr}");
    let first: Value = serde_json::from_str(read[1].trim_end()).unwrap();
    let committed = ledger_count(home.path(), "a");
    assert!(committed >= 2, "{committed}");

    // Another asset sharing the data directory gets nothing of asset a's.
    let (run, other) = poll(&poll_request(&config, "b"), home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(redelivered_first(&other).is_empty());
    assert_eq!(new_uids(&other, "INBOX"), (1..=N).collect::<Vec<_>>());

    // Asset a's next poll sends every container the cut-off run committed, first.
    let (run, again) = poll(&poll_request(&config, "a"), home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let redelivered = redelivered_first(&again);
    assert_eq!(redelivered.len(), committed as usize);
    assert_eq!(unflagged(&redelivered[0]), first, "sent again unchanged");
    let mut uids: BTreeSet<String> = redelivered
        .iter()
        .map(|c| c["source_data_identifier"].as_str().unwrap().to_owned())
        .collect();
    uids.extend(
        new_uids(&again, "INBOX")
            .into_iter()
            .map(|u| sdi("INBOX", u)),
    );
    let expected: BTreeSet<String> = (1..=N).map(|uid| sdi("INBOX", uid)).collect();
    assert_eq!(uids, expected);
    assert_ledger_has_each_once(home.path(), "a", "reader", N);

    // That run completed: the next has nothing to send again.
    let (run, after) = poll(&poll_request(&config, "a"), home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(containers(&after).is_empty(), "{after}");
    assert_eq!(after["action_results"][0]["summary"]["redelivered"], 0);
}

/// Run `request` with stdout on `/dev/full` (a redirect to a full disk).
fn run_onto_a_full_disk(request: &Value, home: &Path) -> Run {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_soar-imap"))
        .env("SOAR_IMAP_HOME", home)
        .env_remove("SOAR_IMAP_LOG")
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(request.to_string().as_bytes()).unwrap();
    }
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn get_email_onto_a_full_disk_fails_and_its_container_goes_out_again() {
    let (server, home) = inbox_of("get", 3);
    let config = json!({"server": "localhost", "port": server.imaps_port, "use_ssl": true,
        "username": USER, "password": PASSWORD, "ca_cert": server.ca_pem(), "timeout_secs": 10});
    let get = |uid: u32| {
        json!({"identifier": "get_email", "asset_id": "phish", "config": config,
               "parameters": [{"id": uid, "ingest_email": true}]})
    };

    // Ingested into the ledger, but the response never reached anyone.
    for uid in [1, 2] {
        let run = run_onto_a_full_disk(&get(uid), home.path());
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot write the whole response on stdout")
                && run.stderr.contains("its 1 container is not delivered"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains(PASSWORD) && !run.stderr.contains("panicked"));
    }
    assert_eq!(ledger_count(home.path(), "phish"), 2);

    // Asked for again: the container comes back flagged redelivered, not duplicate...
    let run = run_json(&get(1), home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let [container] = containers(&run.json()).try_into().unwrap();
    assert_eq!(container["redelivered"], true, "{container}");
    assert!(container.get("duplicate").is_none());
    // ...and once that response is whole, as a plain duplicate.
    let run = run_json(&get(1), home.path());
    let [container] = containers(&run.json()).try_into().unwrap();
    assert_eq!(container["duplicate"], true);
    assert!(container.get("redelivered").is_none());

    // The next poll of the folder sends the other first, then ingests the rest.
    let (run, response) = poll(&poll_request(&config, "phish"), home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let redelivered = redelivered_first(&response);
    assert_eq!(redelivered.len(), 1);
    assert_eq!(redelivered[0]["source_data_identifier"], sdi("inbox", 2));
    assert_eq!(new_uids(&response, "inbox"), [3]);
    assert_eq!(undelivered_rows(home.path()), 0);
}

#[test]
fn a_stateless_poll_cut_off_leaves_the_callers_state_where_it_was() {
    let (server, home) = inbox_of("stateless", 3);
    let mut request = poll_request(
        &config(&server, server.imaps_port, "INBOX", 1000, 1000),
        "phish",
    );
    request["state"] = json!({});
    let run = run_onto_a_full_disk(&request, home.path());
    assert_eq!(run.code, 1, "{}", run.stderr);
    // Nothing on disk: the caller never got a new state, and polls again from its own.
    assert!(!home.path().join("state.sqlite3").exists());
    let (run, response) = poll(&request, home.path());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(redelivered_first(&response).is_empty());
    assert_eq!(new_uids(&response, "INBOX"), [1, 2, 3]);
}
