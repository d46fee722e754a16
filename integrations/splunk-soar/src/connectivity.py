"""`test connectivity`: sign in first when OAuth needs it, then the binary's own test
(connect, log in, list folders, EXAMINE the folder), its diagnostic report as progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from soar_sdk.abstract import SOARClient
from soar_sdk.actions_manager import ActionsManager
from soar_sdk.exceptions import ActionFailure
from soar_sdk.logging import getLogger

from . import binary_request, oauth, state
from .asset import Asset
from .runner import first_data, run_action

logger = getLogger()

#: The binary's words when the provider refused the stored refresh token.
REFRESH_REJECTED = "the refresh token was rejected"


def test(
    asset: Asset, soar: SOARClient[Any], actions: ActionsManager, redirect_uri: Callable[[], str]
) -> None:
    """Pass, or raise ActionFailure with the failing step and the server's words."""
    if oauth.needs_sign_in(asset):
        oauth.sign_in(asset, str(soar.get_asset_id()), redirect_uri())
    _, outcome = run_action("test_asset_connectivity", asset, soar, actions, [{}], check=False)
    if not outcome.succeeded and REFRESH_REJECTED in outcome.message and oauth.interactive(asset):
        # Revoked or expired for good: sign in again, as the reference did every time.
        logger.progress(binary_request.in_soar_terms(outcome.message))
        _forget_token(asset)
        oauth.sign_in(asset, str(soar.get_asset_id()), redirect_uri())
        _, outcome = run_action("test_asset_connectivity", asset, soar, actions, [{}], check=False)
    if not outcome.succeeded:
        raise ActionFailure(binary_request.in_soar_terms(outcome.message))
    _report(first_data(outcome))
    logger.progress("Connectivity test passed")


def _forget_token(asset: Asset) -> None:
    oauth_state = asset.auth_state.get(state.OAUTH_KEY)
    if isinstance(oauth_state, dict):
        asset.auth_state[state.OAUTH_KEY] = {
            key: value for key, value in oauth_state.items() if key != "token"
        }


def _report(report: dict[str, Any]) -> None:
    """The diagnostic report in a few lines an administrator reads at a glance."""
    if not report:
        return
    where = f"{report.get('server')}:{report.get('port')}"
    tls = report.get("tls_protocol")
    logger.progress(f"Server {where}, {report.get('transport')}" + (f" ({tls})" if tls else ""))
    certificate = report.get("certificate")
    if isinstance(certificate, dict):
        logger.progress(
            f"Certificate {certificate.get('subject')}, issued by {certificate.get('issuer')},"
            f" valid until {certificate.get('not_after')}"
        )
    logger.progress(f"Logged in with {report.get('auth_mechanism')}")
    logger.progress(
        f"Folder {report.get('folder')!r}: {report.get('message_count')} messages,"
        f" UIDVALIDITY {report.get('uidvalidity')}, UIDNEXT {report.get('uidnext')}"
    )
