"""A small OAuth 2.0 provider for the tests: a token endpoint and the RFC 7662 introspection
endpoint that Dovecot's `passdb oauth2` calls (see `Dovecot(introspection_url=...)`).

A port of what the Rust suite's `tests/it/oauth_server.rs` does for these needs. The stub
listens on a free 127.0.0.1 port (`http.server` in a daemon thread), and the tests steer it
(token lifetime, refresh-token rotation, revocation) and inspect what it was asked: every
`/token` request with its form fields, every `/introspect` call, every secret it issued.

Endpoints:
- `POST /token`, form-encoded, the client authenticated with HTTP Basic or the
  `client_id`/`client_secret` form fields:
  - `grant_type=authorization_code` (`code`, `code_verifier`, `redirect_uri`): the code is
    one the test registered with `add_authorization_code(code_challenge)`; the verifier must
    match its S256 challenge (RFC 7636). Answers an access and a refresh token.
  - `grant_type=refresh_token` (`refresh_token`): answers an access token (and a new
    refresh token when `rotate_refresh_tokens` is on); a revoked or unknown refresh token
    gets 400 `invalid_grant`.
  - `grant_type=client_credentials` (`scope`): an access token for `client_credentials_user`.
  Errors as RFC 6749 5.2: 400 `invalid_grant`/`invalid_request`/`unsupported_grant_type`,
  401 `invalid_client`.
- `POST /introspect`, form `token=...` (what Dovecot sends with `introspection_mode =
  post`): `{"active": true, "username": USER}` for a live token the stub issued, else
  `{"active": false}`. Dovecot reads `active` (must be `true`) and `username` (must be the
  IMAP user), as configured in `oauth2.conf.ext`.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

CLIENT_ID = "soar-imap-test-client"
"""The client registered by default."""
CLIENT_SECRET = "Cs-3b9d61f2-stub-client-secret"
"""Its secret (distinctive, so leak checks can look for it)."""


def random_token(prefix: str) -> str:
    """`prefix-` and 32 random hex digits."""
    return f"{prefix}-{secrets.token_hex(16)}"


def pkce_s256(verifier: str) -> str:
    """The S256 code challenge of a PKCE code verifier (RFC 7636 4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def pkce_pair() -> tuple[str, str]:
    """A fresh `(code_verifier, code_challenge)`."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_s256(verifier)


@dataclass
class TokenRequest:
    """One `POST /token` as the stub saw it, and what it answered."""

    grant_type: str
    params: dict[str, str]
    """Every form field (secrets included: this is a test stub)."""
    client_id: str | None
    client_auth: str
    """`"basic"`, `"form"` or `"none"`."""
    status: int = 200
    error: str | None = None
    access_token: str | None = None
    refresh_token: str | None = None


@dataclass(frozen=True)
class Introspection:
    """One `POST /introspect` and whether the token was active."""

    token: str
    active: bool


@dataclass
class _AccessToken:
    user: str
    expires_at: float
    revoked: bool = False


@dataclass
class _RefreshToken:
    user: str
    scope: str
    revoked: bool = False


@dataclass
class _Code:
    client_id: str
    challenge: str
    redirect_uri: str | None
    scope: str
    user: str
    used: bool = False


@dataclass
class HttpReply:
    """An HTTP response as a test sees it."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class _Error(Exception):
    """An OAuth error answer (RFC 6749 5.2)."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description


class OAuthStub:
    """The provider. Use it as a context manager, or `start()`/`stop()`.

    Knobs (plain attributes, read at each request): `expires_in` (seconds; the access
    tokens issued from then on also stop introspecting as active after that long),
    `rotate_refresh_tokens`, `client_credentials_user`.
    """

    def __init__(self, *, expires_in: int = 3600, user: str = "soc") -> None:
        """`user` is who client-credentials tokens introspect as (the Dovecot user)."""
        self.expires_in = expires_in
        self.rotate_refresh_tokens = False
        self.client_credentials_user = user
        self._lock = threading.Lock()
        self._clients: dict[str, str | None] = {CLIENT_ID: CLIENT_SECRET}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self._codes: dict[str, _Code] = {}
        self._token_requests: list[TokenRequest] = []
        self._introspections: list[Introspection] = []
        self._secrets: list[str] = [CLIENT_SECRET]
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- life cycle --------------------------------------------------------------------

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.stub = self
        self._server = server
        # A short poll interval: shutdown() waits up to one interval (default 0.5 s).
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="oauth-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the OAuth stub is not running")
        return int(self._server.server_address[1])

    def url(self, path: str) -> str:
        """`http://127.0.0.1:PORT{path}`."""
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def token_url(self) -> str:
        return self.url("/token")

    @property
    def introspection_url(self) -> str:
        """For `Dovecot(introspection_url=...)`."""
        return self.url("/introspect")

    # ---- set-up ------------------------------------------------------------------------

    def add_client(self, client_id: str, secret: str | None) -> None:
        """Register a client; `secret=None` makes it public (no client secret checked)."""
        with self._lock:
            self._clients[client_id] = secret
            if secret is not None:
                self._secrets.append(secret)

    def add_authorization_code(
        self,
        code_challenge: str,
        *,
        user: str = "soc",
        client_id: str = CLIENT_ID,
        redirect_uri: str | None = None,
        scope: str = "",
        code: str | None = None,
    ) -> str:
        """Register an authorization code, as if `user` had consented: the code (given or
        random). Its exchange must carry the verifier of `code_challenge` (S256) and, when
        `redirect_uri` is given, the same `redirect_uri`. A code works once."""
        code = code or random_token("code")
        with self._lock:
            self._codes[code] = _Code(client_id, code_challenge, redirect_uri, scope, user)
            self._secrets.append(code)
        return code

    def add_refresh_token(self, token: str, user: str = "soc", scope: str = "") -> None:
        """Accept `token` as a refresh token of `user`."""
        with self._lock:
            self._refresh[token] = _RefreshToken(user, scope)
            self._secrets.append(token)

    def new_refresh_token(self, user: str = "soc", scope: str = "") -> str:
        """Issue a fresh refresh token (`rt-<hex>`) for `user`."""
        token = random_token("rt")
        self.add_refresh_token(token, user, scope)
        return token

    def new_access_token(self, user: str = "soc") -> str:
        """Issue an access token (`at-<hex>`) for `user` directly, as if a grant had run."""
        with self._lock:
            return self._issue_access(user)

    def revoke_access_token(self, token: str) -> None:
        """Introspection says inactive from now on, though the client thinks it valid."""
        with self._lock:
            if token in self._access:
                self._access[token].revoked = True

    def revoke_access_tokens(self) -> None:
        """Revoke every access token issued so far."""
        with self._lock:
            for token in self._access.values():
                token.revoked = True

    def revoke_refresh_token(self, token: str) -> None:
        """Refresh grants with `token` get 400 `invalid_grant` from now on."""
        with self._lock:
            if token in self._refresh:
                self._refresh[token].revoked = True

    def revoke_refresh_tokens(self) -> None:
        """Revoke every refresh token known so far."""
        with self._lock:
            for token in self._refresh.values():
                token.revoked = True

    # ---- inspection --------------------------------------------------------------------

    @property
    def token_requests(self) -> list[TokenRequest]:
        """Every `/token` request so far (a copy)."""
        with self._lock:
            return list(self._token_requests)

    def token_request_count(self, grant_type: str) -> int:
        return sum(r.grant_type == grant_type for r in self.token_requests)

    @property
    def introspections(self) -> list[Introspection]:
        """Every `/introspect` call so far (a copy)."""
        with self._lock:
            return list(self._introspections)

    @property
    def access_tokens(self) -> list[str]:
        """Every access token issued so far."""
        with self._lock:
            return list(self._access)

    @property
    def secrets(self) -> list[str]:
        """Every secret the stub knows: client secrets, codes, refresh and access tokens
        (for checking that none leaks into output or files)."""
        with self._lock:
            return list(self._secrets)

    # ---- the endpoints (called with the lock held) ---------------------------------------

    def _issue_access(self, user: str) -> str:
        token = random_token("at")
        self._access[token] = _AccessToken(user, time.monotonic() + self.expires_in)
        self._secrets.append(token)
        return token

    def _issue_refresh(self, user: str, scope: str) -> str:
        token = random_token("rt")
        self._refresh[token] = _RefreshToken(user, scope)
        self._secrets.append(token)
        return token

    def _introspect(self, token: str) -> dict[str, Any]:
        entry = self._access.get(token)
        active = entry is not None and not entry.revoked and time.monotonic() < entry.expires_at
        self._introspections.append(Introspection(token, active))
        if entry is None or not active:
            return {"active": False}
        return {"active": True, "username": entry.user}

    def _token(
        self, params: dict[str, str], basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any]]:
        client_id: str | None
        secret: str | None
        if basic is not None:
            client_id, secret, how = basic[0], basic[1], "basic"
        elif "client_id" in params:
            client_id, secret, how = params["client_id"], params.get("client_secret"), "form"
        else:
            client_id, secret, how = None, None, "none"
        grant_type = params.get("grant_type", "")
        record = TokenRequest(grant_type, dict(params), client_id, how)
        self._token_requests.append(record)
        try:
            body = self._grant(grant_type, params, client_id, secret)
        except _Error as error:
            record.status, record.error = error.status, error.error
            return error.status, {"error": error.error, "error_description": error.description}
        record.access_token = body.get("access_token")
        record.refresh_token = body.get("refresh_token")
        return 200, body

    def _grant(
        self, grant_type: str, params: dict[str, str], client_id: str | None, secret: str | None
    ) -> dict[str, Any]:
        if client_id is None:
            raise _Error(401, "invalid_client", "client authentication required")
        if client_id not in self._clients:
            raise _Error(401, "invalid_client", "unknown client")
        expected = self._clients[client_id]
        if expected is not None and secret != expected:
            raise _Error(401, "invalid_client", "wrong client secret")
        body: dict[str, Any] = {"token_type": "Bearer", "expires_in": self.expires_in}
        if grant_type == "refresh_token":
            return body | self._refresh_grant(params)
        if grant_type == "client_credentials":
            user = self.client_credentials_user
            return body | {
                "access_token": self._issue_access(user),
                "scope": params.get("scope", ""),
            }
        if grant_type == "authorization_code":
            return body | self._code_grant(params, client_id)
        if not grant_type:
            raise _Error(400, "invalid_request", "missing grant_type")
        raise _Error(400, "unsupported_grant_type", f"grant_type {grant_type} unsupported")

    def _refresh_grant(self, params: dict[str, str]) -> dict[str, Any]:
        refresh = self._refresh.get(params.get("refresh_token", ""))
        if refresh is None:
            raise _Error(400, "invalid_grant", "unknown refresh token")
        if refresh.revoked:
            # Google's wording for a revoked or expired refresh token.
            raise _Error(400, "invalid_grant", "Token has been expired or revoked.")
        scope = params.get("scope", refresh.scope)
        body = {"access_token": self._issue_access(refresh.user), "scope": scope}
        if self.rotate_refresh_tokens:
            # The old refresh token stays valid, as with most providers.
            body["refresh_token"] = self._issue_refresh(refresh.user, scope)
        return body

    def _code_grant(self, params: dict[str, str], client_id: str) -> dict[str, Any]:
        code = self._codes.get(params.get("code", ""))
        if code is None:
            raise _Error(400, "invalid_grant", "unknown authorization code")
        if code.used:
            raise _Error(400, "invalid_grant", "authorization code already used")
        # Spent even when the exchange fails, as RFC 6749 4.1.2 wants.
        code.used = True
        if code.client_id != client_id:
            raise _Error(400, "invalid_grant", "code issued to another client")
        if code.redirect_uri is not None and params.get("redirect_uri") != code.redirect_uri:
            raise _Error(400, "invalid_grant", "redirect_uri does not match")
        verifier = params.get("code_verifier", "")
        if not verifier or pkce_s256(verifier) != code.challenge:
            raise _Error(400, "invalid_grant", "PKCE verification failed")
        return {
            "access_token": self._issue_access(code.user),
            "refresh_token": self._issue_refresh(code.user, code.scope),
            "scope": code.scope,
        }


# ---- HTTP plumbing ---------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    # Handler threads must not keep the test process alive.
    daemon_threads = True
    stub: OAuthStub


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the stub records requests itself, and stderr is the tests' to read."""

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="stub"')
        self.send_header("Content-Length", str(len(data)))
        # One request per connection keeps the server simple for every client.
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", errors="replace")
        return dict(urllib.parse.parse_qsl(body, keep_blank_values=True))

    def _basic(self) -> tuple[str, str] | None:
        """Client id and secret from `Authorization: Basic`, form-decoded as RFC 6749
        2.3.1 says they are encoded."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        try:
            pair = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        client_id, _, secret = pair.partition(":")
        return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)

    def do_POST(self) -> None:
        stub = self.server.stub
        path = urllib.parse.urlsplit(self.path).path
        if path == "/token":
            form, basic = self._form(), self._basic()
            with stub._lock:
                status, body = stub._token(form, basic)
            self._reply(status, body)
        elif path == "/introspect":
            token = self._form().get("token", "")
            if not token and self.headers.get("Authorization", "").startswith("Bearer "):
                token = self.headers["Authorization"][7:].strip()
            with stub._lock:
                answer = stub._introspect(token)
            self._reply(200, answer)
        else:
            self._reply(404, {"error": "not_found"})

    def do_GET(self) -> None:
        self._reply(405 if self.path.startswith(("/token", "/introspect")) else 404, {})


# ---- a tiny client for the tests --------------------------------------------------------


def post_form(url: str, form: dict[str, str], basic: tuple[str, str] | None = None) -> HttpReply:
    """`POST url` with a form body and optional Basic client authentication; 4xx and 5xx
    answers are returned, not raised."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic is not None:
        pair = f"{urllib.parse.quote_plus(basic[0])}:{urllib.parse.quote_plus(basic[1])}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode(), headers=headers, method="POST"
    )
    # No proxy from the environment for a loopback URL.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=30) as response:
            return HttpReply(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        with error:
            return HttpReply(error.code, error.read().decode(), dict(error.headers))
