"""OAuth inside SOAR, offline: a token endpoint stub stands in for Google or Microsoft, and
Dovecot checks every XOAUTH2 token against it. The administrator's sign-in goes through
the app's webhook, run as SOAR runs it: another App instance, sharing the asset's state
file with the waiting test connectivity."""

import importlib.util
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from soar_sdk.actions_manager import ActionsManager
from soar_sdk.app_cli_runner import AppCliRunner
from soar_sdk.asset_state import AssetState

import src
from src import oauth

from .support.dovecot import Dovecot
from .support.oauth_stub import CLIENT_ID, CLIENT_SECRET, OAuthStub, pkce_s256
from .support.soar_platform import Result, Soar, run_action
from .test_on_poll import SCHEDULED, ingest_part, report

REDIRECT = "https://soar.example.com:3500/webhook/imap_9f2e9f72/7/oauth"
SCOPES = '["https://mail.example.com/"]'


@pytest.fixture
def stub() -> Iterator[OAuthStub]:
    with OAuthStub(expires_in=3600) as provider:
        yield provider


@pytest.fixture
def server(stub: OAuthStub) -> Iterator[Dovecot]:
    with Dovecot(introspection_url=stub.introspection_url) as dovecot:
        yield dovecot


@pytest.fixture
def soar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Soar:
    # The asset's state file lives here, as under /opt/phantom on SOAR.
    monkeypatch.setenv("PHANTOM_HOME", str(tmp_path / "phantom"))
    monkeypatch.setattr(oauth, "POLL_SECS", 0.05)
    # Long enough for the webhook's process to start on a loaded CI machine (two test
    # workers, Dovecot, the binary); a sign-in that works takes a second or two.
    monkeypatch.setattr(oauth, "WAIT_SECS", 60)
    vault_tmp = tmp_path / "vault-tmp"
    vault_tmp.mkdir()
    return Soar(vault_tmp=vault_tmp)


def oauth_asset(server: Dovecot, stub: OAuthStub, **overrides: Any) -> dict[str, Any]:
    asset = {
        "server": "localhost",
        "port": server.tls_port,
        "username": server.username,
        "ca_cert": str(server.ca_cert_path),
        "auth_type": "OAuth",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "auth_url": stub.url("/authorize"),
        "token_url": stub.token_url,
        "scopes": SCOPES,
        "folder": "INBOX",
        "timeout_secs": 10,
    }
    asset.update(overrides)
    return asset


def persisting(app: Any) -> None:
    """SOAR writes an action's state file as the action saves it: the webhook, another
    process, reads the pending sign-in from there."""
    manager = app.actions_manager
    save = manager.save_state

    def save_and_write(state: dict[str, Any]) -> None:
        save(state)
        manager.save_state_to_file("7", state)

    manager.save_state = save_and_write
    app.get_webhook_url = lambda route: REDIRECT


def auth_part(state: dict[str, Any]) -> dict[str, Any]:
    class Backend:
        def load_state(self) -> dict[str, Any]:
            return state

    return AssetState(Backend(), "auth", "7").get_all()


def another_app_instance() -> ModuleType:
    """src.app loaded once more, beside the running one: the webhook's own process."""
    spec = importlib.util.spec_from_file_location("src.app", Path(src.__file__).parent / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Administrator(threading.Thread):
    """Opens the link test connectivity shows, signs in, and the provider redirects the
    browser to the app's webhook."""

    def __init__(
        self, stub: OAuthStub, user: str, asset: dict[str, Any], tmp: Path, *, refuse: bool = False
    ) -> None:
        super().__init__(daemon=True)
        self.stub, self.user, self.asset, self.tmp, self.refuse = stub, user, asset, tmp, refuse
        self.webhook_output = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._sign_in()
        except BaseException as error:  # reported by the test
            self.error = error

    def _sign_in(self) -> None:
        manager = ActionsManager()
        deadline = time.monotonic() + 45
        session = None
        while session is None:
            assert time.monotonic() < deadline, "test connectivity showed no sign-in"
            time.sleep(0.05)
            oauth_state = auth_part(manager.load_state_from_file("7")).get("oauth") or {}
            session = oauth_state.get("session")
        if self.refuse:
            query = {"error": "access_denied", "error_description": "The user said no"}
        else:
            code = self.stub.add_authorization_code(
                pkce_s256(session["code_verifier"]),
                user=self.user,
                redirect_uri=REDIRECT,
                scope="https://mail.example.com/",
            )
            query = {"code": code, "state": session["state"]}
        asset_file = self.tmp / "webhook-asset.json"
        asset_file.write_text(json.dumps(self.asset))
        url = "https://soar.example.com/oauth?" + urllib.parse.urlencode(query)
        webhook = another_app_instance().app
        AppCliRunner(webhook).run(["webhook", url, "-a", str(asset_file), "--asset-id", "7"])


def connectivity_with_sign_in(
    app_module: ModuleType,
    soar: Soar,
    stub: OAuthStub,
    server: Dovecot,
    asset: dict[str, Any],
    tmp: Path,
    *,
    capsys: Any = None,
    refuse: bool = False,
) -> Result:
    """Test connectivity, with the administrator signing in (or refusing) meanwhile."""
    admin = Administrator(stub, server.username, asset, tmp, refuse=refuse)
    admin.start()
    result = run_action(
        app_module, soar, "test_connectivity", asset, None, tmp, capsys=capsys, patch=persisting
    )
    admin.join(10)
    assert admin.error is None, admin.error
    return result


def test_sign_in_through_the_webhook_then_poll_and_refresh_with_the_stored_tokens(
    fresh_app: ModuleType,
    server: Dovecot,
    stub: OAuthStub,
    soar: Soar,
    tmp_path: Path,
    capsys: Any,
) -> None:
    server.append_many([report(1), report(2)])
    asset = oauth_asset(server, stub)
    result = connectivity_with_sign_in(
        fresh_app, soar, stub, server, asset, tmp_path, capsys=capsys
    )
    assert result.status, result.message
    assert "To continue, open this link in a new tab in your browser" in result.printed
    assert f"Redirect URI: {REDIRECT}" in result.printed
    assert "Logged in with XOAUTH2" in result.printed
    # The authorization request: PKCE S256, a random state, the webhook as redirect.
    link = next(
        line for line in result.printed.splitlines() if line.startswith(stub.url("/authorize"))
    )
    query = urllib.parse.parse_qs(urllib.parse.urlparse(link.split("\x1b")[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [REDIRECT]
    assert query["client_id"] == [CLIENT_ID]
    # The webhook exchanged the code with the verifier; the tokens are in auth_state only.
    [exchange] = [r for r in stub.token_requests if r.grant_type == "authorization_code"]
    assert exchange.status == 200 and exchange.params["code_verifier"]
    token = auth_part(soar.asset_state)["oauth"]["token"]
    assert token["refresh_token"] and token["access_token"]
    assert "session" not in auth_part(soar.asset_state)["oauth"]

    # A poll logs in with the stored access token: no new token request.
    requests_before = len(stub.token_requests)
    poll = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path, capsys=capsys)
    assert poll.status, poll.message
    assert len(soar.containers) == 2
    assert len(stub.token_requests) == requests_before

    # Revoked at the provider: the binary refreshes once and the new token is kept.
    stub.revoke_access_tokens()
    server.append(report(3))
    poll = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path, capsys=capsys)
    assert poll.status, poll.message
    assert len(soar.containers) == 3
    assert stub.token_request_count("refresh_token") == 1
    refreshed = auth_part(soar.asset_state)["oauth"]["token"]
    assert refreshed["access_token"] != token["access_token"]

    # Secrets stay in the encrypted auth_state: nowhere in what SOAR shows or keeps apart.
    shown = result.printed + poll.printed + poll.message + json.dumps(ingest_part(soar))
    # (Not the one-time authorization code: the SDK's development CLI, which stands in for
    # SOAR's webhook service here, prints the request it parsed.)
    tokens = [secret for secret in stub.secrets if not secret.startswith("code-")]
    assert len(tokens) >= 3
    for secret in [*tokens, CLIENT_SECRET]:
        assert secret not in shown
    assert CLIENT_SECRET not in json.dumps(soar.asset_state)


def test_a_refused_sign_in_fails_test_connectivity_with_the_providers_words(
    fresh_app: ModuleType, server: Dovecot, stub: OAuthStub, soar: Soar, tmp_path: Path
) -> None:
    asset = oauth_asset(server, stub)
    result = connectivity_with_sign_in(fresh_app, soar, stub, server, asset, tmp_path, refuse=True)
    assert not result.status
    assert "the OAuth sign-in failed: The user said no" in result.message
    assert stub.token_request_count("authorization_code") == 0


def test_microsoft_app_only_needs_no_browser(
    fresh_app: ModuleType, server: Dovecot, stub: OAuthStub, soar: Soar, tmp_path: Path
) -> None:
    stub.client_credentials_user = server.username
    server.append(report(1))
    asset = oauth_asset(server, stub, oauth_grant="client_credentials")
    result = run_action(fresh_app, soar, "test_connectivity", asset, None, tmp_path)
    assert result.status, result.message
    assert stub.token_request_count("client_credentials") == 1
    poll = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path)
    assert poll.status, poll.message
    assert len(soar.containers) == 1
    # The token test connectivity obtained served the poll too.
    assert stub.token_request_count("client_credentials") == 1


def test_a_revoked_refresh_token_tells_the_administrator_to_sign_in_again(
    fresh_app: ModuleType, server: Dovecot, stub: OAuthStub, soar: Soar, tmp_path: Path
) -> None:
    refresh = stub.new_refresh_token(server.username)
    asset = oauth_asset(server, stub, refresh_token=refresh)
    ok = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path)
    assert ok.status, ok.message
    stub.revoke_refresh_tokens()
    stub.revoke_access_tokens()
    failed = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path)
    assert not failed.status
    assert "the refresh token was rejected" in failed.message
    assert "run Test Connectivity on the asset to sign in again" in failed.message
    assert "soar-imap oauth login" not in failed.message
    assert refresh not in failed.message


def test_test_connectivity_signs_in_again_when_the_refresh_token_was_revoked(
    fresh_app: ModuleType,
    server: Dovecot,
    stub: OAuthStub,
    soar: Soar,
    tmp_path: Path,
    capsys: Any,
) -> None:
    asset = oauth_asset(server, stub)
    for attempt in (1, 2):
        result = connectivity_with_sign_in(
            fresh_app, soar, stub, server, asset, tmp_path, capsys=capsys
        )
        assert result.status, result.message
        assert stub.token_request_count("authorization_code") == attempt
        # Revoked at the provider (the user removed the app's access, say).
        stub.revoke_refresh_tokens()
        stub.revoke_access_tokens()
    # The second test connectivity found the refresh token refused and signed in again.
    assert "the refresh token was rejected" in result.printed
    assert "run Test Connectivity on the asset to sign in again" in result.printed
