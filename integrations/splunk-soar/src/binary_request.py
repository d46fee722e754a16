"""The binary's request for one action run in SOAR, and its failures in SOAR's words."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from soar_sdk.abstract import SOARClient

from .asset import Asset
from .binary import JSON

#: The binary's hints for a person at a shell, and what a SOAR administrator does instead.
SOAR_HINTS = (
    (
        "run `soar-imap oauth login` again or set config.refresh_token",
        "run Test Connectivity on the asset to sign in again, or set its refresh_token",
    ),
    (
        "set config.refresh_token or run `soar-imap oauth login`",
        "run Test Connectivity on the asset to sign in, or set its refresh_token",
    ),
)


def build(
    identifier: str,
    asset: Asset,
    soar: SOARClient[Any],
    platform_config: Mapping[str, Any],
    *,
    parameters: list[JSON],
    state: JSON,
    vault_dir: Path | None = None,
) -> JSON:
    """A stateless request: the state comes from SOAR and goes back to it."""
    config = asset.binary_config()
    # The container label the asset's ingest settings ask for (platform keys).
    ingest = platform_config.get("ingest")
    if isinstance(ingest, Mapping) and ingest.get("container_label"):
        config["ingest"] = {"container_label": ingest["container_label"]}
    request: JSON = {
        "identifier": identifier,
        "asset_id": str(soar.get_asset_id() or "default"),
        "config": config,
        "parameters": parameters,
        "state": state,
    }
    if vault_dir is not None:
        request["vault_dir"] = str(vault_dir)
    return request


def in_soar_terms(message: str) -> str:
    """The binary's message with its shell hints replaced by what to do in SOAR."""
    for shell, soar in SOAR_HINTS:
        message = message.replace(shell, soar)
    return message
