//! What each fuzz target drives, and the invariants it asserts on the way.
//!
//! Shared by the cargo-fuzz binaries (`fuzz/fuzz_targets/`) and the main crate's
//! regression test, which includes this file by path and replays every input saved under
//! `fixtures/fuzz/<target>/` through the same function. A violated invariant panics, which
//! libFuzzer reports as a crash just like a panic inside the connector.

use std::{net::IpAddr, path::PathBuf, sync::OnceLock};

use base64::Engine as _;
use serde_json::{Map, Value};
use soar_imap::{
    artifacts::file::FileHashes,
    config::Config,
    container::{BuildOptions, Container, EmailSource, MAX_INDICATOR_ARTIFACTS, build_container},
    imap::{
        Auth, ConnectOptions, ImapError, Link, MailSession, Security, connect_and_login, search_all,
    },
    protocol::{Response, parse_request},
    sdi::{artifact_sdi, container_sdi},
    secret::Secret,
    vault::MemoryVault,
};

/// The folder, UID and container id the email target builds with, as a poll would.
const FOLDER: &str = "inbox";
const EMAIL_ID: u64 = 42;
const CONTAINER_ID: i64 = 7;
/// Emails up to this size are built twice to check the output is deterministic; larger
/// ones once, to keep executions fast.
const DETERMINISM_LIMIT: usize = 16 * 1024;

/// The artifact classes in the order a container lists them.
const ARTIFACT_ORDER: [&str; 6] = [
    "IP Artifact",
    "Hash Artifact",
    "URL Artifact",
    "Domain Artifact",
    "Email Artifact",
    "Vault Artifact",
];

/// `email_pipeline`: any bytes -> the container a poll would make (every extraction
/// option on, bodies added to Email Artifacts), attachments into a memory vault.
///
/// Asserts: it never fails with a memory vault; the container serializes to JSON and
/// reads back equal (the ledger stores it that way); `raw_email` gives back the exact
/// bytes; the container SDI is `md5(folder) : uid`; artifacts come in class order, each
/// with a 32-hex SDI that is the md5 of its own Python JSON (duplicate detection relies
/// on it); exactly the last artifact (the last Vault Artifact when there are files)
/// triggers automation; the root Email Artifact comes first and carries the UID (as
/// forwards do); every Vault Artifact's file is in the vault with the hashes and size it
/// states; IPs are whole valid addresses, hashes 32/40/64/128 hex digits, URLs http(s),
/// domains never IPs; at most `MAX_INDICATOR_ARTIFACTS` IP, Hash, URL and Domain
/// Artifacts; small emails give the same container twice.
pub fn email_pipeline(raw: &[u8]) {
    let (container, vault) = build(raw);

    let json = serde_json::to_string(&container)
        .unwrap_or_else(|e| panic!("the container does not serialize: {e}"));
    let back: Container = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("the serialized container does not read back: {e}"));
    assert!(back == container, "the container changed through JSON");

    match container.data.raw_email_encoding.as_deref() {
        None => assert!(
            container.data.raw_email.as_bytes() == raw,
            "raw_email is not the message"
        ),
        Some("latin-1") => {
            assert!(
                std::str::from_utf8(raw).is_err(),
                "UTF-8 mail marked latin-1"
            );
            let bytes: Vec<u32> = container.data.raw_email.chars().map(u32::from).collect();
            let expected: Vec<u32> = raw.iter().map(|&b| u32::from(b)).collect();
            assert!(
                bytes == expected,
                "latin-1 raw_email does not give the bytes back"
            );
        }
        Some(other) => panic!("unknown raw_email_encoding {other:?}"),
    }
    assert_eq!(
        container.source_data_identifier,
        container_sdi(FOLDER, EMAIL_ID)
    );
    assert!(
        !container.name.trim().is_empty(),
        "the container has no name"
    );

    check_artifacts(&container.artifacts, &vault);
    let iocs = container
        .artifacts
        .iter()
        .filter(|a| ARTIFACT_ORDER[..4].iter().any(|n| a["name"] == *n))
        .count();
    assert!(
        iocs <= MAX_INDICATOR_ARTIFACTS,
        "{iocs} indicator artifacts, over the cap of {MAX_INDICATOR_ARTIFACTS}"
    );

    if raw.len() <= DETERMINISM_LIMIT {
        let (again, _) = build(raw);
        assert!(
            again == container,
            "the same email gave two different containers"
        );
    }
}

/// `outlook_msg`: any bytes as an Outlook `.msg` -> `outlook_msg::parse`, then the
/// container of a report email that attaches them as `phish.msg`
/// (`application/vnd.ms-outlook`, base64), as a poll would build it.
///
/// Asserts: parsing never panics, and the files it reads out add up to no more bytes than
/// it was given (its budget); the email still becomes a container with the
/// `email_pipeline` artifact invariants; its first Vault Artifact is the attached file
/// itself, byte for byte; a `.msg` the reader refuses is named in the parse warnings.
pub fn outlook_msg(data: &[u8]) {
    use soar_imap::outlook_msg::{AttachmentContent, OutlookMessage, parse};

    fn file_bytes(message: &OutlookMessage) -> usize {
        message
            .attachments
            .iter()
            .map(|a| match &a.content {
                AttachmentContent::File(bytes) => bytes.len(),
                AttachmentContent::Message(inner) => file_bytes(inner),
                _ => 0,
            })
            .sum()
    }

    let parsed = parse(data, soar_imap::mime::DEFAULT_MAX_DEPTH - 1);
    if let Ok(message) = &parsed {
        assert!(
            file_bytes(message) <= data.len(),
            "the reader took more file bytes out than the .msg has"
        );
    }
    if data.is_empty() {
        // The walk skips an empty attachment (with a warning); nothing to vault.
        return;
    }

    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let raw = format!(
        "From: reporter@example.com\r\nTo: soc@example.com\r\nSubject: Fwd: suspicious\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/vnd.ms-outlook; name=\"phish.msg\"\r\nContent-Disposition: attachment; filename=\"phish.msg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
    );
    let (container, vault) = build(raw.as_bytes());
    check_artifacts(&container.artifacts, &vault);
    let first_file = container
        .artifacts
        .iter()
        .find(|a| a["name"] == "Vault Artifact")
        .unwrap_or_else(|| panic!("the .msg was not vaulted"));
    assert_eq!(first_file["cef"]["fileName"], "phish.msg");
    assert_eq!(
        first_file["cef"]["vaultId"],
        Value::from(FileHashes::of(data).sha1),
        "the first vaulted file is not the .msg"
    );
    if let Err(error) = &parsed
        && soar_imap::outlook_msg::is_outlook_msg("application/vnd.ms-outlook", None, data)
    {
        let warning = format!("attachment phish.msg: not a readable Outlook message ({error})");
        assert!(
            container
                .data
                .parse_warnings
                .iter()
                .any(|w| w.starts_with(&warning)),
            "no warning for an unreadable .msg: {:?}",
            container.data.parse_warnings
        );
    }
}

fn build(raw: &[u8]) -> (Container, MemoryVault) {
    let options = BuildOptions {
        add_body_to_header_artifacts: true,
        ..BuildOptions::default()
    };
    let source = EmailSource {
        raw,
        email_id: EMAIL_ID,
        folder: FOLDER,
        container_id: Some(CONTAINER_ID),
        label: "email",
    };
    let vault = MemoryVault::default();
    let container = build_container(&source, &options, &vault)
        .unwrap_or_else(|e| panic!("a memory vault cannot fail, yet: {e}"));
    (container, vault)
}

fn is_hex(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_artifacts(artifacts: &[Value], vault: &MemoryVault) {
    let mut last_rank = 0;
    let mut automation = Vec::new();
    let mut emails = 0;
    for (index, artifact) in artifacts.iter().enumerate() {
        let Value::Object(fields) = artifact else {
            panic!("artifact {index} is not an object");
        };
        let name = fields.get("name").and_then(Value::as_str).unwrap_or("");
        let rank = ARTIFACT_ORDER
            .iter()
            .position(|n| *n == name)
            .unwrap_or_else(|| panic!("artifact {index} has an unknown name {name:?}"));
        assert!(
            rank >= last_rank,
            "artifact {index} ({name}) is out of order"
        );
        last_rank = rank;
        if fields.get("run_automation") == Some(&Value::Bool(true)) {
            automation.push(index);
        }

        let sdi = fields
            .get("source_data_identifier")
            .and_then(Value::as_str)
            .unwrap_or("");
        assert!(
            sdi.len() == 32 && is_hex(sdi),
            "artifact {index} SDI {sdi:?} is not 32 hex digits"
        );
        // IOC and Email SDIs are taken before run_automation is set (as in the reference);
        // a Vault Artifact's covers its real flag.
        let mut unsigned = fields.clone();
        unsigned.remove("source_data_identifier");
        if name != "Vault Artifact" {
            unsigned.insert("run_automation".into(), Value::Bool(false));
        }
        assert_eq!(
            sdi,
            artifact_sdi(&Value::Object(unsigned)),
            "artifact {index} SDI is not the md5 of its JSON"
        );

        let cef = fields
            .get("cef")
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("artifact {index} has no cef object"));
        let text = |key: &str| {
            cef.get(key)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("artifact {index} ({name}) has no cef.{key} string"))
        };
        match name {
            "IP Artifact" => check_ip(text("sourceAddress")),
            "Hash Artifact" => {
                let hash = text("fileHash");
                assert!(
                    matches!(hash.len(), 32 | 40 | 64 | 128) && is_hex(hash),
                    "hash artifact {hash:?}"
                );
            }
            "URL Artifact" => {
                let url = text("requestURL").to_ascii_lowercase();
                assert!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "URL artifact {url:?} is not http(s)"
                );
            }
            "Domain Artifact" => {
                let domain = text("destinationDnsDomain");
                assert!(
                    !domain.is_empty() && domain.parse::<IpAddr>().is_err(),
                    "domain artifact {domain:?}"
                );
            }
            "Email Artifact" => {
                // The root message's comes first and always has the UID; forwards found in
                // its bodies carry it too, attached messages not.
                let email_id = cef.get("emailId");
                if emails == 0 {
                    assert!(email_id.is_some(), "the root Email Artifact has no emailId");
                }
                if let Some(id) = email_id {
                    assert_eq!(id, &Value::from(EMAIL_ID), "emailId is not the UID");
                }
                emails += 1;
            }
            _ => check_vault_artifact(index, cef, vault),
        }
    }
    assert!(emails >= 1, "no Email Artifact: every email gets one");
    let expected = artifacts
        .iter()
        .rposition(|a| a["name"] == "Vault Artifact")
        .or(artifacts.len().checked_sub(1));
    assert_eq!(
        automation,
        expected.into_iter().collect::<Vec<_>>(),
        "run_automation must be set on exactly the last (vault) artifact"
    );
}

fn check_ip(ip: &str) {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => {}
        // IPv6 addresses are reported in canonical form, so spellings collapse.
        Ok(v6 @ IpAddr::V6(_)) => assert_eq!(ip, v6.to_string(), "IPv6 not canonical"),
        Err(e) => panic!("IP artifact {ip:?} is not an address: {e}"),
    }
}

fn check_vault_artifact(index: usize, cef: &Map<String, Value>, vault: &MemoryVault) {
    let field = |key: &str| cef.get(key).and_then(Value::as_str).unwrap_or("");
    let id = field("vaultId");
    let bytes = vault
        .file(id)
        .unwrap_or_else(|| panic!("vault artifact {index}: {id:?} is not in the vault"));
    let hashes = FileHashes::of(&bytes);
    assert_eq!(
        id, hashes.sha1,
        "vault artifact {index}: id is not the SHA-1"
    );
    assert_eq!(field("fileHashMd5"), hashes.md5);
    assert_eq!(field("fileHashSha256"), hashes.sha256);
    assert_eq!(cef.get("fileSize"), Some(&Value::from(bytes.len())));
    let file_name = field("fileName");
    assert!(
        !file_name.is_empty() && !file_name.contains(['/', '\\', '\0', '\r', '\n']),
        "vault artifact {index}: file name {file_name:?} is not cleaned"
    );
}

/// Values that stand in for secrets: a run must never show them.
const SENTINEL_PASSWORD: &str = "fuzz-sentinel-password-7c1e";
const SENTINEL_CLIENT_SECRET: &str = "fuzz-sentinel-client-secret-52aa";
const SENTINEL_REFRESH_TOKEN: &str = "fuzz-sentinel-refresh-token-e90d";
/// The common prefix: an input that already holds it is not checked for leaks.
const SENTINEL_PREFIX: &[u8] = b"fuzz-sentinel-";

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// `request`: any bytes -> `parse_request`, and when that parses, `Config::from_json` on
/// its `config` (no I/O).
///
/// Asserts: an unusable request gives a bad-request response that serializes and exits 2;
/// a usable one has at least one parameter object and an asset id; with its secret keys
/// (`password`, `client_secret`, `refresh_token`) replaced by sentinels, neither the
/// typed configuration's `Debug` nor any configuration error shows a sentinel.
pub fn request(data: &[u8]) {
    let request = match parse_request(data) {
        Ok(request) => request,
        Err(error) => {
            let response = Response::bad_request(&error);
            assert_eq!(response.exit_code(), 2);
            serde_json::to_string(&response)
                .unwrap_or_else(|e| panic!("a bad-request response does not serialize: {e}"));
            return;
        }
    };
    assert!(!request.parameters.is_empty(), "no parameter object");
    assert!(!request.asset_id.trim().is_empty(), "an empty asset id");
    match Config::from_json(&request.config) {
        Ok(config) => assert!(!format!("{config:?}").is_empty()),
        Err(error) => assert!(!error.to_string().is_empty() && !error.key().is_empty()),
    }

    if contains_bytes(data, SENTINEL_PREFIX) {
        return;
    }
    let Value::Object(mut config) = request.config else {
        return;
    };
    config.insert("password".into(), SENTINEL_PASSWORD.into());
    config.insert("client_secret".into(), SENTINEL_CLIENT_SECRET.into());
    config.insert("refresh_token".into(), SENTINEL_REFRESH_TOKEN.into());
    let shown = match Config::from_json(&Value::Object(config)) {
        Ok(config) => format!("{config:?}"),
        Err(error) => format!("{error} {error:?}"),
    };
    for secret in [
        SENTINEL_PASSWORD,
        SENTINEL_CLIENT_SECRET,
        SENTINEL_REFRESH_TOKEN,
    ] {
        assert!(!shown.contains(secret), "a secret is shown: {shown}");
    }
}

/// The credentials the transcript target logs in with: a replay must never quote them.
const TRANSCRIPT_USER: &str = "fuzz-user@example.com";
const TRANSCRIPT_PASSWORD: &str = "fuzz-sentinel-imap-password-31b7";
const TRANSCRIPT_TOKEN: &str = "fuzz-sentinel-oauth-token-a4f0";
/// Connections replayed at most: a poll opens one, test connectivity up to two.
const MAX_CONNECTIONS: usize = 3;
/// UIDs fetched from what the replayed SEARCH answered.
const MAX_FETCH: usize = 64;

/// A scratch file per process for the transcript under test (`Replay::open` reads a path).
fn scratch_path() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::tempdir()
            .unwrap_or_else(|e| panic!("cannot make a scratch directory for transcripts: {e}"))
    })
    .path()
    .join("fuzz.transcript")
}

/// `transcript`: any bytes as a `--replay` transcript -> `Link::replay`, then what an
/// action does over it for each recorded connection: connect (implicit TLS or STARTTLS
/// as the transcript says, LOGIN or XOAUTH2), read the TLS note, then the session calls
/// the connection's client lines ask for (CAPABILITY, LIST, EXAMINE, UID SEARCH, the
/// three `UID FETCH` commands, LOGOUT), or when it has none, those of test connectivity, on poll
/// and get email in turn; then `finish`. Hostile transcripts must give errors, never a
/// panic.
///
/// Asserts: no error message quotes the password or the token the client sent (unless
/// the transcript itself holds them).
pub fn transcript(data: &[u8]) {
    let path = scratch_path();
    if let Err(e) = std::fs::write(&path, data) {
        panic!("cannot write {}: {e}", path.display());
    }
    let link = match Link::replay(&path) {
        Ok(link) => link,
        Err(message) => return check_no_secret(data, &message),
    };
    let text = String::from_utf8_lossy(data);
    let security = if text.contains(": STARTTLS") {
        Security::StartTls
    } else {
        Security::ImplicitTls
    };
    let options = ConnectOptions {
        server: "imap.example.com".into(),
        port: 993,
        security,
        verify_server_cert: true,
        ca_cert: None,
        // Both answers to a refused STARTTLS, picked by the input so both get explored.
        allow_plaintext_auth: data.len().is_multiple_of(2),
        timeout: std::time::Duration::from_secs(1),
    };
    let oauth = text.contains("AUTHENTICATE");
    let scripts = scripts(&text);
    let mut messages = Vec::new();
    // As many connections as recorded (an action opens what it recorded), at least one.
    for index in 0..scripts.len().clamp(1, MAX_CONNECTIONS) {
        let mut token =
            |_: bool| -> Result<Secret, String> { Ok(Secret::new(TRANSCRIPT_TOKEN.to_owned())) };
        let auth = if oauth {
            Auth::XOAuth2 {
                username: TRANSCRIPT_USER,
                token: &mut token,
            }
        } else {
            Auth::Login {
                username: TRANSCRIPT_USER,
                password: TRANSCRIPT_PASSWORD,
            }
        };
        match connect_and_login(&link, &options, auth) {
            Ok(connected) => {
                let _ = link.probe_tls(&options);
                let mut session = connected.session;
                let outcome = match scripts.get(index) {
                    Some(script) if !script.is_empty() => follow(&mut session, script),
                    _ => converse(&mut session),
                };
                if let Err(e) = outcome {
                    messages.push(e.to_string());
                }
            }
            Err(ImapError::Replay(message)) if message.contains("the client opened connection") => {
                messages.push(message);
                break;
            }
            Err(e) => messages.push(e.to_string()),
        }
    }
    if let Err(message) = link.finish() {
        messages.push(message);
    }
    for message in &messages {
        check_no_secret(data, message);
    }
}

/// One session call, as a recorded client line asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Call {
    Capabilities,
    List,
    Examine(String),
    Search(u32, u32),
    FetchSizes(Vec<u32>),
    FetchMessages(Vec<u32>),
    FetchHeaders(Vec<u32>),
    Logout,
}

/// The session calls each recorded connection's client lines ask for (`C: <tag> <command>`),
/// so the replayed client follows the transcript's own script and the fuzzer's mutations
/// reach the server answers of every command, not only the first one that differs.
/// Login, STARTTLS and unknown lines are left out (the login is made by the connection).
fn scripts(text: &str) -> Vec<Vec<Call>> {
    let mut connections: Vec<Vec<Call>> = Vec::new();
    for line in text.lines() {
        if line.starts_with("== connection") {
            connections.push(Vec::new());
        } else if let Some(client) = line.strip_prefix("C: ")
            && let Some((_tag, command)) = client.split_once(' ')
            && let Some(calls) = connections.last_mut()
            && let Some(call) = parse_call(command)
        {
            calls.push(call);
        }
    }
    connections
}

fn parse_call(command: &str) -> Option<Call> {
    let (verb, rest) = command.split_once(' ').unwrap_or((command, ""));
    match verb.to_ascii_uppercase().as_str() {
        "CAPABILITY" => Some(Call::Capabilities),
        "LIST" => Some(Call::List),
        "LOGOUT" => Some(Call::Logout),
        "EXAMINE" => Some(Call::Examine(rest.trim_matches('"').to_owned())),
        "UID" => {
            let (verb, rest) = rest.split_once(' ')?;
            if verb.eq_ignore_ascii_case("SEARCH") {
                let (from, to) = rest.strip_prefix("UID ")?.split_once(':')?;
                return Some(Call::Search(from.parse().ok()?, to.parse().ok()?));
            }
            let (set, items) = rest.split_once(' ')?;
            let uids = small_uid_set(set)?;
            if items.contains("BODY.PEEK[HEADER]") {
                Some(Call::FetchHeaders(uids))
            } else if items.contains("BODY.PEEK[]") {
                Some(Call::FetchMessages(uids))
            } else {
                Some(Call::FetchSizes(uids))
            }
        }
        _ => None,
    }
}

/// A UID set of at most [`MAX_FETCH`] UIDs (larger ones are skipped: the point is the
/// server's answer, not building huge sets).
fn small_uid_set(set: &str) -> Option<Vec<u32>> {
    let mut uids = Vec::new();
    for part in set.split(',') {
        let (first, last) = part.split_once(':').unwrap_or((part, part));
        let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
        let (low, high) = (first.min(last), first.max(last));
        if (high - low) as usize + uids.len() >= MAX_FETCH {
            return None;
        }
        uids.extend(low..=high);
    }
    Some(uids)
}

/// The calls of a connection whose script is unknown: test connectivity, on poll and get
/// email in that order, the UIDs taken from the replayed SEARCH.
fn converse(session: &mut dyn MailSession) -> Result<(), ImapError> {
    session.capabilities()?;
    session.list_folders()?;
    let status = session.examine(FOLDER)?;
    let uid_next = status
        .uid_next
        .unwrap_or_else(|| status.exists.saturating_add(1));
    let mut uids = search_all(session, 1, uid_next)?;
    uids.truncate(MAX_FETCH);
    session.fetch_sizes(&uids)?;
    session.fetch_messages(&uids)?;
    session.fetch_headers(&uids)?;
    session.logout()
}

/// Make the calls of a recorded script, stopping at the first error as an action does.
fn follow(session: &mut dyn MailSession, script: &[Call]) -> Result<(), ImapError> {
    for call in script {
        match call {
            Call::Capabilities => {
                session.capabilities()?;
            }
            Call::List => {
                session.list_folders()?;
            }
            Call::Examine(folder) => {
                session.examine(folder)?;
            }
            Call::Search(from, to) => {
                session.search_uids(*from, *to)?;
            }
            Call::FetchSizes(uids) => {
                session.fetch_sizes(uids)?;
            }
            Call::FetchMessages(uids) => {
                session.fetch_messages(uids)?;
            }
            Call::FetchHeaders(uids) => {
                session.fetch_headers(uids)?;
            }
            Call::Logout => session.logout()?,
        }
    }
    Ok(())
}

fn check_no_secret(data: &[u8], message: &str) {
    let sasl = format!("user={TRANSCRIPT_USER}\x01auth=Bearer {TRANSCRIPT_TOKEN}\x01\x01");
    let sasl_b64 = base64::engine::general_purpose::STANDARD.encode(sasl);
    for secret in [TRANSCRIPT_PASSWORD, TRANSCRIPT_TOKEN, sasl_b64.as_str()] {
        if !contains_bytes(data, secret.as_bytes()) {
            assert!(
                !message.contains(secret),
                "a replay message quotes a credential: {message}"
            );
        }
    }
}
