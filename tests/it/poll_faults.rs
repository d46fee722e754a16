//! `on poll` when things go wrong, against a real Dovecot: the connector killed with
//! SIGKILL at seeded random points of a poll (`SOAR_IMAP_FAULT_SEED=<seed>` replays the
//! schedule a failure printed), the connection dropped mid-batch, stateless runs, two
//! runs of one asset at once, and failures before any mail is read.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Shutdown, TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    dovecot::{Dovecot, PASSWORD, USER},
    poll::new_uids,
    support::{Run, collect},
};

/// No run of the binary in this file may take longer than this.
pub(crate) const RUN_LIMIT: Duration = Duration::from_mins(1);

/// A plain-text report of about `4 KB`, unique by `tag` and `n` (Message-ID and body).
pub(crate) fn message(tag: &str, n: u32) -> Vec<u8> {
    let mut raw = format!(
        "From: sender{n}@example.com\r\nTo: soc@example.org\r\nSubject: {tag} report {n}\r\n\
         Message-ID: <{tag}-{n}@example.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Please check https://site{n}.example.com/login from 198.51.100.{}\r\n",
        n % 250 + 1
    );
    for line in 0..45 {
        let _ = write!(
            raw,
            "line {line} of report {n}: the quick brown fox jumps over the lazy dog again\r\n"
        );
    }
    raw.into_bytes()
}

/// A report with a binary attachment, which a stateful poll would put in the vault.
pub(crate) fn message_with_attachment(tag: &str, n: u32) -> Vec<u8> {
    use base64::Engine as _;
    let attachment =
        base64::engine::general_purpose::STANDARD.encode(format!("\x00\x01invoice {n}\x02"));
    format!(
        "From: sender{n}@example.com\r\nTo: soc@example.org\r\nSubject: {tag} attachment {n}\r\n\
         Message-ID: <{tag}-{n}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nSee the attached invoice {n} from 203.0.113.{n}\r\n\
         --b\r\nContent-Type: application/octet-stream\r\n\
         Content-Disposition: attachment; filename=\"invoice-{n}.bin\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n--b--\r\n"
    )
    .into_bytes()
}

/// Load `messages` into `mailbox` in order (UID 1 is the first) with IMAP APPEND on one
/// connection: much faster than one `doveadm save` process per message.
pub(crate) fn append_all(server: &Dovecot, mailbox: &str, messages: &[Vec<u8>]) {
    let stream = TcpStream::connect(("127.0.0.1", server.imap_port)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    let mut send = |tag: &str, command: &[u8]| {
        writer.write_all(command).unwrap();
        loop {
            line.clear();
            assert_ne!(reader.read_line(&mut line).unwrap(), 0, "server hung up");
            if line.starts_with(&format!("{tag} ")) {
                assert!(line.starts_with(&format!("{tag} OK")), "{line}");
                return;
            }
        }
    };
    send(
        "a0",
        format!("a0 LOGIN {USER} \"{PASSWORD}\"\r\n").as_bytes(),
    );
    for (i, raw) in messages.iter().enumerate() {
        let tag = format!("a{}", i + 1);
        // LITERAL+: the message follows the command without waiting for a continuation.
        let mut command = format!("{tag} APPEND \"{mailbox}\" {{{}+}}\r\n", raw.len()).into_bytes();
        command.extend_from_slice(raw);
        command.extend_from_slice(b"\r\n");
        send(&tag, &command);
    }
    send("z", b"z LOGOUT\r\n");
}

pub(crate) fn config(server: &Dovecot, port: u16, folder: &str, first_run: u32, max: u32) -> Value {
    json!({
        "server": "localhost", "port": port, "use_ssl": true,
        "username": USER, "password": PASSWORD, "ca_cert": server.ca_pem(),
        "folder": folder, "first_run_max_emails": first_run, "max_emails": max,
        "ingest_manner": "oldest first", "timeout_secs": 10,
    })
}

/// A scheduled poll of `asset`.
pub(crate) fn poll_request(config: &Value, asset: &str) -> Value {
    json!({"identifier": "on_poll", "asset_id": asset, "config": config,
           "parameters": [{"container_count": 4_294_967_295_u64, "artifact_count": 4_294_967_295_u64}]})
}

/// Start the binary on `request` with `SOAR_IMAP_HOME` = `home`.
pub(crate) fn spawn(request: &Value, home: &Path, output: fn() -> Stdio) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_soar-imap"))
        .env("SOAR_IMAP_HOME", home)
        .env_remove("SOAR_IMAP_LOG")
        .stdin(Stdio::piped())
        .stdout(output())
        .stderr(output())
        .spawn()
        .expect("spawn soar-imap");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(request.to_string().as_bytes()).unwrap();
    drop(stdin);
    child
}

/// Run the binary to the end, killing it and failing the test if it takes over `limit`;
/// checks that no password reached stdout or stderr.
pub(crate) fn run(request: &Value, home: &Path, limit: Duration) -> Run {
    let run = collect(spawn(request, home, Stdio::piped), limit, "soar-imap");
    for secret in [PASSWORD, WRONG_PASSWORD] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "a password leaked:\n{}\n{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

/// Poll, returning the run and its parsed response.
pub(crate) fn poll(request: &Value, home: &Path) -> (Run, Value) {
    poll_within(request, home, RUN_LIMIT)
}

pub(crate) fn poll_within(request: &Value, home: &Path, limit: Duration) -> (Run, Value) {
    let run = run(request, home, limit);
    let response = run.json();
    (run, response)
}

pub(crate) fn open_db(home: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(home.join("state.sqlite3")).unwrap();
    conn.busy_timeout(Duration::from_secs(10)).unwrap();
    conn
}

/// Rows in the ledger of `asset` (0 before the database exists).
pub(crate) fn ledger_count(home: &Path, asset: &str) -> u32 {
    if !home.join("state.sqlite3").exists() {
        return 0;
    }
    open_db(home)
        .query_row(
            "SELECT count(*) FROM ledger WHERE asset_id = ?1",
            [asset],
            |row| row.get(0),
        )
        .unwrap_or(0)
}

/// The ledger of `asset` holds each of the `count` messages tagged `tag` exactly once,
/// under its own UID.
pub(crate) fn assert_ledger_has_each_once(home: &Path, asset: &str, tag: &str, count: u32) {
    let conn = open_db(home);
    let (rows, uids): (u32, u32) = conn
        .query_row(
            "SELECT count(*), count(DISTINCT uid) FROM ledger WHERE asset_id = ?1",
            [asset],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((rows, uids), (count, count), "ledger rows, distinct UIDs");
    let mut statement = conn
        .prepare("SELECT uid, message_id FROM ledger WHERE asset_id = ?1 ORDER BY uid")
        .unwrap();
    let entries: Vec<(u32, Option<String>)> = statement
        .query_map([asset], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (expected, (uid, message_id)) in (1..=count).zip(&entries) {
        assert_eq!(*uid, expected, "UIDs 1..={count} each present");
        let wanted = format!("{tag}-{uid}@example.com");
        assert!(
            message_id.as_deref().is_some_and(|m| m.contains(&wanted)),
            "UID {uid} recorded with Message-ID {message_id:?}, expected {wanted}"
        );
    }
}

pub(crate) fn assert_no_message_seen(server: &Dovecot, folder: &str) {
    let flags = server.flags(folder);
    assert!(
        flags.iter().all(|(_, f)| !f.contains("\\Seen")),
        "{flags:?}"
    );
}

/// A fixed-seed generator, so a failing kill schedule can be replayed.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// The seed of a random fault schedule: `$SOAR_IMAP_FAULT_SEED` replays one, else a new
/// one every run (each test prints it and puts it in its failure messages).
pub(crate) fn fault_seed() -> u64 {
    if let Some(seed) = std::env::var("SOAR_IMAP_FAULT_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return seed;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() << 30 ^ u64::from(d.subsec_nanos()))
}

/// A kill experiment's start: a Dovecot whose INBOX holds `n` reports tagged `tag`, the
/// scheduled poll of all of them for asset "phish", its seeded kill schedule (printed
/// for replay), and how long an uninterrupted poll takes on this machine now (timed in
/// another data directory), which scales the kill delays, with a batch's share of it.
pub(crate) struct KillSetup {
    pub(crate) server: Dovecot,
    pub(crate) home: tempfile::TempDir,
    pub(crate) request: Value,
    pub(crate) seed: u64,
    pub(crate) rng: Lcg,
    pub(crate) whole_ms: u64,
    pub(crate) batch_ms: u64,
}

impl KillSetup {
    pub(crate) fn new(tag: &str, n: u32) -> KillSetup {
        let server = Dovecot::start();
        let messages: Vec<Vec<u8>> = (1..=n).map(|i| message(tag, i)).collect();
        append_all(&server, "INBOX", &messages);
        let request = poll_request(
            &config(&server, server.imaps_port, "INBOX", 1000, 1000),
            "phish",
        );
        let seed = fault_seed();
        eprintln!("SIGKILL schedule seed {seed}: replay with SOAR_IMAP_FAULT_SEED={seed}");
        let scratch = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let (run, _) = poll(&request, scratch.path());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let whole_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        KillSetup {
            server,
            home: tempfile::tempdir().unwrap(),
            request,
            seed,
            rng: Lcg(seed),
            whole_ms,
            batch_ms: whole_ms / u64::from(n.div_ceil(50)) + 1,
        }
    }
}

#[test]
fn sigkill_at_any_point_then_rerun_ingests_every_message_exactly_once() {
    const N: u32 = 300;
    const KILLS: u32 = 10;
    let KillSetup {
        server,
        home,
        request,
        seed,
        mut rng,
        whole_ms,
        batch_ms,
    } = KillSetup::new("kill", N);

    // Even attempts: killed at a random instant of the first half of what is left of a
    // poll (connecting, logging in, searching, any batch). Odd attempts: killed at a
    // random instant within one batch after the run committed one more batch, so kills
    // also land in every phase of a batch: fetching, parsing, committing.
    let mut history = Vec::new();
    for attempt in 0..KILLS {
        let before = ledger_count(home.path(), "phish");
        let mut child = spawn(&request, home.path(), Stdio::null);
        let delay = if attempt % 2 == 0 {
            let left_ms = whole_ms * u64::from(N - before) / u64::from(N);
            rng.below(left_ms / 2 + 1)
        } else {
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none()
                && ledger_count(home.path(), "phish") == before
                && Instant::now() < deadline
            {
                thread::sleep(Duration::from_millis(2));
            }
            rng.below(batch_ms)
        };
        thread::sleep(Duration::from_millis(delay));
        let finished_before_kill = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let after = ledger_count(home.path(), "phish");
        history.push((attempt, delay, finished_before_kill, before, after));
    }
    eprintln!("(attempt, delay ms, finished, ledger before, after): {history:?}");
    assert!(
        history
            .iter()
            .any(|&(_, _, finished, _, after)| !finished && after > 0 && after < N),
        "no kill landed in the middle of a poll (seed {seed}): {history:?}"
    );

    // What the killed runs ingested is in the ledger; the reruns must add exactly the rest.
    let ingested_by_killed: BTreeSet<u32> = {
        let conn = open_db(home.path());
        let mut statement = conn.prepare("SELECT uid FROM ledger").unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let mut ingested_by_reruns = Vec::new();
    let mut polls = 0;
    loop {
        let (run, response) = poll(&request, home.path());
        assert_eq!(run.code, 0, "seed {seed}: {}\n{}", run.stdout, run.stderr);
        let uids = new_uids(&response, "INBOX");
        polls += 1;
        if uids.is_empty() {
            break;
        }
        assert!(polls < 5, "seed {seed}: polls keep finding mail: {uids:?}");
        ingested_by_reruns.extend(uids);
    }
    for uid in &ingested_by_reruns {
        assert!(
            !ingested_by_killed.contains(uid),
            "seed {seed}: UID {uid} ingested again after the kill; {history:?}"
        );
    }
    let mut all: Vec<u32> = ingested_by_killed
        .iter()
        .copied()
        .chain(ingested_by_reruns)
        .collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=N).collect::<Vec<_>>(),
        "seed {seed}: each message exactly once; {history:?}"
    );
    assert_ledger_has_each_once(home.path(), "phish", "kill", N);
    assert_no_message_seen(&server, "INBOX");
}

/// A server response at least this big carries messages (the answer to a fetch of
/// whole messages; the sizes or any other response is far smaller).
const BATCH_RESPONSE: u64 = 20_000;

/// Where the proxy drops a connection. A response ends where the client speaks again
/// after more server bytes. Responses with messages ("batch responses": a poll streams
/// its batches from one such answer per page of UIDs) are told by their size and
/// counted from 1:
/// counting all responses is not robust (under load, how many there seemed to be varied).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cut {
    /// After this many server-to-client bytes.
    AfterBytes(u64),
    /// After this many client-to-server bytes: what the client sends next never arrives.
    AfterClientBytes(u64),
    /// This many bytes into the `nth` batch response: it never arrives whole.
    IntoBatch { nth: usize, bytes: u64 },
    /// When the client speaks after the `nth` batch response arrived whole: the
    /// connection is dead when the next command goes out.
    AfterBatch(usize),
}

/// One connection through the proxy, once it has ended.
#[derive(Debug, Default)]
pub(crate) struct Connection {
    /// Server-to-client bytes passed each time the client spoke after new server bytes:
    /// where each response ended.
    pub(crate) ends: Vec<u64>,
    /// Client-to-server bytes passed at the same moments: where each command began.
    pub(crate) starts: Vec<u64>,
    /// Server-to-client bytes in all.
    pub(crate) total: u64,
    /// Client-to-server bytes in all.
    pub(crate) up_total: u64,
    /// Batch responses that arrived whole.
    batches: usize,
    /// Whether the proxy dropped it.
    pub(crate) cut: bool,
}

/// A TCP proxy on 127.0.0.1 in front of Dovecot's implicit-TLS port, which can drop its
/// next connection, closing both sides, at a [`Cut`].
pub(crate) struct Proxy {
    pub(crate) port: u16,
    cut_next: Arc<Mutex<Option<Cut>>>,
    finished: Arc<Mutex<Vec<Connection>>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    pub(crate) fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut_next = Arc::new(Mutex::new(None));
        let finished = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (cut_next, finished, stop) = (cut_next.clone(), finished.clone(), stop.clone());
            thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    let cut = cut_next.lock().unwrap().take();
                    relay(client, server, cut, finished.clone());
                }
            })
        };
        Proxy {
            port,
            cut_next,
            finished,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// Drop the next connection (only that one) at `cut`.
    pub(crate) fn cut_next(&self, cut: Cut) {
        *self.cut_next.lock().unwrap() = Some(cut);
    }

    /// Wait for the one connection since the last call to end, and return it.
    pub(crate) fn finished_connection(&self) -> Connection {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            {
                let mut finished = self.finished.lock().unwrap();
                if !finished.is_empty() {
                    assert_eq!(finished.len(), 1, "one connection per poll");
                    return finished.pop().unwrap();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the proxied connection did not end"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Close both sides of a relayed connection.
fn drop_connection(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Relay one connection in two threads; the server-to-client one records it when done.
fn relay(
    client: TcpStream,
    server: TcpStream,
    cut: Option<Cut>,
    finished: Arc<Mutex<Vec<Connection>>>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let down = Arc::new(AtomicU64::new(0));
    let state = Arc::new(Mutex::new(Connection::default()));
    let upstream = {
        let (down, state) = (down.clone(), state.clone());
        let (mut from_client, mut to_server) =
            (client.try_clone().unwrap(), server.try_clone().unwrap());
        thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            let mut up = 0u64;
            while let Ok(n @ 1..) = from_client.read(&mut buf) {
                let passed = down.load(Ordering::SeqCst);
                {
                    let mut state = state.lock().unwrap();
                    let start = state.ends.last().copied();
                    if start != Some(passed) {
                        state.ends.push(passed);
                        state.starts.push(up);
                        if passed - start.unwrap_or(0) >= BATCH_RESPONSE {
                            state.batches += 1;
                            if let Some(Cut::AfterBatch(nth)) = cut
                                && state.batches == nth
                            {
                                state.cut = true;
                                drop_connection(&from_client, &to_server);
                                break;
                            }
                        }
                    }
                }
                let limit = match cut {
                    Some(Cut::AfterClientBytes(limit)) => limit,
                    _ => u64::MAX,
                };
                let allowed =
                    usize::try_from(limit.saturating_sub(up)).map_or(n, |left| left.min(n));
                if to_server.write_all(&buf[..allowed]).is_err() {
                    break;
                }
                up += allowed as u64;
                if up >= limit {
                    state.lock().unwrap().cut = true;
                    drop_connection(&from_client, &to_server);
                    break;
                }
            }
            let _ = to_server.shutdown(Shutdown::Write);
            up
        })
    };
    let (mut from_server, mut to_client) = (server, client);
    thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        let mut total = 0u64;
        while let Ok(n @ 1..) = from_server.read(&mut buf) {
            let limit = match cut {
                Some(Cut::AfterBytes(limit)) => limit,
                // The response started where the client last spoke; if `bytes` of it
                // pass, it is a batch response, and the `nth` if `nth - 1` came before.
                Some(Cut::IntoBatch { nth, bytes }) => {
                    let state = state.lock().unwrap();
                    match state.ends.last() {
                        Some(start) if state.batches + 1 == nth => start + bytes,
                        _ => u64::MAX,
                    }
                }
                _ => u64::MAX,
            };
            let allowed =
                usize::try_from(limit.saturating_sub(total)).map_or(n, |left| left.min(n));
            if to_client.write_all(&buf[..allowed]).is_err() {
                break;
            }
            total += allowed as u64;
            down.store(total, Ordering::SeqCst);
            if total >= limit {
                state.lock().unwrap().cut = true;
                drop_connection(&to_client, &from_server);
                break;
            }
        }
        let _ = to_client.shutdown(Shutdown::Write);
        let up_total = upstream.join().unwrap_or_default();
        let mut connection = std::mem::take(&mut *state.lock().unwrap());
        connection.total = total;
        connection.up_total = up_total;
        finished.lock().unwrap().push(connection);
    });
}

/// Where to cut a poll whose uncut run passed `total` server bytes, its responses
/// ending at `ends`; and the size of the answer with the messages.
fn cuts_through(ends: &[u64], total: u64) -> (Vec<Cut>, u64) {
    let mut cuts = vec![
        Cut::AfterBytes(200), // in the TLS handshake
        Cut::AfterBytes(total / 4),
        Cut::AfterBytes(total * 6 / 10),
    ];
    // The answer with the messages is the one big response. Its size varies from run
    // to run (the number of TLS records, Dovecot's timings) by some KB under load, so
    // the cuts are fractions of it: in the first batch (the first 50 messages are 42%
    // of it), just past it, in the second (to 83%), in the third and near its end; and
    // once it has arrived whole, when the client speaks again.
    let answers: Vec<u64> = ends
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .filter(|&size| size >= BATCH_RESPONSE)
        .collect();
    assert_eq!(
        answers.len(),
        1,
        "expected one answer with messages in {ends:?} of {total}"
    );
    for tenths in [2, 5, 7, 9] {
        cuts.push(Cut::IntoBatch {
            nth: 1,
            bytes: answers[0] * tenths / 10,
        });
    }
    cuts.extend([
        Cut::IntoBatch {
            nth: 1,
            bytes: answers[0] - answers[0] / 50,
        },
        Cut::AfterBatch(1),
    ]);
    (cuts, answers[0])
}

#[test]
fn a_connection_dropped_mid_batch_loses_and_duplicates_nothing() {
    // Three batches (50, 50, 20) streamed from one `UID FETCH` of all 120, so cuts
    // fall inside each batch, near their boundaries and after the whole answer.
    const N: u32 = 120;
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=N).map(|n| message("cut", n)).collect();
    append_all(&server, "INBOX", &messages);
    let proxy = Proxy::start(server.imaps_port);
    let request = poll_request(&config(&server, proxy.port, "INBOX", 1000, 1000), "phish");

    // A whole poll through the proxy, uncut: its size and where each response ends.
    let measure = tempfile::tempdir().unwrap();
    let (run, response) = poll(&request, measure.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), (1..=N).collect::<Vec<_>>());
    let Connection { ends, total, .. } = proxy.finished_connection();
    let (cuts, answer) = cuts_through(&ends, total);

    for cut in cuts {
        let home = tempfile::tempdir().unwrap();
        proxy.cut_next(cut);
        let (first, response) = poll(&request, home.path());
        let context = format!(
            "{cut:?} (uncut: {total} bytes, responses ending at {ends:?}):\n{}\n{}",
            first.stdout, first.stderr
        );
        let connection = proxy.finished_connection();
        assert!(
            connection.cut,
            "the cut never came: {connection:?}; {context}"
        );
        match first.code {
            0 => assert_eq!(response["status"], "success", "{context}"),
            1 => {
                assert_eq!(response["status"], "failed", "{context}");
                let message = response["message"].as_str().unwrap();
                assert!(message.starts_with("Poll failed: "), "{context}");
            }
            other => panic!("exit {other}, {context}"),
        }
        let mut seen = new_uids(&response, "INBOX");

        let (second, response) = poll(&request, home.path());
        assert_eq!(
            second.code, 0,
            "{context}\nsecond poll:\n{}\n{}",
            second.stdout, second.stderr
        );
        proxy.finished_connection();
        let rest = new_uids(&response, "INBOX");
        for uid in &rest {
            assert!(!seen.contains(uid), "UID {uid} ingested twice; {context}");
        }
        seen.extend(rest);
        seen.sort_unstable();
        assert_eq!(seen, (1..=N).collect::<Vec<_>>(), "{context}");
        assert_ledger_has_each_once(home.path(), "phish", "cut", N);
    }

    // Stateless: the state a failed poll hands back covers the batch it did ingest.
    let home = tempfile::tempdir().unwrap();
    let mut request = request;
    request["state"] = json!({});
    // Just past the first batch of the answer: it is in, the rest is not.
    proxy.cut_next(Cut::IntoBatch {
        nth: 1,
        bytes: answer / 2,
    });
    let (first, response) = poll(&request, home.path());
    assert!(proxy.finished_connection().cut);
    assert_eq!(first.code, 1, "{}\n{}", first.stdout, first.stderr);
    let mut seen = new_uids(&response, "INBOX");
    assert!(
        !seen.is_empty(),
        "the first batch arrived whole: {}",
        first.stdout
    );
    request["state"] = response["state"].clone();
    let (second, response) = poll(&request, home.path());
    proxy.finished_connection();
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    let rest = new_uids(&response, "INBOX");
    assert!(
        rest.iter().all(|uid| !seen.contains(uid)),
        "ingested twice: {seen:?} then {rest:?}"
    );
    seen.extend(rest);
    seen.sort_unstable();
    assert_eq!(seen, (1..=N).collect::<Vec<_>>());
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);

    assert_no_message_seen(&server, "INBOX");
}

#[test]
fn stateless_polls_carry_their_state_in_the_request_and_write_nothing() {
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=7).map(|n| message_with_attachment("sl", n)).collect();
    append_all(&server, "INBOX", &messages);
    let home = tempfile::tempdir().unwrap();
    let mut request = poll_request(&config(&server, server.imaps_port, "INBOX", 3, 3), "phish");
    request["state"] = json!({});
    let mut ingested = Vec::new();
    for expected in [vec![1, 2, 3], vec![4, 5, 6], vec![7], vec![]] {
        let (run, response) = poll(&request, home.path());
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
        let uids = new_uids(&response, "INBOX");
        assert_eq!(uids, expected, "{}", run.stdout);
        if !uids.is_empty() {
            let vault = &response["containers"][0]["artifacts"];
            assert!(
                vault.to_string().contains("vaultId"),
                "the attachment is in the container: {vault}"
            );
        }
        ingested.extend(uids);
        assert!(response["state"].is_object(), "{}", run.stdout);
        request["state"] = response["state"].clone();
    }
    assert_eq!(ingested, (1..=7).collect::<Vec<_>>(), "each message once");
    let written: Vec<_> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // No state.sqlite3, no vault, nothing at all.
    assert!(
        written.is_empty(),
        "a stateless run wrote to the data dir: {written:?}"
    );

    // A state the reference app wrote: only the UIDs from next_muid on are new.
    server.create_mailbox("Legacy");
    let legacy: Vec<Vec<u8>> = (1..=6).map(|n| message("legacy", n)).collect();
    append_all(&server, "Legacy", &legacy);
    let mut request = poll_request(
        &config(&server, server.imaps_port, "Legacy", 100, 100),
        "phish",
    );
    request["state"] = json!({"first_run": false, "next_muid": 4});
    let (run, response) = poll(&request, home.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response, "Legacy"), [4, 5, 6]);
    assert_eq!(response["state"]["next_muid"], 7, "{}", response["state"]);
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    assert_no_message_seen(&server, "INBOX");
}

#[test]
fn a_stateless_poll_with_a_vault_dir_writes_each_attachment_there_under_its_sha1() {
    use sha1::{Digest as _, Sha1};
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=4).map(|n| message_with_attachment("vd", n)).collect();
    append_all(&server, "INBOX", &messages);
    let home = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let vault_dir = files.path().join("run-1");
    let mut request = poll_request(
        &config(&server, server.imaps_port, "INBOX", 10, 10),
        "phish",
    );
    request["state"] = json!({});
    request["vault_dir"] = json!(vault_dir);
    let (run, response) = poll(&request, home.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), [1, 2, 3, 4]);
    let mut expected = BTreeSet::new();
    for container in response["containers"].as_array().unwrap() {
        let vault: Vec<&Value> = container["artifacts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["name"] == "Vault Artifact")
            .collect();
        assert_eq!(vault.len(), 1, "{container}");
        let cef = &vault[0]["cef"];
        let id = cef["vaultId"].as_str().unwrap();
        let path = vault_dir.join(&id[..2]).join(id);
        let bytes = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("no vault file at {}: {e}", path.display()));
        assert_eq!(format!("{:x}", Sha1::digest(&bytes)), id);
        assert_eq!(cef["fileHashSha1"], id);
        assert_eq!(cef["fileSize"], bytes.len());
        expected.insert(path);
    }
    // Only the attachments, under their final names: no temporary files left behind.
    let mut found = BTreeSet::new();
    for fan in std::fs::read_dir(&vault_dir).unwrap() {
        for file in std::fs::read_dir(fan.unwrap().path()).unwrap() {
            found.insert(file.unwrap().path());
        }
    }
    assert_eq!(found, expected);
    // The state still comes back and nothing else is written: no database, no vault.
    assert!(
        response["state"]["folders"].is_object(),
        "{}",
        response["state"]
    );
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    assert_no_message_seen(&server, "INBOX");

    // A bad vault_dir is a bad request, named as such.
    request["vault_dir"] = json!(7);
    let (run, response) = poll(&request, home.path());
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert_eq!(
        response["message"],
        "request.vault_dir must be a directory path (a non-empty string), got 7"
    );
}

#[test]
fn a_second_run_of_the_same_asset_fails_clearly_while_the_first_holds_it() {
    let server = Dovecot::start();
    let messages: Vec<Vec<u8>> = (1..=3).map(|n| message("lock", n)).collect();
    append_all(&server, "INBOX", &messages);
    let home = tempfile::tempdir().unwrap();
    let config = config(&server, server.imaps_port, "INBOX", 100, 100);

    // "The first run": this test process holds asset phish's store.
    let held =
        soar_imap::state::SqliteStore::open(home.path(), "phish", Duration::from_secs(1)).unwrap();
    let blocked = {
        let (request, home) = (poll_request(&config, "phish"), home.path().to_owned());
        // It waits briefly for the lock, then gives up: it never hangs.
        thread::spawn(move || poll_within(&request, &home, Duration::from_secs(20)))
    };
    // Meanwhile another asset polls the same data dir unhindered.
    let (run, response) = poll(&poll_request(&config, "other"), home.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), [1, 2, 3]);

    let (run, response) = blocked.join().unwrap();
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let message = response["message"].as_str().unwrap();
    assert!(
        message.contains("another soar-imap run is using asset \"phish\""),
        "{message}"
    );
    assert!(new_uids(&response, "INBOX").is_empty());
    assert_eq!(ledger_count(home.path(), "phish"), 0);

    drop(held);
    let (run, response) = poll(&poll_request(&config, "phish"), home.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), [1, 2, 3]);
}

#[test]
fn a_connection_dropped_in_the_tls_handshake_is_not_blamed_on_the_certificate() {
    let server = Dovecot::start();
    let proxy = Proxy::start(server.imaps_port);
    let home = tempfile::tempdir().unwrap();
    // The certificate is valid and config.ca_cert trusts it; the server just hangs up.
    proxy.cut_next(Cut::AfterBytes(200));
    let request = poll_request(&config(&server, proxy.port, "INBOX", 10, 10), "phish");
    let (run, response) = poll(&request, home.path());
    assert!(proxy.finished_connection().cut);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let message = response["message"].as_str().unwrap();
    assert!(message.contains("TLS handshake"), "{message}");
    assert!(
        !message.contains("set config.ca_cert"),
        "a hang-up is not a trust problem, and config.ca_cert is already set: {message}"
    );
}

const WRONG_PASSWORD: &str = "Wrong-7c1d9e-password";

#[test]
fn a_wrong_password_or_a_missing_folder_fails_the_poll_clearly() {
    let server = Dovecot::start();
    append_all(&server, "INBOX", &[message("fail", 1)]);
    let home = tempfile::tempdir().unwrap();

    let mut bad_password = config(&server, server.imaps_port, "INBOX", 100, 100);
    bad_password["password"] = json!(WRONG_PASSWORD);
    let (run, response) = poll(&poll_request(&bad_password, "phish"), home.path());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(response["status"], "failed");
    let message = response["message"].as_str().unwrap();
    assert!(message.contains("cannot log in"), "{message}");
    assert!(message.contains("AUTHENTICATIONFAILED"), "{message}");

    let missing = config(&server, server.imaps_port, "No Such Folder", 100, 100);
    let (run, response) = poll(&poll_request(&missing, "phish"), home.path());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(response["status"], "failed");
    let message = response["message"].as_str().unwrap();
    assert!(message.contains("\"No Such Folder\""), "{message}");
    assert!(message.to_lowercase().contains("exist"), "{message}");

    // Neither failure cost the folder anything: the next good poll takes the message.
    let good = config(&server, server.imaps_port, "INBOX", 100, 100);
    let (run, response) = poll(&poll_request(&good, "phish"), home.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(new_uids(&response, "INBOX"), [1]);
}
