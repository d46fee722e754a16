"""One run of the binary for an action other than `on poll`: stateless, with the asset's
tokens in and out of `auth_state`, and its failure as the action's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from soar_sdk.abstract import SOARClient
from soar_sdk.actions_manager import ActionsManager
from soar_sdk.exceptions import ActionFailure

from . import binary, binary_request, state
from .asset import Asset
from .binary import JSON


def run_action(
    identifier: str,
    asset: Asset,
    soar: SOARClient[Any],
    actions: ActionsManager,
    parameters: list[JSON],
    *,
    vault_dir: Path | None = None,
    check: bool = True,
) -> tuple[list[JSON], binary.Outcome]:
    """Run the binary; its containers and outcome. Tokens it obtained are kept whatever the
    outcome; an incomplete run, or (with `check`) a failed one, fails the action with the
    binary's message."""
    request = binary_request.build(
        identifier,
        asset,
        soar,
        actions.get_config(),
        parameters=parameters,
        # No poll position or ledger: these actions must not move the position, and each
        # answers for the one email asked about.
        state=state.request_state(None, None, asset.auth_state.get_all()),
        vault_dir=vault_dir,
    )
    try:
        containers, outcome = binary.Run(request).all()
    except binary.BinaryError as error:
        raise ActionFailure(str(error)) from error
    state.store_returned(outcome.response.get("state"), None, asset.auth_state)
    if check and not outcome.succeeded:
        raise ActionFailure(binary_request.in_soar_terms(outcome.message))
    return containers, outcome


def first_data(outcome: binary.Outcome) -> JSON:
    """`action_results[0].data[0]` of a run, or {}."""
    results = outcome.response.get("action_results") or [{}]
    data = results[0].get("data") or [{}]
    first = data[0]
    return first if isinstance(first, dict) else {}
