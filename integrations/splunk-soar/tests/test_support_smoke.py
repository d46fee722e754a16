"""Smoke tests of the test harness itself (`tests/support/`): the private Dovecot really
serves IMAP over implicit TLS and STARTTLS with the throwaway CA, refuses a wrong password,
keeps UIDs and \\Seen as the end-to-end tests expect, cleans up after itself, and in OAuth
mode checks XOAUTH2/OAUTHBEARER tokens at the stub provider, which itself implements the
grants the app uses.

Every test gets its own servers (ports and directories are per instance), so these run in
parallel under pytest-xdist.
"""

import imaplib
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.dovecot import Dovecot, DovecotError, quote_mailbox
from tests.support.oauth_stub import (
    CLIENT_ID,
    CLIENT_SECRET,
    OAuthStub,
    pkce_pair,
    post_form,
)

PASSWORD = "Dv-smoke-7c1e-password"


def message(n: int) -> bytes:
    return (
        f"From: reporter{n}@example.com\r\nTo: soc@example.org\r\n"
        f"Subject: smoke {n}\r\nMessage-ID: <smoke-{n}@example.com>\r\n\r\n"
        f"See https://lure{n}.example.net/login\r\n"
    ).encode()


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    with Dovecot(password=PASSWORD) as server:
        yield server


@pytest.fixture
def oauth_stub() -> Iterator[OAuthStub]:
    with OAuthStub() as stub:
        yield stub


@pytest.fixture
def oauth_dovecot(oauth_stub: OAuthStub) -> Iterator[Dovecot]:
    # Stopped before the stub (fixtures tear down in reverse), so Dovecot never
    # introspects against a dead endpoint.
    with Dovecot(password=PASSWORD, introspection_url=oauth_stub.introspection_url) as server:
        yield server


def ca_context(server: Dovecot) -> ssl.SSLContext:
    """A context built only from `ca_cert_path`, as the connector gets it."""
    return ssl.create_default_context(cafile=str(server.ca_cert_path))


def uids_and_subjects(imap: imaplib.IMAP4) -> dict[int, str]:
    """UID -> Subject of every message in the selected folder, without setting \\Seen."""
    status, data = imap.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert status == "OK", data
    found: dict[int, str] = {}
    for item in data:
        if isinstance(item, tuple):
            uid = re.search(rb"UID (\d+)", item[0])
            assert uid is not None, item
            found[int(uid.group(1))] = item[1].decode().strip().removeprefix("Subject: ")
    return found


def untagged_number(imap: imaplib.IMAP4, code: str) -> int:
    """A number from an untagged response code of the last SELECT/EXAMINE (UIDVALIDITY)."""
    _, data = imap.response(code)
    assert data, code
    assert data[0] is not None, code
    return int(data[0])


def xoauth2(user: str, token: str) -> Callable[[bytes], bytes]:
    """XOAUTH2 for imaplib: the token on the empty first challenge, then an empty answer to
    the `+ <base64 JSON error>` continuation Dovecot sends when it refuses the token."""
    payload = f"user={user}\x01auth=Bearer {token}\x01\x01".encode()
    return lambda challenge: b"" if challenge else payload


def client_credentials_token(stub: OAuthStub) -> str:
    reply = post_form(
        stub.token_url,
        {"grant_type": "client_credentials", "scope": "https://outlook.office365.com/.default"},
        basic=(CLIENT_ID, CLIENT_SECRET),
    )
    assert reply.status == 200, reply
    token = reply.json()["access_token"]
    assert isinstance(token, str)
    return token


# ---- Dovecot -------------------------------------------------------------------------------


def test_implicit_tls_login_sees_appended_messages_with_their_uids(dovecot: Dovecot) -> None:
    uids = [dovecot.append(message(1)), dovecot.append(message(2))]
    assert uids == [1, 2]
    assert dovecot.host == "127.0.0.1"
    assert dovecot.ca_cert_pem.startswith("-----BEGIN CERTIFICATE-----")

    imap = imaplib.IMAP4_SSL(
        dovecot.host, dovecot.tls_port, ssl_context=ca_context(dovecot), timeout=15
    )
    try:
        imap.login(dovecot.username, PASSWORD)
        status, data = imap.select("INBOX", readonly=True)  # EXAMINE
        assert (status, data) == ("OK", [b"2"]), dovecot.log()
        assert untagged_number(imap, "UIDVALIDITY") == dovecot.status().uidvalidity
        assert uids_and_subjects(imap) == {1: "smoke 1", 2: "smoke 2"}
        imap.close()
    finally:
        imap.logout()
    assert dovecot.seen_flags("INBOX") == set(), "nothing read yet"
    inbox = dovecot.status("INBOX")
    assert (inbox.messages, inbox.uidnext) == (2, 3)
    assert inbox.uidvalidity > 0
    # The Maildir is where the harness says, owned by the mail uid.
    assert len(list((dovecot.maildir_path / "new").iterdir())) == 2
    assert dovecot.maildir_path.stat().st_uid == 5000
    assert "Login: user=<soc>, method=PLAIN" in dovecot.log()


def test_the_certificate_names_localhost_and_127_0_0_1(dovecot: Dovecot) -> None:
    for name in ("localhost", "127.0.0.1"):
        with (
            socket.create_connection((dovecot.host, dovecot.tls_port), timeout=10) as raw,
            ca_context(dovecot).wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.recv(256).startswith(b"* OK"), name
    # And verification is real: without the test CA the handshake fails.
    with (
        socket.create_connection((dovecot.host, dovecot.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        ssl.create_default_context().wrap_socket(raw, server_hostname="localhost")


def test_starttls_on_the_plain_port(dovecot: Dovecot) -> None:
    dovecot.append(message(1))
    imap = imaplib.IMAP4(dovecot.host, dovecot.plain_port, timeout=15)
    try:
        assert "STARTTLS" in imap.capabilities
        imap.starttls(ssl_context=ca_context(dovecot))
        assert isinstance(imap.sock, ssl.SSLSocket)
        imap.login(dovecot.username, PASSWORD)
        assert imap.select("INBOX", readonly=True) == ("OK", [b"1"])
        assert uids_and_subjects(imap) == {1: "smoke 1"}
    finally:
        imap.logout()
    assert "TLS" in dovecot.log()


@pytest.mark.parametrize("tls", [True, False])
def test_a_wrong_password_is_refused_quickly(dovecot: Dovecot, tls: bool) -> None:
    for attempt in range(2):
        imap = dovecot.connect(tls=tls)
        started = time.monotonic()
        try:
            with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
                imap.login(dovecot.username, PASSWORD + "-wrong")
        finally:
            imap.logout()
        # auth_failure_delay = 0 and no anvil penalty: not the default 2 s, growing to 15 s.
        assert time.monotonic() - started < 1.8, f"attempt {attempt}"
    # The right password still works at once after failures.
    with dovecot.session() as imap:
        assert imap.select("INBOX")[0] == "OK"


def test_seen_flags_follow_what_the_client_does(dovecot: Dovecot) -> None:
    first, second = dovecot.append(message(1)), dovecot.append(message(2), flags=["\\Seen"])
    third = dovecot.append(message(3), flags=("\\Flagged",))
    assert dovecot.seen_flags() == {second}
    assert "\\Flagged" in dovecot.flags()[third]
    with dovecot.session() as imap:
        imap.select("INBOX")
        # BODY.PEEK[] leaves \Seen alone; BODY[] after SELECT sets it.
        assert imap.uid("FETCH", str(first), "(BODY.PEEK[])")[0] == "OK"
        assert dovecot.seen_flags() == {second}
        assert imap.uid("FETCH", str(third), "(BODY[])")[0] == "OK"
    assert dovecot.seen_flags() == {second, third}


def test_folders_with_any_name_and_uidvalidity_changes(dovecot: Dovecot) -> None:
    folder = "Phish Reports & Jünk"
    dovecot.create_folder(folder)
    assert dovecot.append_many([message(1), message(2)], folder=folder) == [1, 2]
    assert dovecot.append(message(3)) == 1, "UIDs are per folder"
    before = dovecot.status(folder)
    assert (before.messages, before.uidnext) == (2, 3)
    with dovecot.session() as imap:
        assert imap.select(quote_mailbox(folder), readonly=True) == ("OK", [b"2"])
        assert uids_and_subjects(imap) == {1: "smoke 1", 2: "smoke 2"}

    dovecot.set_uidvalidity(folder, before.uidvalidity + 7)
    assert dovecot.status(folder).uidvalidity == before.uidvalidity + 7
    # Deleted and created again: new UIDVALIDITY, UIDs from 1.
    dovecot.delete_folder(folder)
    dovecot.create_folder(folder)
    after = dovecot.status(folder)
    assert after.messages == 0
    assert after.uidvalidity not in (before.uidvalidity, before.uidvalidity + 7)
    assert dovecot.append(message(4), folder=folder) == 1


def test_stop_removes_everything_and_keeps_the_log() -> None:
    server = Dovecot()
    with server:
        server.append(message(1))
        root, port = server.root, server.tls_port
        pid = int((root / "run" / "master.pid").read_text())
        assert server.password.startswith("pw-")
    assert not root.exists()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection((server.host, port), timeout=2),
    ):
        pass
    assert "imap-login: Info: Login" in server.log()
    server.stop()  # twice is fine


def test_stop_runs_when_the_test_fails() -> None:
    server = Dovecot()

    def failing_test() -> None:
        with server:
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_test()
    assert server.root.name.startswith("soar-imap-dovecot-")
    assert not server.root.exists()
    assert "Killed with signal 15" in server.log()


def test_a_missing_dovecot_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DovecotError, match="apt-get install dovecot-imapd"), Dovecot():
        pass


def test_servers_side_by_side_do_not_collide(dovecot: Dovecot) -> None:
    with Dovecot(username="analyst", password="other") as other:
        assert {other.plain_port, other.tls_port}.isdisjoint({dovecot.plain_port, dovecot.tls_port})
        other.append(message(9))
        assert dovecot.status().messages == 0
        with other.session() as imap:
            assert imap.select("INBOX", readonly=True) == ("OK", [b"1"])
        # Each server knows only its own user.
        imap = dovecot.connect()
        try:
            with pytest.raises(imaplib.IMAP4.error):
                imap.login("analyst", "other")
        finally:
            imap.logout()


# ---- OAuth: Dovecot's passdb oauth2 against the stub ----------------------------------------


def test_xoauth2_logs_in_with_a_client_credentials_token_and_not_once_revoked(
    oauth_stub: OAuthStub, oauth_dovecot: Dovecot
) -> None:
    oauth_dovecot.append(message(1))
    token = client_credentials_token(oauth_stub)

    imap = oauth_dovecot.connect()
    try:
        assert "AUTH=XOAUTH2" in imap.capabilities
        assert "AUTH=OAUTHBEARER" in imap.capabilities
        imap.authenticate("XOAUTH2", xoauth2(oauth_dovecot.username, token))
        assert imap.select("INBOX", readonly=True) == ("OK", [b"1"])
    finally:
        imap.logout()
    assert any(i.token == token and i.active for i in oauth_stub.introspections), (
        "Dovecot did not ask the stub",
        oauth_dovecot.log(),
    )

    oauth_stub.revoke_access_token(token)
    imap = oauth_dovecot.connect()
    try:
        # Refused with NO after the JSON continuation: no hang.
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate("XOAUTH2", xoauth2(oauth_dovecot.username, token))
    finally:
        imap.logout()
    assert oauth_stub.introspections[-1].active is False


def test_oauthbearer_and_passwords_work_in_oauth_mode(
    oauth_stub: OAuthStub, oauth_dovecot: Dovecot
) -> None:
    token = oauth_stub.new_access_token(oauth_dovecot.username)
    payload = f"n,a={oauth_dovecot.username},\x01auth=Bearer {token}\x01\x01".encode()
    imap = oauth_dovecot.connect(tls=False)
    try:
        imap.starttls(ssl_context=oauth_dovecot.ssl_context())
        imap.authenticate("OAUTHBEARER", lambda challenge: b"" if challenge else payload)
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()
    with oauth_dovecot.session() as session:
        assert session.select("INBOX")[0] == "OK"
    # A token of another user is not this user's.
    other = oauth_stub.new_access_token("someone-else")
    imap = oauth_dovecot.connect()
    try:
        with pytest.raises(imaplib.IMAP4.error):
            imap.authenticate("XOAUTH2", xoauth2(oauth_dovecot.username, other))
    finally:
        imap.logout()


def test_a_plain_dovecot_offers_no_xoauth2(dovecot: Dovecot) -> None:
    imap = dovecot.connect()
    try:
        assert "AUTH=XOAUTH2" not in imap.capabilities
    finally:
        imap.logout()


# ---- the OAuth stub ---------------------------------------------------------------------------


def test_authorization_code_with_pkce(oauth_stub: OAuthStub) -> None:
    verifier, challenge = pkce_pair()
    redirect = "https://soar.example.com/result"
    code = oauth_stub.add_authorization_code(challenge, redirect_uri=redirect, scope="mail")

    def exchange(code: str, verifier: str) -> tuple[int, dict[str, str]]:
        reply = post_form(
            oauth_stub.token_url,
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        )
        return reply.status, reply.json()

    wrong_verifier, _ = pkce_pair()
    assert exchange(code, wrong_verifier) == (
        400,
        {"error": "invalid_grant", "error_description": "PKCE verification failed"},
    )
    code = oauth_stub.add_authorization_code(challenge, redirect_uri=redirect, scope="mail")
    status, body = exchange(code, verifier)
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "mail"
    assert body["access_token"].startswith("at-")
    assert body["refresh_token"].startswith("rt-")
    assert exchange(code, verifier)[1]["error"] == "invalid_grant", "a code works once"

    request = oauth_stub.token_requests[1]
    assert request.grant_type == "authorization_code"
    assert request.client_auth == "form"
    assert request.params["code_verifier"] == verifier
    assert request.access_token == body["access_token"]
    assert oauth_stub.token_request_count("authorization_code") == 3


def test_refresh_grant_expiry_rotation_and_invalid_grant(oauth_stub: OAuthStub) -> None:
    refresh = oauth_stub.new_refresh_token()
    basic = (CLIENT_ID, CLIENT_SECRET)
    oauth_stub.expires_in = 1
    reply = post_form(
        oauth_stub.token_url, {"grant_type": "refresh_token", "refresh_token": refresh}, basic
    )
    assert reply.status == 200, reply
    body = reply.json()
    assert body["expires_in"] == 1
    assert "refresh_token" not in body, "no rotation by default"

    def introspect(token: str) -> object:
        return post_form(oauth_stub.introspection_url, {"token": token}).json()

    assert introspect(body["access_token"]) == {"active": True, "username": "soc"}
    time.sleep(1.1)
    assert introspect(body["access_token"]) == {"active": False}

    oauth_stub.rotate_refresh_tokens = True
    rotated = post_form(
        oauth_stub.token_url, {"grant_type": "refresh_token", "refresh_token": refresh}, basic
    ).json()
    assert rotated["refresh_token"].startswith("rt-")

    oauth_stub.revoke_refresh_token(refresh)
    refused = post_form(
        oauth_stub.token_url, {"grant_type": "refresh_token", "refresh_token": refresh}, basic
    )
    assert (refused.status, refused.json()["error"]) == (400, "invalid_grant")
    wrong_client = post_form(
        oauth_stub.token_url,
        {"grant_type": "refresh_token", "refresh_token": rotated["refresh_token"]},
        (CLIENT_ID, "wrong"),
    )
    assert (wrong_client.status, wrong_client.json()["error"]) == (401, "invalid_client")
    assert [r.status for r in oauth_stub.token_requests] == [200, 200, 400, 401]
    assert refresh in oauth_stub.secrets
    assert all(t in oauth_stub.secrets for t in oauth_stub.access_tokens)
