"""OAuth inside SOAR: the administrator's sign-in, through the app's webhook.

With `auth_type` OAuth and the `refresh_token` grant, an asset needs a refresh token
before the binary can log in. Test connectivity, finding none, writes the authorization
link (PKCE S256, a random `state`) to its progress and waits; the administrator opens it
and signs in; the provider redirects to this app's webhook, which checks `state`,
exchanges the code with the PKCE verifier and stores the tokens in the asset's encrypted
`auth_state`. Test connectivity sees them and goes on. From then on the binary gets the
tokens in its request and refreshes them itself; whatever it obtains comes back into
`auth_state` (`state.py`).

Microsoft 365 app-only (`oauth_grant: client_credentials`) and a configured
`refresh_token` need no browser: the binary obtains its tokens directly.
"""

from __future__ import annotations

import json
import time
from typing import Any

from soar_sdk.auth import OAuthClientError, SOARAssetOAuthClient
from soar_sdk.auth.models import OAuthConfig
from soar_sdk.exceptions import ActionFailure
from soar_sdk.logging import getLogger
from soar_sdk.webhooks.models import WebhookRequest, WebhookResponse

from .asset import Asset
from .state import OAUTH_KEY, has_refresh_token

logger = getLogger()

#: The webhook route the provider redirects to: register
#: `https://<soar>:<webhooks port>/webhook/<app dir>/<asset id>/oauth` with the client.
CALLBACK_ROUTE = "oauth"
#: Where the redirect URI of a pending sign-in is kept (the code exchange must repeat it).
PENDING_KEY = "soar_imap_oauth"
#: How long test connectivity waits for the administrator, as the reference did.
WAIT_SECS = 300
POLL_SECS = 3


def interactive(asset: Asset) -> bool:
    """Whether the asset's OAuth tokens come from an administrator's sign-in (not from
    Basic auth or the app-only client credentials grant)."""
    return asset.auth_type == "OAuth" and asset.oauth_grant != "client_credentials"


def needs_sign_in(asset: Asset) -> bool:
    """Whether the asset needs an administrator's sign-in before the binary can log in."""
    if not interactive(asset):
        return False
    if asset.refresh_token:
        return False
    return not has_refresh_token(asset.auth_state.get(OAUTH_KEY), asset.client_id)


def scope_list(scopes: object) -> list[str]:
    """`scopes` as the asset has it: a JSON list, or space-separated."""
    if not isinstance(scopes, str) or not scopes.strip():
        return []
    try:
        parsed = json.loads(scopes)
    except ValueError:
        return scopes.split()
    if isinstance(parsed, list):
        return [str(scope) for scope in parsed]
    return scopes.split()


def client(asset: Asset, redirect_uri: str | None) -> SOARAssetOAuthClient:
    """The SDK's OAuth client for the asset, keeping its state in `auth_state`."""
    if not asset.client_id:
        raise ActionFailure("config.client_id is required with auth_type OAuth")
    config = OAuthConfig(
        client_id=str(asset.client_id),
        client_secret=str(asset.client_secret) if asset.client_secret else None,
        authorization_endpoint=str(asset.auth_url),
        token_endpoint=str(asset.token_url),
        redirect_uri=redirect_uri,
        scope=scope_list(asset.scopes),
    )
    return SOARAssetOAuthClient(config, asset.auth_state)


def sign_in(
    asset: Asset,
    asset_id: str,
    redirect_uri: str,
) -> None:
    """Show the authorization link and wait (`WAIT_SECS`, looking every `POLL_SECS`)
    until the webhook has stored the tokens."""
    wait_secs, poll_secs = WAIT_SECS, POLL_SECS
    oauth_client = client(asset, redirect_uri)
    try:
        # Google returns a refresh token only for offline access with a fresh consent;
        # Microsoft ignores access_type and honours prompt=consent.
        url, session = oauth_client.create_authorization_url(
            asset_id, use_pkce=True, extra_params={"access_type": "offline", "prompt": "consent"}
        )
    except OAuthClientError as error:
        raise ActionFailure(f"cannot start the OAuth sign-in: {error}") from error
    asset.auth_state[PENDING_KEY] = {"redirect_uri": redirect_uri, "session_id": session.session_id}
    logger.progress(f"Redirect URI: {redirect_uri}")
    logger.progress("To continue, open this link in a new tab in your browser and sign in:")
    logger.progress(url)
    deadline = time.monotonic() + wait_secs
    while time.monotonic() < deadline:
        time.sleep(poll_secs)
        state = asset.auth_state.get_all(force_reload=True)
        outcome = _outcome(state, session.session_id, asset.client_id)
        if outcome == "signed in":
            logger.progress("Signed in: tokens stored in the asset's auth state")
            return
        if outcome is not None:
            raise ActionFailure(outcome)
    oauth_client.clear_session()
    raise ActionFailure(
        f"no sign-in within {int(wait_secs)} s:"
        " run Test Connectivity again and open the link it shows"
    )


def _outcome(state: dict[str, Any], session_id: str, client_id: object) -> str | None:
    """ "signed in", a failure message, or None while the sign-in is pending."""
    oauth = state.get(OAUTH_KEY)
    session = oauth.get("session") if isinstance(oauth, dict) else None
    if isinstance(session, dict) and session.get("session_id") == session_id:
        if session.get("error"):
            reason = session.get("error_description") or session["error"]
            return f"the OAuth sign-in failed: {reason}"
        return None
    # The webhook clears the session once it has exchanged the code.
    if has_refresh_token(oauth, str(client_id) if client_id else None):
        return "signed in"
    return None


def callback(request: WebhookRequest[Any]) -> WebhookResponse:
    """The provider's redirect: check `state`, exchange the code (PKCE), store the tokens."""
    query = {key: values[0] if values else "" for key, values in request.query.items()}
    asset = request.asset
    pending = asset.auth_state.get(PENDING_KEY) or {}
    oauth_client = client(asset, pending.get("redirect_uri"))
    session = oauth_client.get_pending_session()
    if session is None:
        return WebhookResponse.text_response(
            "No sign-in is pending for this asset:"
            " run Test Connectivity and open the link it shows.",
            status_code=400,
        )
    if "error" in query:
        reason = query.get("error_description") or query["error"]
        oauth_client.complete_session(
            session.session_id,
            error=query["error"] or "error",
            error_description=query.get("error_description"),
        )
        return WebhookResponse.text_response(f"Sign-in failed: {reason}", status_code=400)
    try:
        token = oauth_client.handle_authorization_callback(query)
    except OAuthClientError as error:
        # A wrong state or a refused code: the pending session stays for a genuine one.
        logger.error(f"OAuth callback refused: {error}")
        return WebhookResponse.text_response(f"Sign-in failed: {error}", status_code=400)
    # splunk-soar-sdk 7.0.3 stores the new token, then writes back the OAuth state it read
    # before the exchange, which drops the token: store it (and clear the session) here.
    asset.auth_state[OAUTH_KEY] = {
        "token": token.model_dump(mode="json", exclude_none=True),
        "client_id": asset.client_id,
    }
    if PENDING_KEY in asset.auth_state:
        del asset.auth_state[PENDING_KEY]
    return WebhookResponse.text_response(
        "Signed in. You can close this page; Test Connectivity goes on.", status_code=200
    )
