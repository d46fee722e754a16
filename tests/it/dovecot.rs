//! A real Dovecot for end-to-end tests, started and stopped by the test itself.
//!
//! Each `Dovecot::start()` gets its own temp directory with a config file, a throwaway
//! CA and a leaf certificate for `localhost`/127.0.0.1, a passwd-file user and a maildir,
//! and listens on two free 127.0.0.1 ports: plain text (STARTTLS available) and implicit
//! TLS. Messages are loaded with `doveadm save`. Dropping the value stops the server.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The test user's name and password.
pub const USER: &str = "soc";
pub const PASSWORD: &str = "Dv-4e1f0c9b-test-password";

/// A running Dovecot instance.
pub struct Dovecot {
    dir: tempfile::TempDir,
    /// Port for plain text and STARTTLS.
    pub imap_port: u16,
    /// Port for implicit TLS.
    pub imaps_port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) -> String {
    let output = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn make_certificates(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .args([
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=soar-imap test CA",
        ])
        .current_dir(dir));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .args([
            "-keyout",
            "key.pem",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ])
        .current_dir(dir));
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args([
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
        ])
        .args(["-out", "cert.pem", "-days", "2", "-extfile", "leaf.ext"])
        .current_dir(dir));
}

impl Dovecot {
    /// Start a fresh server with an empty INBOX.
    pub fn start() -> Dovecot {
        Dovecot::start_inner(None, "")
    }

    /// Start a fresh server that announces only these capabilities after login (say,
    /// without MOVE), as older or stricter servers do.
    pub fn start_with_capabilities(capabilities: &str) -> Dovecot {
        Dovecot::start_inner(None, &format!("imap_capability = {capabilities}"))
    }

    /// Start a fresh server that also accepts XOAUTH2 and OAUTHBEARER, validating bearer
    /// tokens with `passdb oauth2` against `introspection_url` (RFC 7662, form POST
    /// `token=...`, expecting `{"active": true, "username": "soc"}`). PLAIN and LOGIN keep
    /// using the passwd-file user and password.
    pub fn start_with_oauth(introspection_url: &str) -> Dovecot {
        Dovecot::start_inner(Some(introspection_url), "")
    }

    #[allow(clippy::too_many_lines)]
    fn start_inner(introspection_url: Option<&str>, extra: &str) -> Dovecot {
        let dir = tempfile::Builder::new()
            .prefix("soar-imap-dovecot")
            .tempdir()
            .unwrap();
        let root = dir.path();
        let mail = root.join("mail");
        std::fs::create_dir_all(mail.join(USER)).unwrap();
        for sub in ["run", "state"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        make_certificates(root);
        // Mail processes run as uid 5000 (Dovecot refuses uid 0); it must own the maildir.
        run(Command::new("chown").args(["-R", "5000:5000"]).arg(&mail));
        std::fs::write(
            root.join("users"),
            format!(
                "{USER}:{{PLAIN}}{PASSWORD}:5000:5000::{}::\n",
                mail.join(USER).display()
            ),
        )
        .unwrap();
        // Bearer tokens go to the introspection endpoint; passwords to the passwd-file.
        // The oauth2 passdb must come first and both are restricted to their mechanisms,
        // or a password would be sent for introspection (and a token checked as one).
        let (mechanisms, oauth_passdb, password_mechanisms) = match introspection_url {
            None => ("plain login", String::new(), ""),
            Some(url) => {
                std::fs::write(
                    root.join("oauth2.conf.ext"),
                    format!(
                        "introspection_mode = post\n\
                         introspection_url = {url}\n\
                         force_introspection = yes\n\
                         username_attribute = username\n\
                         active_attribute = active\n\
                         active_value = true\n\
                         timeout_msecs = 5000\n"
                    ),
                )
                .unwrap();
                (
                    "plain login xoauth2 oauthbearer",
                    format!(
                        "passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {}\n}}\n",
                        root.join("oauth2.conf.ext").display()
                    ),
                    "\n      mechanisms = plain login",
                )
            }
        };
        // free_port() releases the port before Dovecot binds it, so under load another
        // process can take it first: try again with fresh ports.
        let mut attempt = 0;
        let (imap_port, tls_port) = loop {
            attempt += 1;
            let (imap_port, tls_port) = (free_port(), free_port());
            let conf = format!(
                r"protocols = imap
    listen = 127.0.0.1
    base_dir = {root}/run
    state_dir = {root}/state
    log_path = {root}/dovecot.log
    instance_name = soar-imap-test-{imap_port}
    ssl = yes
    ssl_cert = <{root}/cert.pem
    ssl_key = <{root}/key.pem
    ssl_min_protocol = TLSv1.2
    disable_plaintext_auth = no
    auth_mechanisms = {mechanisms}
    auth_failure_delay = 0
    {oauth_passdb}
    passdb {{
      driver = passwd-file{password_mechanisms}
      args = scheme=PLAIN username_format=%u {root}/users
    }}
    userdb {{
      driver = passwd-file
      args = username_format=%u {root}/users
    }}
    mail_location = maildir:{mail}/%u
    {extra}
    mail_fsync = never
    service imap-login {{
      inet_listener imap {{
        address = 127.0.0.1
        port = {imap_port}
      }}
      inet_listener imaps {{
        address = 127.0.0.1
        port = {tls_port}
        ssl = yes
      }}
    }}
    service anvil {{
      unix_listener anvil-auth-penalty {{
        mode = 0
      }}
    }}
    ",
                root = root.display(),
                mail = mail.display(),
            );
            std::fs::write(root.join("dovecot.conf"), conf).unwrap();
            // The master daemonises and keeps its stdio: give it none, or waiting for the
            // pipes to close would wait for the server to stop.
            let status = Command::new("dovecot")
                .arg("-c")
                .arg(root.join("dovecot.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run dovecot (apt-get install dovecot-imapd)");
            if status.success() {
                break (imap_port, tls_port);
            }
            assert!(
                attempt < 5,
                "dovecot -c failed to start:\n{}",
                std::fs::read_to_string(root.join("dovecot.log")).unwrap_or_default()
            );
        };
        let server = Dovecot {
            dir,
            imap_port,
            imaps_port: tls_port,
        };
        server.wait_ready();
        server
    }

    fn conf(&self) -> PathBuf {
        self.dir.path().join("dovecot.conf")
    }

    /// The CA that signed the server certificate (for `config.ca_cert`).
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.imap_port)) {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut greeting = String::new();
                if BufReader::new(stream).read_line(&mut greeting).is_ok()
                    && greeting.starts_with("* OK")
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "dovecot did not come up:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn doveadm(&self) -> Command {
        let mut cmd = Command::new("doveadm");
        cmd.arg("-c").arg(self.conf());
        cmd
    }

    /// Create a mailbox (folder) for the test user.
    pub fn create_mailbox(&self, mailbox: &str) {
        run(self
            .doveadm()
            .args(["mailbox", "create", "-u", USER, mailbox]));
    }

    /// Delete a mailbox and everything in it.
    pub fn delete_mailbox(&self, mailbox: &str) {
        run(self
            .doveadm()
            .args(["mailbox", "delete", "-u", USER, "-r", mailbox]));
    }

    /// Store one message in `mailbox` (which must exist; INBOX always does).
    pub fn save(&self, mailbox: &str, raw: &[u8]) {
        let mut child = self
            .doveadm()
            .args(["save", "-u", USER, "-m", mailbox])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(raw).unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "doveadm save: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// UID and flags of every message in `mailbox`.
    pub fn flags(&self, mailbox: &str) -> Vec<(u32, String)> {
        let out =
            run(self
                .doveadm()
                .args(["fetch", "-u", USER, "uid flags", "mailbox", mailbox, "all"]));
        let mut result = Vec::new();
        let mut uid = None;
        for line in out.lines() {
            if let Some(v) = line.strip_prefix("uid: ") {
                uid = v.trim().parse().ok();
            } else if let Some(v) = line.strip_prefix("flags: ") {
                result.push((uid.take().unwrap_or(0), v.trim().to_owned()));
            } else if line.trim() == "flags:" {
                result.push((uid.take().unwrap_or(0), String::new()));
            }
        }
        result
    }

    /// `messages`, `uidvalidity` and `uidnext` of a mailbox.
    pub fn status(&self, mailbox: &str) -> String {
        run(self.doveadm().args([
            "mailbox",
            "status",
            "-u",
            USER,
            "messages uidvalidity uidnext",
            mailbox,
        ]))
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self
            .doveadm()
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn harness_starts_dovecot_and_logs_in_over_plain_text() {
    let server = Dovecot::start();
    server.save(
        "INBOX",
        b"From: a@example.com\r\nSubject: hello\r\n\r\nhi\r\n",
    );
    let flags = server.flags("INBOX");
    assert_eq!(flags.len(), 1);
    assert!(!flags[0].1.contains("\\Seen"), "{flags:?}");
    let stream = TcpStream::connect(("127.0.0.1", server.imap_port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("* OK"), "{line}");
    (&stream)
        .write_all(format!("a1 LOGIN {USER} \"{PASSWORD}\"\r\n").as_bytes())
        .unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.starts_with("a1 ") {
            break;
        }
    }
    assert!(line.starts_with("a1 OK"), "{line}\n{}", server.log());
}
