"""The binary's stateless `state`, kept in SOAR: the poll position in the asset's
`ingest_state`, OAuth tokens in its encrypted `auth_state`, nothing on the SOAR host.

- `ingest_state["soar_imap"]` holds the binary's state without its `secrets` (positions
  per folder and UIDVALIDITY, the queue, failed UIDs, the ledger of ingested mail).
- `auth_state["oauth"]` holds the SDK's OAuth state (`soar_sdk.auth`: token, pending
  authorization session, client id). The binary's token blob (`state.secrets.oauth_token`)
  is converted to and from its `token`, so the webhook's code exchange (SDK) and the
  binary's refreshes share one token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

from .binary import JSON

#: The binary's state inside `ingest_state`.
INGEST_KEY = "soar_imap"
#: The SDK's OAuth state inside `auth_state`.
OAUTH_KEY = "oauth"
#: The binary's secret key for the token blob.
TOKEN_SECRET = "oauth_token"  # noqa: S105 (a key name, not a secret)
#: Keys the reference app (IMAP 3.x/4.x) kept at the top of the asset's state file: the
#: binary takes its poll position over from them.
LEGACY_KEYS = ("first_run", "next_muid", "pending_email_uids")
#: Fields of the binary's token blob kept beside the SDK's token fields.
BLOB_EXTRAS = ("obtained_at", "token_url", "grant", "config_refresh_token_sha256")


def request_state(
    ingest: Mapping[str, Any] | None,
    legacy: Mapping[str, Any] | None,
    auth: Mapping[str, Any] | None,
) -> JSON:
    """The `state` to send: the stored one (or, on the first run after an upgrade from the
    reference app, its poll position), with the stored tokens as secrets."""
    stored = (ingest or {}).get(INGEST_KEY)
    state: JSON = dict(stored) if isinstance(stored, Mapping) else {}
    if not state and legacy:
        state = {key: legacy[key] for key in LEGACY_KEYS if key in legacy}
        # 3.3.x kept the token response in clear; later versions encrypted it with a key
        # only the reference had: those assets sign in again with test connectivity.
        token = legacy.get("oauth_token")
        if isinstance(token, Mapping) and not legacy.get("is_encrypted"):
            state["oauth_token"] = dict(token)
    blob = token_blob((auth or {}).get(OAUTH_KEY))
    if blob is not None:
        state["secrets"] = {TOKEN_SECRET: blob}
    return state


def store_returned(
    returned: Mapping[str, Any] | None,
    ingest: MutableMapping[str, Any] | None,
    auth: MutableMapping[str, Any],
) -> None:
    """Keep what a run handed back: its state in `ingest` (when given: runs that must not
    move the poll position pass None) and its tokens in `auth`."""
    if not isinstance(returned, Mapping):
        return
    state = dict(returned)
    secrets = state.pop("secrets", None)
    if ingest is not None:
        ingest[INGEST_KEY] = state
    blob = secrets.get(TOKEN_SECRET) if isinstance(secrets, Mapping) else None
    if isinstance(blob, str):
        previous = auth.get(OAUTH_KEY)
        updated = oauth_from_blob(blob, previous if isinstance(previous, Mapping) else {})
        if updated != previous:
            auth[OAUTH_KEY] = updated


def token_blob(oauth: object) -> str | None:
    """The binary's token blob (JSON text) for the SDK's OAuth state, or None."""
    if not isinstance(oauth, Mapping):
        return None
    token = oauth.get("token")
    if not isinstance(token, Mapping):
        return None
    expires_at = token.get("expires_at")
    blob: JSON = {
        "access_token": token.get("access_token") or None,
        "refresh_token": token.get("refresh_token") or None,
        "expires_at": int(expires_at) if isinstance(expires_at, int | float) else None,
        "scope": token.get("scope"),
        "client_id": oauth.get("client_id"),
    }
    blob.update({key: token.get(key) for key in BLOB_EXTRAS})
    return json.dumps({key: value for key, value in blob.items() if value is not None})


def oauth_from_blob(blob: str, previous: Mapping[str, Any]) -> JSON:
    """The SDK's OAuth state holding the binary's token blob, keeping any pending
    authorization session of `previous`."""
    try:
        parsed = json.loads(blob)
    except ValueError:
        return dict(previous)
    if not isinstance(parsed, Mapping):
        return dict(previous)
    token: JSON = {
        # The SDK's model needs a string; the binary drops a token the server refused.
        "access_token": parsed.get("access_token") or "",
        "token_type": "Bearer",
        "refresh_token": parsed.get("refresh_token"),
        "expires_at": parsed.get("expires_at"),
        "scope": parsed.get("scope"),
    }
    token.update({key: parsed.get(key) for key in BLOB_EXTRAS})
    oauth = dict(previous)
    oauth["token"] = {key: value for key, value in token.items() if value is not None}
    client_id = parsed.get("client_id") or previous.get("client_id")
    if client_id:
        oauth["client_id"] = client_id
    return oauth


def has_refresh_token(oauth: object, client_id: str | None) -> bool:
    """Whether the SDK's OAuth state holds a refresh token issued to `client_id`."""
    if not isinstance(oauth, Mapping):
        return False
    token = oauth.get("token")
    if not isinstance(token, Mapping) or not token.get("refresh_token"):
        return False
    stored_client = oauth.get("client_id")
    return stored_client is None or stored_client == client_id
