"""A real Dovecot for end-to-end tests, started and stopped by the test itself.

A port of the Rust suite's `tests/it/dovecot.rs`. Each `Dovecot` gets its own temp directory
with a config file, a throwaway CA and a leaf certificate for localhost/127.0.0.1 (made with
the `openssl` CLI), a passwd-file user and a Maildir, and listens on two free 127.0.0.1
ports: plain text (STARTTLS offered) and implicit TLS. Given an introspection URL it also
accepts XOAUTH2 and OAUTHBEARER, checking bearer tokens with Dovecot's `passdb oauth2`
(see `oauth_stub.py`); LOGIN and PLAIN keep using the password.

    with Dovecot(password="pw") as server:
        uid = server.append(b"From: a@example.com\\r\\nSubject: hi\\r\\n\\r\\nhi\\r\\n")
        assert uid not in server.seen_flags("INBOX")

Messages go in with IMAP APPEND, as mail really arrives, and Dovecot answers with the UID
(UIDPLUS). Folders, flags and mailbox status go through `doveadm`, which needs no IMAP
session and so can never set \\Seen itself. Leaving the `with` block, or `stop()`, stops
the server even when the test failed, kills any of its processes that outlived the stop and
deletes the directory; `log()` still returns the server's log afterwards.

Nothing is installed here: without the `dovecot` binary, `start()` raises `DovecotError`
naming `apt-get install dovecot-imapd`.
"""

import atexit
import base64
import contextlib
import imaplib
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

HOST = "127.0.0.1"
"""The only address the server listens on."""

INSTALL_HINT = "apt-get install dovecot-imapd"

# Dovecot refuses to run mail processes as uid 0 ("User has invalid UID '0'"), and the
# tests run as root. Any unused uid works: it needs no /etc/passwd entry, only to own the
# Maildir. Dovecot's own processes keep their defaults (users dovecot and dovenull, which
# the Debian package creates).
MAIL_UID = 5000

# A Unix socket path may be at most 107 bytes, and Dovecot puts its sockets under
# base_dir (e.g. `<root>/run/login/imap-urlauth`, root being about 30 characters plus the
# temp dir's parent): under a longer TMPDIR, use /tmp.
_MAX_TMPDIR_LEN = 40


class DovecotError(RuntimeError):
    """Dovecot is missing, did not start, or a doveadm or openssl command failed."""


@dataclass(frozen=True)
class MailboxStatus:
    """What `doveadm mailbox status` says about one folder."""

    messages: int
    uidvalidity: int
    uidnext: int


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now.

    Every socket stays bound until all are picked, so the kernel cannot hand out one port
    twice. They are closed before Dovecot binds them, so another process (another xdist
    worker) can still take one first: `Dovecot.start` then retries with fresh ports.
    """
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _run(args: list[str], *, cwd: Path | None = None, stdin: bytes | None = None) -> str:
    """Run a command to completion; its stdout, or `DovecotError` with all it printed."""
    try:
        done = subprocess.run(
            args, cwd=cwd, input=stdin, capture_output=True, check=False, timeout=60
        )
    except FileNotFoundError as error:
        hint = f" ({INSTALL_HINT})" if args[0] in ("dovecot", "doveadm") else ""
        raise DovecotError(f"cannot run {args[0]}{hint}: {error}") from error
    if done.returncode != 0:
        raise DovecotError(
            f"{' '.join(args)} failed with exit code {done.returncode}:\n"
            f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}"
        )
    return done.stdout.decode(errors="replace")


def make_certificates(directory: Path) -> None:
    """Write a throwaway CA (`ca.pem`, `ca.key`) and a leaf for localhost and 127.0.0.1
    signed by it (`cert.pem`, `key.pem`) into `directory`.

    A CA plus a leaf rather than one self-signed certificate: a self-signed server
    certificate is CA:TRUE, which rustls/webpki refuse as an end-entity certificate. The
    explicit key usages are for Python 3.13, whose default SSL context sets
    VERIFY_X509_STRICT: it refuses a CA without keyUsage ("CA cert does not include key
    usage extension"), which is what a bare `openssl req -x509` makes.
    """
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _run(
        [
            "openssl", "req", "-x509", *ec,
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=soar-imap test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        cwd=directory,
    )  # fmt: skip
    _run(
        ["openssl", "req", *ec, "-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=localhost"],
        cwd=directory,
    )
    (directory / "leaf.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid:always\n"
    )
    _run(
        [
            "openssl", "x509", "-req", "-in", "leaf.csr",
            "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "cert.pem", "-days", "2", "-extfile", "leaf.ext",
        ],
        cwd=directory,
    )  # fmt: skip


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3), as IMAP commands want it.

    Dovecot 2.3 has no UTF8=ACCEPT, so a non-ASCII name must be encoded; `doveadm` takes
    plain UTF-8 instead.
    """
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            utf16 = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(utf16).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def quote_mailbox(name: str) -> str:
    """A folder name ready for an imaplib command: modified UTF-7, in a quoted string.

    imaplib sends arguments as they are, so `imap.select("Phish Reports")` would be a
    syntax error without the quotes.
    """
    encoded = imap_utf7(name).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{encoded}"'


@dataclass(frozen=True)
class _Process:
    """What /proc/PID/stat says of a process, enough to tell it from a later process that
    reuses its pid (the start time) and to see that it has exited (state Z)."""

    name: str
    state: str
    ppid: int
    start_time: str


def _process(pid: int) -> _Process | None:
    """/proc/PID/stat of `pid`, or None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The name (field 2) is in parentheses and may contain spaces and parentheses.
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return _Process(name, fields[0], int(fields[1]), fields[19])


def _children(pid: int) -> dict[int, _Process]:
    """The live children of `pid` (Dovecot's master forks every service process itself)."""
    children: dict[int, _Process] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            process = _process(int(entry.name))
            if process is not None and process.ppid == pid and process.state != "Z":
                children[int(entry.name)] = process
    return children


def _alive(pid: int, seen: _Process) -> bool:
    """Whether the process noted as `seen` still runs (not exited, pid not reused)."""
    now = _process(pid)
    return now is not None and now.start_time == seen.start_time and now.state != "Z"


# Servers started and not stopped yet: stopped at interpreter exit in case a test forgot
# to (a strong reference, so a server dropped without stop() is still found here).
_running: "set[Dovecot]" = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_running):
        server.stop()


class Dovecot:
    """A private Dovecot on 127.0.0.1: use it as a context manager, or `start()`/`stop()`.

    The attributes are set by `start()`: `host`, `plain_port` (plain text and STARTTLS),
    `tls_port` (implicit TLS), `username`, `password`, `ca_cert_path` (PEM of the CA that
    signed the server certificate, for the connector's `ca_cert`), `maildir_path` (the
    user's Maildir; the folder separator is `.`, Maildir++) and `root` (the temp dir).
    """

    def __init__(
        self,
        *,
        username: str = "soc",
        password: str | None = None,
        introspection_url: str | None = None,
        startup_timeout: float = 15.0,
    ) -> None:
        """Configure (not start) a server for one user.

        `password` defaults to a random one. With `introspection_url` (e.g.
        `OAuthStub.introspection_url`), XOAUTH2 and OAUTHBEARER are offered and each bearer
        token is POSTed there as `token=...`; `{"active": true, "username": USER}` logs in.
        """
        if not re.fullmatch(r"[A-Za-z0-9._@+-]+", username):
            # The name goes into a passwd-file line and a path: keep it boring.
            raise ValueError(f"unsupported user name {username!r}")
        self.host = HOST
        self.username = username
        self.password = password if password is not None else "pw-" + secrets.token_hex(12)
        if any(c in self.password for c in ":\r\n"):
            raise ValueError("the password cannot contain ':' or a line break (passwd-file)")
        self.introspection_url = introspection_url
        self.startup_timeout = startup_timeout
        self.plain_port = 0
        self.tls_port = 0
        self.root = Path()
        self._final_log: str | None = None
        self._started = False

    # ---- life cycle --------------------------------------------------------------------

    @property
    def oauth(self) -> bool:
        """Whether XOAUTH2/OAUTHBEARER are on."""
        return self.introspection_url is not None

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def ca_cert_path(self) -> Path:
        """PEM file of the CA that signed the server certificate."""
        return self.root / "ca.pem"

    @property
    def ca_cert_pem(self) -> str:
        """The CA certificate as PEM text (for a config that wants the text, not a path)."""
        return self.ca_cert_path.read_text()

    @property
    def maildir_path(self) -> Path:
        """The user's Maildir (INBOX is `cur`/`new`/`tmp` here, folder X is `.X/`)."""
        return self.root / "mail" / self.username

    def start(self) -> Self:
        """Create the directory, certificates and config, start Dovecot, wait until it greets.

        On any failure everything started so far is stopped and removed again.
        """
        if self._started:
            raise DovecotError("this Dovecot is already started")
        if shutil.which("dovecot") is None or shutil.which("doveadm") is None:
            raise DovecotError(
                f"the dovecot and doveadm commands are missing: {INSTALL_HINT} (as root)"
            )
        if shutil.which("openssl") is None:
            raise DovecotError("the openssl command is missing: apt-get install openssl")
        parent = tempfile.gettempdir()
        if len(parent) > _MAX_TMPDIR_LEN:
            parent = "/tmp"
        self.root = Path(tempfile.mkdtemp(prefix="soar-imap-dovecot-", dir=parent))
        self._started = True
        _running.add(self)
        try:
            self._prepare()
            self._launch()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self) -> None:
        root = self.root
        # mkdtemp makes the directory 0700, but Dovecot's unprivileged processes must get
        # through it: the mail processes (uid 5000) to the Maildir, and the auth process
        # (user dovecot) to the users file.
        root.chmod(0o755)
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir()
        self.maildir_path.mkdir()
        make_certificates(root)
        os.chown(root / "mail", MAIL_UID, MAIL_UID)
        os.chown(self.maildir_path, MAIL_UID, MAIL_UID)
        (root / "users").write_text(
            f"{self.username}:{{PLAIN}}{self.password}:{MAIL_UID}:{MAIL_UID}::"
            f"{self.maildir_path}::\n"
        )
        if self.introspection_url is not None:
            (root / "oauth2.conf.ext").write_text(
                "introspection_mode = post\n"
                f"introspection_url = {self.introspection_url}\n"
                # Dovecot's docs: needed when active_attribute is used (it checks
                # `active` from the introspection answer).
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
                "timeout_msecs = 5000\n"
            )

    def _config(self) -> str:
        root = self.root
        if self.introspection_url is None:
            mechanisms, oauth_passdb, password_mechanisms = "plain login", "", ""
        else:
            # Bearer tokens go to the introspection endpoint and passwords to the
            # passwd-file. The oauth2 passdb comes first and each passdb is limited to its
            # mechanisms, or a password would be sent for introspection (and a token be
            # checked as a password).
            mechanisms = "plain login xoauth2 oauthbearer"
            oauth_passdb = (
                "passdb {\n"
                "  driver = oauth2\n"
                "  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {root}/oauth2.conf.ext\n"
                "}\n"
            )
            password_mechanisms = "\n  mechanisms = plain login"
        return f"""\
protocols = imap
listen = {HOST}
# Everything of this instance under its own directory, apart from /run/dovecot.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = soar-imap-test-{self.plain_port}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
# Loopback counts as secured anyway; explicit so plain-text LOGIN works on plain_port.
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
# A failed login would otherwise cost 2 s, and 2.3 no longer spares localhost from the
# anvil auth penalty (up to 15 s, even for the next good login). mode = 0 below turns the
# penalty off; auth then logs one harmless net_connect_unix(anvil-auth-penalty) error.
# (A stale anvil-auth-penalty socket from a run without it would delay every greeting by
# 5 s: base_dir is new for each server, so there is none.)
auth_failure_delay = 0
{oauth_passdb}passdb {{
  driver = passwd-file{password_mechanisms}
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
mail_location = maildir:{root}/mail/%u
mail_fsync = never
service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {self.plain_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def _launch(self) -> None:
        attempts = 5
        for attempt in range(1, attempts + 1):
            self.plain_port, self.tls_port = _free_ports(2)
            self.config_path.write_text(self._config())
            # The master daemonises and keeps the stdio it was given: hand it files, not
            # pipes, or reading them would wait for the server to stop. Its early errors
            # (config, bind) go there rather than to log_path.
            with (self.root / "dovecot.stderr").open("ab") as out:
                status = subprocess.run(
                    ["dovecot", "-c", str(self.config_path)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    check=False,
                    timeout=60,
                ).returncode
            if status == 0:
                return
            # Most likely another process took a port between _free_ports and the bind.
            if attempt == attempts:
                raise DovecotError(f"dovecot -c failed {attempts} times:\n{self.log()}")

    def _wait_ready(self) -> None:
        """Wait for the greeting on the plain port: imap-login sends it only once the
        auth process answers, so a greeting means logins work."""
        deadline = time.monotonic() + self.startup_timeout
        while True:
            try:
                with socket.create_connection((HOST, self.plain_port), timeout=5) as sock:
                    if sock.recv(256).startswith(b"* OK"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise DovecotError(
                    f"dovecot did not greet within {self.startup_timeout} s:\n{self.log()}"
                )
            time.sleep(0.02)

    def _master_pid(self) -> int | None:
        try:
            return int((self.root / "run" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        """Stop the server, kill what is left of it, keep its log, delete the directory.

        Safe to call more than once and after a failed start.
        """
        if not self._started:
            return
        self._started = False
        _running.discard(self)
        try:
            self._stop_processes()
        finally:
            self._final_log = self._read_log()
            shutil.rmtree(self.root, ignore_errors=True)

    def _stop_processes(self) -> None:
        """Stop the master and every process it started, in about 0.1 s.

        `doveadm stop` sends the master SIGTERM and waits for it, which takes 1 to 2 s: the
        other children exit within 0.01 s, but the master keeps its log process about a
        second longer, and then itself lingers 0.1 to 1 s more. Neither has anything left
        to do for a server about to be deleted, so: SIGTERM the master, wait for the other
        children, SIGTERM the log process (their last lines are in its pipe by then), give
        the master 0.1 s, and SIGKILL whatever is left (a process that ignored it all too).
        """
        master_pid = self._master_pid()
        master = None if master_pid is None else _process(master_pid)
        # The name check guards against a stale master.pid whose pid now belongs to
        # another process.
        if master_pid is None or master is None or master.state == "Z":
            return
        if master.name != "dovecot":
            return
        processes = {master_pid: master, **_children(master_pid)}
        with contextlib.suppress(ProcessLookupError):
            os.kill(master_pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        log_stopped = False
        alone_since: float | None = None
        while time.monotonic() < deadline and _alive(master_pid, master):
            # Note children while the master lives: once it is gone they are re-parented
            # to init and can no longer be found by their parent.
            for pid, process in _children(master_pid).items():
                processes.setdefault(pid, process)
            others = {
                pid for pid, seen in processes.items() if pid != master_pid and _alive(pid, seen)
            }
            if not others:
                alone_since = alone_since or time.monotonic()
                if time.monotonic() - alone_since > 0.1:
                    break
            elif not log_stopped and all(processes[pid].name == "log" for pid in others):
                time.sleep(0.02)
                for pid in others:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                log_stopped = True
            time.sleep(0.005)
        for pid, seen in processes.items():
            if _alive(pid, seen):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def log(self) -> str:
        """The server's log (after `stop()`, as it was then), plus what `dovecot -c`
        printed on stderr if anything."""
        return self._read_log() if self._started else self._final_log or ""

    def _read_log(self) -> str:
        parts = []
        for name in ("dovecot.stderr", "dovecot.log"):
            with contextlib.suppress(OSError):
                text = (self.root / name).read_text(errors="replace")
                if text:
                    parts.append(text)
        return "".join(parts)

    # ---- IMAP --------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the test CA and checks the host name."""
        return ssl.create_default_context(cafile=self.ca_cert_path)

    def connect(self, *, tls: bool = True, timeout: float = 15.0) -> imaplib.IMAP4:
        """A new IMAP connection, not logged in: implicit TLS on `tls_port`, or plain text
        on `plain_port` (call `.starttls(ssl_context=server.ssl_context())` on it)."""
        if tls:
            return imaplib.IMAP4_SSL(
                self.host, self.tls_port, ssl_context=self.ssl_context(), timeout=timeout
            )
        return imaplib.IMAP4(self.host, self.plain_port, timeout=timeout)

    @contextlib.contextmanager
    def session(self) -> Iterator[imaplib.IMAP4]:
        """An IMAP session over implicit TLS, logged in with the password; logs out after."""
        imap = self.connect()
        try:
            imap.login(self.username, self.password)
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    def append(self, raw: bytes, folder: str = "INBOX", flags: Iterable[str] = ()) -> int:
        """APPEND one message to `folder` (which must exist) with `flags`; its UID."""
        return self.append_many([raw], folder, flags)[0]

    def append_many(
        self, raws: Iterable[bytes], folder: str = "INBOX", flags: Iterable[str] = ()
    ) -> list[int]:
        """APPEND messages in order over one session; their UIDs.

        imaplib turns bare LF and CR into CRLF on the way, as IMAP requires; Dovecot
        serves messages with CRLF whatever they were stored with, so the connector sees
        the same bytes either way.
        """
        flag_list = " ".join(flags)
        uids: list[int] = []
        with self.session() as imap:
            for raw in raws:
                status, data = imap.append(
                    quote_mailbox(folder), f"({flag_list})" if flag_list else None, None, raw
                )
                text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
                match = re.search(r"\[APPENDUID (\d+) (\d+)\]", text)
                if status != "OK" or match is None:
                    raise DovecotError(f"APPEND to {folder}: {status} {text}\n{self.log()}")
                uids.append(int(match.group(2)))
        return uids

    # ---- doveadm -----------------------------------------------------------------------

    def doveadm(self, *args: str) -> str:
        """Run `doveadm -c CONFIG ARGS...`; its stdout."""
        return _run(["doveadm", "-c", str(self.config_path), *args])

    def create_folder(self, name: str) -> None:
        """Create a folder (UTF-8 name; a `.` makes a subfolder)."""
        self.doveadm("mailbox", "create", "-u", self.username, name)

    def delete_folder(self, name: str) -> None:
        """Delete a folder and all its mail (`create_folder` again gives a new
        UIDVALIDITY: Dovecot never reuses one for a user)."""
        self.doveadm("mailbox", "delete", "-u", self.username, "-r", name)

    def _tab(self, *args: str) -> list[dict[str, str]]:
        """Run doveadm with the tab formatter: one dict per row, keyed by the header."""
        lines = self.doveadm("-f", "tab", *args).splitlines()
        if not lines:
            return []
        header = lines[0].split("\t")
        return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]

    def flags(self, folder: str = "INBOX") -> dict[int, frozenset[str]]:
        """The flags of every message in `folder`, by UID."""
        rows = self._tab("fetch", "-u", self.username, "uid flags", "mailbox", folder, "all")
        return {int(row["uid"]): frozenset(row["flags"].split()) for row in rows}

    def seen_flags(self, folder: str = "INBOX") -> set[int]:
        """The UIDs in `folder` that have \\Seen."""
        return {uid for uid, flags in self.flags(folder).items() if "\\Seen" in flags}

    def status(self, folder: str = "INBOX") -> MailboxStatus:
        """Message count, UIDVALIDITY and UIDNEXT of `folder`."""
        rows = self._tab(
            "mailbox", "status", "-u", self.username, "messages uidvalidity uidnext", folder
        )
        if len(rows) != 1:
            raise DovecotError(f"mailbox status {folder}: {rows}")
        row = rows[0]
        return MailboxStatus(int(row["messages"]), int(row["uidvalidity"]), int(row["uidnext"]))

    def set_uidvalidity(self, folder: str, uidvalidity: int) -> None:
        """Give `folder` a new UIDVALIDITY, as a server does after rebuilding it."""
        self.doveadm(
            "mailbox", "update", "-u", self.username, "--uid-validity", str(uidvalidity), folder
        )
