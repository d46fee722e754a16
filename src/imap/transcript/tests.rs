//! Record-then-replay tests over scripted in-memory servers, including the real `imap`
//! client with its own buffering.

use std::{
    cell::RefCell,
    collections::VecDeque,
    io::{self, Read, Write},
    path::{Path, PathBuf},
    rc::Rc,
};

use super::{Recorder, Replay, ReplayStream};

/// A small deterministic generator (xorshift64*): property tests without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % (n.max(1) as u64)).unwrap()
    }
}

/// Bytes that stress the format: line ends of every kind, escapes, invalid UTF-8,
/// hidden characters, literals, trailing spaces, long runs.
fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b"\0",
        b"\\",
        b"\\<redacted>",
        b"\\x41",
        b" ",
        b"\t",
        b"\x7f",
        b"\xff",
        b"\xc3",
        b"\xe2\x80",
        "é".as_bytes(),
        "€uro".as_bytes(),
        "\u{2028}".as_bytes(),
        "\u{85}".as_bytes(),
        "\u{202e}".as_bytes(),
        b"{12}\r\n",
        b"* 1 FETCH (BODY[] {5}\r\n",
        b"S: C- == connection 2: x\n@ k v\n# c\n== digests\n",
    ];
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        match rng.below(4) {
            0 => out.extend_from_slice(PIECES[rng.below(PIECES.len())]),
            1 => out.push(u8::try_from(rng.below(256)).unwrap()),
            _ => out.extend((0..rng.below(12)).map(|_| b"abcxyz ()[]*+=:OK"[rng.below(17)])),
        }
    }
    out
}

/// One side of a scripted conversation.
#[derive(Clone, Debug)]
enum Turn {
    Server(Vec<u8>),
    Client(Vec<u8>),
}

/// A scripted server: what it will send sits in `inbox` (filled by the test, or one
/// queued reply per line the client completes); what the client sends is kept.
#[derive(Clone, Default)]
struct Peer(Rc<RefCell<PeerState>>);

#[derive(Default)]
struct PeerState {
    inbox: VecDeque<u8>,
    replies: VecDeque<Vec<u8>>,
    written: Vec<u8>,
    /// Read sizes cycle through these (0: no limit), to cut lines anywhere.
    read_sizes: Vec<usize>,
    reads: usize,
    /// Returned once the inbox is empty, instead of end of stream.
    error: Option<io::ErrorKind>,
}

impl Peer {
    fn scripted(greeting: &[u8], replies: &[&[u8]], read_sizes: &[usize]) -> Self {
        let peer = Peer::default();
        {
            let mut state = peer.0.borrow_mut();
            state.inbox.extend(greeting);
            state.replies = replies.iter().map(|r| r.to_vec()).collect();
            state.read_sizes = read_sizes.to_vec();
        }
        peer
    }
    fn send(&self, bytes: &[u8]) {
        self.0.borrow_mut().inbox.extend(bytes);
    }
    fn written(&self) -> Vec<u8> {
        self.0.borrow().written.clone()
    }
}

impl Read for Peer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        if state.inbox.is_empty() {
            return match state.error.take() {
                Some(kind) => Err(io::Error::new(kind, "the peer failed")),
                None => Ok(0),
            };
        }
        let limit = match state.read_sizes.len() {
            0 => usize::MAX,
            n => match state.read_sizes[state.reads % n] {
                0 => usize::MAX,
                size => size,
            },
        };
        state.reads += 1;
        let n = buf.len().min(state.inbox.len()).min(limit);
        for (slot, byte) in buf.iter_mut().zip(state.inbox.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }
}

impl Write for Peer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        state.written.extend_from_slice(buf);
        for _ in buf.iter().filter(|&&b| b == b'\n') {
            if let Some(reply) = state.replies.pop_front() {
                state.inbox.extend(reply);
            }
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Read exactly `len` bytes with reads of random sizes.
fn read_turn(stream: &mut impl Read, rng: &mut Rng, len: usize) -> io::Result<Vec<u8>> {
    let mut got = Vec::with_capacity(len);
    while got.len() < len {
        let mut buf = vec![0u8; 1 + rng.below((len - got.len()).min(9000))];
        match stream.read(&mut buf)? {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "early end")),
            n => got.extend_from_slice(&buf[..n]),
        }
    }
    Ok(got)
}

/// Write with writes of random sizes.
fn write_turn(stream: &mut impl Write, rng: &mut Rng, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = 1 + rng.below(bytes.len().min(300));
        let written = stream.write(&bytes[..n])?;
        bytes = &bytes[written..];
    }
    stream.flush()
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn text(path: &Path) -> String {
    String::from_utf8(std::fs::read(path).unwrap()).unwrap()
}

/// The 1-based number of the first file line starting with `prefix`.
fn line_of(path: &Path, prefix: &str) -> usize {
    text(path)
        .lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
        + 1
}

/// Record `connections` (each a list of turns), then replay them with other random
/// cuts; both must see exactly the same bytes.
fn record_and_replay(path: &Path, connections: &[Vec<Turn>], seed: u64) {
    let recorder = Recorder::create(path).unwrap();
    let mut rng = Rng::new(seed);
    for (i, turns) in connections.iter().enumerate() {
        recorder.begin_connection(if i % 2 == 0 {
            "implicit TLS"
        } else {
            "plain text"
        });
        recorder.note("tls", &format!("TLSv1.3 connection {i}"));
        let peer = Peer::default();
        let mut stream = recorder.wrap(peer.clone());
        let mut sent = Vec::new();
        for turn in turns {
            match turn {
                Turn::Server(bytes) => {
                    peer.send(bytes);
                    assert_eq!(
                        &read_turn(&mut stream, &mut rng, bytes.len()).unwrap(),
                        bytes
                    );
                }
                Turn::Client(bytes) => {
                    write_turn(&mut stream, &mut rng, bytes).unwrap();
                    sent.extend_from_slice(bytes);
                }
            }
        }
        assert_eq!(peer.written(), sent);
    }
    recorder.finish().unwrap();

    let replay = Replay::open(path).unwrap_or_else(|e| panic!("{e}\n{}", text(path)));
    let mut rng = Rng::new(seed ^ 0x5555);
    for (i, turns) in connections.iter().enumerate() {
        let (mode, mut stream) = replay.next_connection().unwrap();
        assert_eq!(
            mode,
            if i % 2 == 0 {
                "implicit TLS"
            } else {
                "plain text"
            }
        );
        assert_eq!(replay.note("tls"), Some(format!("TLSv1.3 connection {i}")));
        for turn in turns {
            match turn {
                Turn::Server(bytes) => {
                    let got = read_turn(&mut stream, &mut rng, bytes.len());
                    assert_eq!(&got.unwrap(), bytes, "seed {seed}");
                }
                Turn::Client(bytes) => write_turn(&mut stream, &mut rng, bytes)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{}", text(path))),
            }
        }
    }
    replay.finish().unwrap();
}

fn random_conversation(rng: &mut Rng) -> Vec<Turn> {
    let mut turns = Vec::new();
    let server_first = rng.below(2) == 0;
    for i in 0..rng.below(8) {
        let most = if rng.below(10) == 0 { 20_000 } else { 200 };
        let len = 1 + rng.below(most);
        let bytes = random_bytes(rng, len);
        turns.push(if (i % 2 == 0) == server_first {
            Turn::Server(bytes)
        } else {
            Turn::Client(bytes)
        });
    }
    turns
}

#[test]
fn random_byte_streams_round_trip_with_random_cuts_on_both_sides() {
    let dir = temp();
    for seed in 0..150 {
        let mut rng = Rng::new(seed);
        let connections: Vec<Vec<Turn>> = (0..=rng.below(3))
            .map(|_| random_conversation(&mut rng))
            .collect();
        record_and_replay(&dir.path().join(format!("t{seed}.txt")), &connections, seed);
    }
}

#[test]
fn the_transcript_is_readable_text_with_escapes() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let connection = vec![
        Turn::Server(b"* OK ready\r\n".to_vec()),
        Turn::Client(b"a1 NOOP\r\n".to_vec()),
        Turn::Server(b"caf\xc3\xa9 \xff\\ \0 trailing \r\nbare\nno end".to_vec()),
        Turn::Client(b"a2 partial".to_vec()),
        Turn::Server(b"\r\n".to_vec()),
    ];
    record_and_replay(&path, &[connection], 1);
    let text = text(&path);
    let body: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        body[..9],
        [
            "== connection 1: implicit TLS",
            "@ tls TLSv1.3 connection 0",
            "S: * OK ready",
            "C: a1 NOOP",
            "S: café \\xff\\\\ \\x00 trailing\\x20",
            "S- bare\\n",
            "S- no end",
            "C- a2 partial",
            "S:",
        ]
    );
    assert_eq!(body[9], "== digests");
    assert_eq!(body[10].split(' ').count(), 9);
    assert!(text.starts_with("# soar-imap IMAP transcript, format 1\n"));
}

#[test]
fn logins_are_redacted_in_the_file_and_replay_with_any_credentials() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let recorder = Recorder::create(&path).unwrap();
    recorder.begin_connection("STARTTLS");
    let peer = Peer::scripted(b"* OK hi\r\n", &[b"A1 OK yes\r\n", b"a2 OK yes\r\n"], &[]);
    let mut stream = recorder.wrap(peer);
    let mut buf = [0u8; 64];
    assert!(stream.read(&mut buf).unwrap() > 0);
    stream
        .write_all(b"A1 login \"alice\" \"s3cr\\\"et pass\"\r\n")
        .unwrap();
    assert!(stream.read(&mut buf).unwrap() > 0);
    stream.write_all(b"a2 NOOP\r\n").unwrap();
    assert!(stream.read(&mut buf).unwrap() > 0);
    recorder.finish().unwrap();
    let written = text(&path);
    assert!(
        written.contains("\nC: A1 login \\<redacted>\n"),
        "{written}"
    );
    assert!(written.contains("\nC: a2 NOOP\n"));
    assert!(!written.contains("alice") && !written.contains("s3cr"));

    let replay = Replay::open(&path).unwrap();
    let (_, mut stream) = replay.next_connection().unwrap();
    assert!(stream.read(&mut buf).unwrap() > 0);
    stream
        .write_all(b"A1 login bob other-password\r\n")
        .unwrap();
    assert!(stream.read(&mut buf).unwrap() > 0);
    stream.write_all(b"a2 NOOP\r\n").unwrap();
    assert!(stream.read(&mut buf).unwrap() > 0);
    replay.finish().unwrap();
}

/// Record a SASL exchange: the client's lines and the server's replies, one per line.
fn record_sasl(path: &Path, client: &[&[u8]], replies: &[&[u8]]) -> String {
    let recorder = Recorder::create(path).unwrap();
    recorder.begin_connection("implicit TLS");
    let peer = Peer::scripted(b"* OK hi\r\n", replies, &[3]);
    let mut stream = recorder.wrap(peer);
    let mut buf = [0u8; 8192];
    let mut rng = Rng::new(7);
    read_turn(&mut stream, &mut rng, 9).unwrap();
    for (line, reply) in client.iter().zip(replies) {
        stream.write_all(line).unwrap();
        read_turn(&mut stream, &mut rng, reply.len()).unwrap();
    }
    let _ = stream.read(&mut buf);
    recorder.finish().unwrap();
    text(path)
}

#[test]
fn authenticate_with_an_initial_response_is_redacted() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let text = record_sasl(
        &path,
        &[
            b"a1 AUTHENTICATE XOAUTH2 dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2tlbgEB\r\n",
            b"a2 SELECT INBOX\r\n",
        ],
        &[b"a1 OK done\r\n", b"a2 OK selected\r\n"],
    );
    assert!(
        text.contains("\nC: a1 AUTHENTICATE XOAUTH2 \\<redacted>\n"),
        "{text}"
    );
    assert!(text.contains("\nC: a2 SELECT INBOX\n"));
    assert!(!text.contains("dXNlcj1"));
}

const SASL_CLIENT: &[&[u8]] = &[
    b"a1 authenticate xoauth2\r\n",
    b"dXNlcj1hbGljZQFhdXRoPUJlYXJlciB0b2tlbgEB\r\n",
    b"\r\n",
    b"a2 LOGOUT\r\n",
];

const SASL_SERVER: &[&[u8]] = &[
    b"+ \r\n",
    b"+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0=\r\n",
    b"a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)\r\n",
    b"* BYE\r\na2 OK bye\r\n",
];

#[test]
fn multi_step_sasl_with_an_error_challenge_and_the_cancel_line_is_redacted() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let text = record_sasl(&path, SASL_CLIENT, SASL_SERVER);
    let conversation: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with('C') || l.starts_with('S'))
        .collect();
    assert_eq!(
        conversation,
        [
            "S: * OK hi",
            "C: a1 authenticate xoauth2",
            "S: +\\x20",
            "C: \\<redacted>",
            "S: + eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0=",
            "C: \\<redacted>",
            "S: a1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
            "C: a2 LOGOUT",
            "S: * BYE",
            "S: a2 OK bye",
            "S! EOF",
        ]
    );
    // The replay accepts other SASL payloads in their place.
    let replay = Replay::open(&path).unwrap();
    let (_, mut stream) = replay.next_connection().unwrap();
    let mut rng = Rng::new(3);
    read_turn(&mut stream, &mut rng, 9).unwrap();
    let client: [&[u8]; 4] = [SASL_CLIENT[0], b"b3RoZXI=\r\n", b"\r\n", SASL_CLIENT[3]];
    for (line, reply) in client.iter().zip(SASL_SERVER) {
        stream.write_all(line).unwrap();
        assert_eq!(
            &read_turn(&mut stream, &mut rng, reply.len()).unwrap(),
            reply
        );
    }
    // The recorded end of stream, then end of stream again, as from a closed socket.
    assert_eq!(stream.read(&mut [0u8; 10]).unwrap(), 0);
    assert_eq!(stream.read(&mut [0u8; 10]).unwrap(), 0);
    replay.finish().unwrap();
}

/// A message with every awkward byte, as a FETCH literal.
fn awkward_message() -> Vec<u8> {
    let mut message =
        b"Subject: caf\xc3\xa9\r\nbare LF\nbare CR\rNUL\0 \xff\xfe \\<redacted> {5}\r\n\r\n"
            .to_vec();
    message.extend(std::iter::repeat_n(b'x', 20_000));
    message.extend_from_slice(b" trailing \r\n)\r\n");
    message
}

fn imap_replies() -> (Vec<u8>, Vec<Vec<u8>>) {
    let message = awkward_message();
    let mut fetch = format!(
        "* 1 FETCH (UID 7 RFC822.SIZE {0} BODY[] {{{0}}}\r\n",
        message.len()
    )
    .into_bytes();
    fetch.extend_from_slice(&message);
    fetch.extend_from_slice(
        b")\r\n* 2 FETCH (UID 9 RFC822.SIZE 3 BODY[] {3}\r\nabc)\r\na2 OK Fetch completed.\r\n",
    );
    (
        b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n".to_vec(),
        vec![
            b"a1 OK Logged in\r\n".to_vec(),
            fetch,
            b"* BYE Logging out\r\na3 OK Logout completed.\r\n".to_vec(),
        ],
    )
}

/// Log in, fetch two messages, log out with the `imap` crate; the bodies fetched.
fn imap_session<S: Read + Write + std::fmt::Debug>(
    stream: S,
    user: &str,
    uids: &str,
) -> Result<Vec<Vec<u8>>, String> {
    let mut client = ::imap::Client::new(stream);
    client.read_greeting().map_err(|e| e.to_string())?;
    let mut session = client
        .login(user, "p@ss w\"ord")
        .map_err(|(e, _)| e.to_string())?;
    let fetches = session
        .uid_fetch(uids, "(UID RFC822.SIZE BODY.PEEK[])")
        .map_err(|e| e.to_string())?;
    let bodies = fetches
        .iter()
        .map(|f| f.body().unwrap_or_default().to_vec())
        .collect();
    session.logout().map_err(|e| e.to_string())?;
    Ok(bodies)
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Peer")
    }
}

fn record_imap(path: &Path) -> Vec<Vec<u8>> {
    let (greeting, replies) = imap_replies();
    let replies: Vec<&[u8]> = replies.iter().map(Vec::as_slice).collect();
    let recorder = Recorder::create(path).unwrap();
    recorder.begin_connection("implicit TLS");
    recorder.note("certificate", "MIIBfake==");
    let peer = Peer::scripted(&greeting, &replies, &[5, 0, 1, 300, 7]);
    let bodies = imap_session(recorder.wrap(peer.clone()), "alice@example.com", "7,9").unwrap();
    recorder.note("tls", "TLSv1.3 TLS_AES_256_GCM_SHA384");
    recorder.finish().unwrap();
    assert!(
        peer.written()
            .starts_with(b"a1 LOGIN \"alice@example.com\" \"p@ss w\\\"ord\"\r\n")
    );
    bodies
}

#[test]
fn the_imap_client_replays_a_recorded_session_with_the_same_bytes() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let recorded = record_imap(&path);
    assert_eq!(recorded, [awkward_message(), b"abc".to_vec()]);
    let written = text(&path);
    assert!(written.contains("\nC: a1 LOGIN \\<redacted>\n"));
    assert!(!written.contains("alice") && !written.contains("p@ss"));

    let replay = Replay::open(&path).unwrap();
    let (mode, stream) = replay.next_connection().unwrap();
    assert_eq!(mode, "implicit TLS");
    assert_eq!(replay.note("certificate").as_deref(), Some("MIIBfake=="));
    assert_eq!(
        replay.note("tls").as_deref(),
        Some("TLSv1.3 TLS_AES_256_GCM_SHA384")
    );
    let replayed = imap_session(stream, "bob", "7,9").unwrap();
    assert_eq!(replayed, recorded);
    replay.finish().unwrap();
}

#[test]
fn a_different_command_fails_naming_the_line_and_both_versions() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    record_imap(&path);
    let line = line_of(&path, "C: a2 UID FETCH");
    let replay = Replay::open(&path).unwrap();
    let (_, stream) = replay.next_connection().unwrap();
    let error = imap_session(stream, "alice@example.com", "7:9").unwrap_err();
    let expected = format!(
        "replay of {}: line {line} expects the client to send \"a2 UID FETCH 7,9 (UID RFC822.SIZE BODY.PEEK[])\", it sent \"a2 UID FETCH 7:9 (UID RFC822.SIZE BODY.PEEK[])\"",
        path.display()
    );
    assert!(error.contains(&expected), "{error}");
    // Kept for the end of the run, even when the action swallows the error.
    assert_eq!(replay.finish().unwrap_err(), expected);
}

#[test]
fn a_mismatched_login_never_shows_the_credential() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    record_imap(&path);
    // Make the recorded tag differ so the LOGIN line mismatches.
    let edited = text(&path)
        .replace("C: a1 LOGIN", "C: b1 LOGIN")
        .split("\n== digests\n")
        .next()
        .unwrap()
        .to_owned();
    std::fs::write(&path, edited).unwrap();
    let replay = Replay::open(&path).unwrap();
    let (_, stream) = replay.next_connection().unwrap();
    let error = imap_session(stream, "alice@example.com", "7,9").unwrap_err();
    assert!(
        error.contains("expects the client to send \"b1 LOGIN \\<redacted>\", it sent \"a1 LOGIN \\<redacted>\""),
        "{error}"
    );
    assert!(!error.contains("alice") && !error.contains("p@ss"));
}

#[test]
fn starttls_goes_on_in_the_same_connection_after_into_inner() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let recorder = Recorder::create(&path).unwrap();
    recorder.begin_connection("STARTTLS");
    let plain = Peer::scripted(
        b"* OK [CAPABILITY STARTTLS] hi\r\n",
        &[b"s0 OK Begin TLS\r\n"],
        &[],
    );
    let mut tee = recorder.wrap(plain);
    let greeting = read_line_bytewise(&mut tee);
    assert_eq!(greeting, b"* OK [CAPABILITY STARTTLS] hi\r\n");
    tee.write_all(b"s0 STARTTLS\r\n").unwrap();
    assert_eq!(read_line_bytewise(&mut tee), b"s0 OK Begin TLS\r\n");
    let _plain: Peer = tee.into_inner();
    // The TLS handshake happens here; the secured stream is wrapped again, with no
    // second greeting.
    let secured = Peer::scripted(
        b"",
        &[b"a1 OK Logged in\r\n", b"* BYE\r\na2 OK bye\r\n"],
        &[4],
    );
    let client = ::imap::Client::new(recorder.wrap(secured));
    let mut session = client.login("u", "p").map_err(|(e, _)| e).unwrap();
    session.logout().unwrap();
    recorder.finish().unwrap();
    let written = text(&path);
    assert_eq!(written.matches("== connection").count(), 1);
    assert!(
        written.contains("C: s0 STARTTLS\nS: s0 OK Begin TLS\nC: a1 LOGIN \\<redacted>\n"),
        "{written}"
    );

    let replay = Replay::open(&path).unwrap();
    let (mode, mut stream) = replay.next_connection().unwrap();
    assert_eq!(mode, "STARTTLS");
    read_line_bytewise(&mut stream);
    stream.write_all(b"s0 STARTTLS\r\n").unwrap();
    read_line_bytewise(&mut stream);
    let client = ::imap::Client::new(stream);
    let mut session = client.login("u", "p").map_err(|(e, _)| e).unwrap();
    session.logout().unwrap();
    replay.finish().unwrap();
}

fn read_line_bytewise(stream: &mut impl Read) -> Vec<u8> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1);
        line.push(byte[0]);
    }
    line
}

/// Write a hand-made transcript (no digests) under the format header.
fn hand_made(path: &Path, body: &str) {
    std::fs::write(
        path,
        format!("# soar-imap IMAP transcript, format 1\n{body}"),
    )
    .unwrap();
}

/// Line 2 opens the connection; the conversation starts on line 3.
const SHORT: &str = "== connection 1: plain text
S: * OK hi
C: a1 NOOP
S: a1 OK done
C: a2 LOGOUT
S: * BYE
S: a2 OK bye
";

fn short_replay(dir: &tempfile::TempDir) -> (PathBuf, Replay, ReplayStream) {
    let path = dir.path().join("short.txt");
    hand_made(&path, SHORT);
    let replay = Replay::open(&path).unwrap();
    let (mode, stream) = replay.next_connection().unwrap();
    assert_eq!(mode, "plain text");
    (path, replay, stream)
}

#[test]
fn waiting_for_the_server_where_the_client_should_speak_fails_naming_the_line() {
    let dir = temp();
    let (path, replay, mut stream) = short_replay(&dir);
    let mut buf = [0u8; 100];
    assert_eq!(stream.read(&mut buf).unwrap(), 9);
    let error = stream.read(&mut buf).unwrap_err();
    let expected = format!(
        "replay of {}: line 4 expects the client to send \"a1 NOOP\"; the client waited for the server instead",
        path.display()
    );
    assert_eq!(error.to_string(), expected);
    // The connection stays failed with the first difference.
    assert_eq!(
        stream.write(b"a1 NOOP\r\n").unwrap_err().to_string(),
        expected
    );
    assert_eq!(replay.finish().unwrap_err(), expected);
}

#[test]
fn speaking_where_the_server_should_fails_naming_the_line() {
    let dir = temp();
    let (path, replay, mut stream) = short_replay(&dir);
    let error = stream.write(b"a1 NOOP\r\n").unwrap_err();
    let expected = format!(
        "replay of {}: line 3 expects the server to speak (S: * OK hi); the client sent \"a1 NOOP\\r\\n\"",
        path.display()
    );
    assert_eq!(error.to_string(), expected);
    assert_eq!(replay.finish().unwrap_err(), expected);
}

#[test]
fn bytes_sent_without_a_line_end_before_a_read_are_compared_too() {
    let dir = temp();
    let (path, replay, mut stream) = short_replay(&dir);
    let mut buf = [0u8; 100];
    assert!(stream.read(&mut buf).unwrap() > 0);
    stream.write_all(b"a1 NO").unwrap();
    let error = stream.read(&mut buf).unwrap_err();
    let expected = format!(
        "replay of {}: line 4 expects the client to send \"a1 NOOP\\r\\n\", it sent \"a1 NO\"",
        path.display()
    );
    assert_eq!(error.to_string(), expected);
    assert_eq!(replay.finish().unwrap_err(), expected);
}

#[test]
fn a_run_that_stops_early_is_reported_by_finish() {
    let dir = temp();
    let (path, replay, mut stream) = short_replay(&dir);
    let mut buf = [0u8; 100];
    assert!(stream.read(&mut buf).unwrap() > 0);
    stream.write_all(b"a1 NOOP\r\n").unwrap();
    assert_eq!(stream.read(&mut buf).unwrap(), 12);
    assert_eq!(
        replay.finish().unwrap_err(),
        format!(
            "replay of {}: the client stopped at line 6; the transcript goes on with C: a2 LOGOUT",
            path.display()
        )
    );
    // A server line read in part is not used up either.
    stream.write_all(b"a2 LOGOUT\r\n").unwrap();
    assert_eq!(stream.read(&mut buf[..3]).unwrap(), 3);
    assert!(replay.finish().unwrap_err().contains(
        "the client stopped in the middle of line 7; the transcript goes on with S: * BYE"
    ));
}

#[test]
fn going_on_after_the_end_of_a_connection_is_a_difference() {
    let dir = temp();
    let (path, replay, mut stream) = short_replay(&dir);
    let mut rng = Rng::new(1);
    read_turn(&mut stream, &mut rng, 9).unwrap();
    stream.write_all(b"a1 NOOP\r\n").unwrap();
    read_turn(&mut stream, &mut rng, 12).unwrap();
    stream.write_all(b"a2 LOGOUT\r\n").unwrap();
    read_turn(&mut stream, &mut rng, 18).unwrap();
    replay.finish().unwrap();
    // Reading on: end of stream, which the imap crate turns into "connection lost";
    // the recording never read it, so finish reports it.
    assert_eq!(stream.read(&mut [0u8; 8]).unwrap(), 0);
    assert_eq!(
        replay.finish().unwrap_err(),
        format!(
            "replay of {}: the client read on after the end of connection 1 (line 8), where the recorded server sent nothing more",
            path.display()
        )
    );
    let error = stream.write(b"a3 NOOP\r\n").unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "replay of {}: connection 1 ends at line 8; the client went on to send \"a3 NOOP\\r\\n\"",
            path.display()
        )
    );
}

#[test]
fn extra_and_missing_connections_are_reported() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let one = vec![
        Turn::Server(b"* OK hi\r\n".to_vec()),
        Turn::Client(b"a1 LOGOUT\r\n".to_vec()),
    ];
    record_and_replay(&path, &[one.clone(), one], 5);
    let line = line_of(&path, "== connection 2");

    let replay = Replay::open(&path).unwrap();
    replay.next_connection().unwrap();
    assert_eq!(
        replay.finish().unwrap_err(),
        format!(
            "replay of {}: the client stopped at line 8; the transcript goes on with S: * OK hi",
            path.display()
        )
    );

    // Both connections replayed: nothing left; a third is one too many.
    let replay = Replay::open(&path).unwrap();
    for i in 0..2 {
        let (_, mut stream) = replay.next_connection().unwrap();
        assert_eq!(replay.note("tls"), Some(format!("TLSv1.3 connection {i}")));
        assert_eq!(stream.read(&mut [0u8; 9]).unwrap(), 9);
        stream.write_all(b"a1 LOGOUT\r\n").unwrap();
        if i == 0 {
            assert_eq!(
                replay.finish().unwrap_err(),
                format!(
                    "replay of {}: the run opened 1 connection(s); the transcript has 2 (connection 2 starts at line {line})",
                    path.display()
                )
            );
        }
    }
    replay.finish().unwrap();
    let expected = format!(
        "replay of {}: the client opened connection 3; the transcript has 2",
        path.display()
    );
    assert_eq!(replay.next_connection().unwrap_err(), expected);
    assert_eq!(replay.finish().unwrap_err(), expected);
}

#[test]
fn end_of_stream_and_read_errors_are_recorded_and_replayed() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let recorder = Recorder::create(&path).unwrap();
    recorder.begin_connection("plain text");
    let peer = Peer::scripted(b"* OK hi\r\n* partial", &[], &[]);
    peer.0.borrow_mut().error = Some(io::ErrorKind::TimedOut);
    let mut stream = recorder.wrap(peer);
    let mut buf = [0u8; 64];
    assert_eq!(stream.read(&mut buf).unwrap(), 18);
    let error = stream.read(&mut buf).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    stream.write_all(b"a1 LOGOUT\r\n").unwrap();
    assert_eq!(stream.read(&mut buf).unwrap(), 0);
    assert_eq!(stream.read(&mut buf).unwrap(), 0);
    recorder.finish().unwrap();
    let written = text(&path);
    assert!(
        written.contains(
            "S: * OK hi\nS- * partial\nS! error TimedOut: the peer failed\nC: a1 LOGOUT\nS! EOF\n== digests\n"
        ),
        "{written}"
    );

    let replay = Replay::open(&path).unwrap();
    let (_, mut stream) = replay.next_connection().unwrap();
    assert_eq!(stream.read(&mut buf).unwrap(), 18);
    let error = stream.read(&mut buf).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert_eq!(error.to_string(), "the peer failed");
    stream.write_all(b"a1 LOGOUT\r\n").unwrap();
    assert_eq!(stream.read(&mut buf).unwrap(), 0);
    assert_eq!(stream.read(&mut buf).unwrap(), 0);
    replay.finish().unwrap();
}

#[test]
fn partial_pieces_are_written_when_the_connection_ends() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let recorder = Recorder::create(&path).unwrap();
    recorder.begin_connection("plain text");
    let peer = Peer::scripted(b"* OK hi\r\n* no end", &[], &[]);
    let mut stream = recorder.wrap(peer.clone());
    assert!(stream.read(&mut [0u8; 64]).unwrap() > 0);
    recorder.begin_connection("plain text");
    let mut stream = recorder.wrap(peer);
    stream.write_all(b"a1 NOOP\r\na2 unfinished").unwrap();
    recorder.finish().unwrap();
    assert!(text(&path).contains(
        "== connection 1: plain text\nS: * OK hi\nS- * no end\n== connection 2: plain text\nC: a1 NOOP\nC- a2 unfinished\n== digests\n"
    ));
    // Replay compares the unfinished bytes at the end of the run.
    let replay = Replay::open(&path).unwrap();
    let (_, mut first) = replay.next_connection().unwrap();
    assert!(first.read(&mut [0u8; 64]).unwrap() > 0);
    let (_, mut second) = replay.next_connection().unwrap();
    second.write_all(b"a1 NOOP\r\na2 unfinishe").unwrap();
    let line = line_of(&path, "C- a2");
    let error = replay.finish().unwrap_err();
    assert!(
        error.contains(&format!(
            "line {line} expects the client to send \"a2 unfinished\", it sent \"a2 unfinishe\""
        )),
        "{error}"
    );
}

/// The recorded imap session with one line replaced, added or removed.
fn edit_lines(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = text(path).lines().map(str::to_owned).collect();
    edit(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn without_digests(lines: &mut Vec<String>) {
    let at = lines.iter().position(|l| l == "== digests").unwrap();
    lines.truncate(at);
}

#[test]
fn a_changed_server_line_is_caught_by_the_digests() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    record_imap(&path);
    let line = line_of(&path, "S: a1 OK Logged in");
    edit_lines(&path, |lines| {
        lines[line - 1] = "S: a1 OK Logged out".into();
    });
    assert_eq!(
        Replay::open(&path).unwrap_err(),
        format!(
            "transcript {} line {line} was changed after recording (S: a1 OK Logged out); an edited transcript replays only without its \"== digests\" block, so delete that block to replay edits on purpose",
            path.display()
        )
    );
}

#[test]
fn added_and_removed_lines_are_caught_by_the_digests() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    record_imap(&path);
    let line = line_of(&path, "S: a1 OK Logged in");
    let original = text(&path);
    edit_lines(&path, |lines| lines.insert(line, "S: * 3 EXISTS".into()));
    let error = Replay::open(&path).unwrap_err();
    assert!(
        error.contains(&format!(
            "line {} was added after recording (S: * 3 EXISTS)",
            line + 1
        )),
        "{error}"
    );
    std::fs::write(&path, &original).unwrap();
    edit_lines(&path, |lines| {
        lines.remove(line - 1);
    });
    let error = Replay::open(&path).unwrap_err();
    assert!(
        error.contains(&format!(
            "a line was removed after recording just before line {line}"
        )),
        "{error}"
    );
    // The last covered line removed: the digests cover more lines than there are.
    std::fs::write(&path, &original).unwrap();
    edit_lines(&path, |lines| {
        let at = lines.iter().position(|l| l == "== digests").unwrap();
        lines.remove(at - 1);
    });
    let error = Replay::open(&path).unwrap_err();
    assert!(error.contains("lost lines after recording"), "{error}");
    // A comment line is free.
    std::fs::write(&path, &original).unwrap();
    edit_lines(&path, |lines| {
        lines.insert(line, "# checked by hand".into());
    });
    Replay::open(&path).unwrap();
}

#[test]
fn without_its_digests_block_an_edited_transcript_replays_the_edit() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    record_imap(&path);
    edit_lines(&path, |lines| {
        without_digests(lines);
        let at = lines.iter().position(|l| l == "S: abc)").unwrap();
        lines[at] = "S: xyz)".into();
    });
    let replay = Replay::open(&path).unwrap();
    let (_, stream) = replay.next_connection().unwrap();
    let bodies = imap_session(stream, "alice", "7,9").unwrap();
    assert_eq!(bodies[1], b"xyz");
    replay.finish().unwrap();
}

#[test]
fn a_transcript_checked_out_with_crlf_line_ends_still_replays() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let recorded = record_imap(&path);
    std::fs::write(&path, text(&path).replace('\n', "\r\n")).unwrap();
    let replay = Replay::open(&path).unwrap();
    let (_, stream) = replay.next_connection().unwrap();
    assert_eq!(imap_session(stream, "alice", "7,9").unwrap(), recorded);
    replay.finish().unwrap();
}

#[test]
fn a_transcript_that_cannot_be_written_fails_finish_but_not_the_run() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    let recorder = Recorder::create(full).unwrap();
    recorder.begin_connection("plain text");
    let peer = Peer::scripted(&vec![b'x'; 100_000], &[], &[]);
    let mut stream = recorder.wrap(peer);
    let mut rng = Rng::new(2);
    assert_eq!(
        read_turn(&mut stream, &mut rng, 100_000).unwrap().len(),
        100_000
    );
    stream.write_all(b"a1 NOOP\r\n").unwrap();
    let error = recorder.finish().unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("cannot write transcript /dev/full: "),
        "{error}"
    );
}

#[test]
fn unusable_files_are_refused_naming_the_line() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    let name = path.display().to_string();
    let cases: &[(&str, String)] = &[
        ("", format!("{name} is empty, not a soar-imap transcript")),
        (
            "hello\n",
            format!(
                "{name} is not a soar-imap transcript: its first line is not \"# soar-imap IMAP transcript, format 1\""
            ),
        ),
        (
            "# soar-imap IMAP transcript, format 2\n",
            format!("transcript {name} is in format 2; this soar-imap reads format 1"),
        ),
        (
            "# soar-imap IMAP transcript, format 1\nS: x\n",
            format!(
                "transcript {name} line 2: this line comes before the first \"== connection\" line"
            ),
        ),
        (
            "# soar-imap IMAP transcript, format 1\n== connection 2: plain text\n",
            format!(
                "transcript {name} line 2: expected \"== connection 1: <mode>\" (connections are numbered in order)"
            ),
        ),
        (
            "# soar-imap IMAP transcript, format 1\n== connection 1: x\n\nS: a\\qb\n",
            format!(
                "transcript {name} line 4: \"\\q\" is not an escape (the escapes are \\\\ \\r \\n \\t \\xNN \\<redacted>)"
            ),
        ),
        (
            "# soar-imap IMAP transcript, format 1\n== connection 1: x\nS: \\<redacted>\n",
            format!("transcript {name} line 3: \\<redacted> can only stand in a client line"),
        ),
        (
            "# soar-imap IMAP transcript, format 1\n== connection 1: x\nQ: what\n",
            format!(
                "transcript {name} line 3: \"Q: what\" is not a transcript line: lines start with S: S- C: C- S! @ == or #"
            ),
        ),
        (
            "# soar-imap IMAP transcript, format 1\n== connection 1: x\nC-\n",
            format!(
                "transcript {name} line 3: an empty S- or C- line stands for no bytes at all; delete it"
            ),
        ),
        (
            "# soar-imap IMAP transcript, format 1\n== connection 1: x\n== digests\n== connection 2: y\n",
            format!(
                "transcript {name} line 4: only digests (8 hex digits) may follow \"== digests\", not \"==\""
            ),
        ),
    ];
    for (body, expected) in cases {
        std::fs::write(&path, body).unwrap();
        assert_eq!(&Replay::open(&path).unwrap_err(), expected);
    }
    assert_eq!(
        Replay::open(&dir.path().join("missing.txt"))
            .unwrap_err()
            .split(':')
            .next(),
        Some(
            format!(
                "cannot open transcript {}",
                dir.path().join("missing.txt").display()
            )
            .as_str()
        )
    );
}

#[test]
fn a_run_without_connections_records_and_replays_empty() {
    let dir = temp();
    let path = dir.path().join("t.txt");
    Recorder::create(&path).unwrap().finish().unwrap();
    assert!(text(&path).ends_with("\n== digests\n"));
    let replay = Replay::open(&path).unwrap();
    assert_eq!(replay.note("tls"), None);
    replay.finish().unwrap();
}

/// Fragments the fuzz test splices into transcripts.
const NOISE: &[&[u8]] = &[
    b"\\",
    b"\\x",
    b"\\<redacted>",
    b"\n",
    b"\r",
    b"S: ",
    b"C- ",
    b"S! EOF\n",
    b"S! error TimedOut: x\n",
    b"@ tls x\n",
    b"== connection 2: x\n",
    b"== digests\n",
    b"{99}",
    b"\xff",
    b"#",
    b" ",
    b"0",
    b"00000000 ",
];

/// Random edits of valid transcripts give `Ok` or `Err`, never a panic, whatever the
/// replayed client then does.
#[test]
fn edited_transcripts_never_panic() {
    let dir = temp();
    let recorded = dir.path().join("recorded.txt");
    record_imap(&recorded);
    let sasl = dir.path().join("sasl.txt");
    record_sasl(&sasl, SASL_CLIENT, SASL_SERVER);
    let mut sources: Vec<Vec<u8>> = Vec::new();
    for path in [&recorded, &sasl] {
        let full = std::fs::read(path).unwrap();
        let cut = text(path).find("\n== digests\n").unwrap() + 1;
        sources.push(full[..cut].to_vec());
        sources.push(full);
    }
    // Keep the fuzz small and fast: shorten the long message line.
    for source in &mut sources {
        let text = String::from_utf8(source.clone()).unwrap();
        *source = text.replace(&"x".repeat(20_000), "xxxx").into_bytes();
    }
    let path = dir.path().join("fuzz.txt");
    let mut rng = Rng::new(99);
    for round in 0..1500 {
        let mut bytes = sources[round % sources.len()].clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(5) {
                0 if at < bytes.len() => {
                    bytes.remove(at);
                }
                1 => {
                    let noise = NOISE[rng.below(NOISE.len())];
                    bytes.splice(at..at, noise.iter().copied());
                }
                2 => bytes.truncate(at),
                3 if at < bytes.len() => bytes[at] = u8::try_from(rng.below(256)).unwrap(),
                _ => {
                    let len = rng.below(40).min(bytes.len() - at.min(bytes.len()));
                    let copy = bytes[at..at + len].to_vec();
                    let to = rng.below(bytes.len() + 1);
                    bytes.splice(to..to, copy);
                }
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        let Ok(replay) = Replay::open(&path) else {
            continue;
        };
        for _ in 0..=rng.below(2) {
            let Ok((_, mut stream)) = replay.next_connection() else {
                break;
            };
            let _ = replay.note("tls");
            for _ in 0..rng.below(30) {
                if rng.below(2) == 0 {
                    let mut buf = vec![0u8; rng.below(300)];
                    let _ = stream.read(&mut buf);
                } else {
                    let line: &[u8] = match rng.below(4) {
                        0 => b"a1 LOGIN u p\r\n",
                        1 => b"\r\n",
                        2 => b"a2 UID FETCH 7,9 (UID RFC822.SIZE BODY.PEEK[])\r\n",
                        _ => b"partial",
                    };
                    let _ = stream.write(line);
                }
            }
        }
        let _ = replay.finish();
    }
}
