"""`on poll`: the binary polls statelessly; SOAR keeps the position and gets the containers.

The poll position comes from the asset's `ingest_state` and goes back to it, so nothing
about the mailbox lives on the SOAR host and any worker of a cluster can run the next
poll. Containers are handed to SOAR as the binary makes them. The position SOAR keeps
always covers exactly what SOAR has:

- a poll that completes stores the binary's new state with the SDK's ingest transaction,
  after the last artifacts are saved;
- a poll the binary ends in failure (the server went away mid-poll) has saved every
  container it returned, artifacts included, so the state the binary handed back (which
  covers exactly those) is stored before the failure is reported;
- a poll that fails in SOAR (a save or vault error) or whose binary died stores nothing:
  the next poll starts from the previous position and SOAR's source data identifiers
  absorb what is delivered twice.

Poll Now (`container_count` other than 4294967295) does not move the position, and
re-delivers emails SOAR may already have, as the reference does: it runs with no stored
ledger, so deleting a container and polling again brings it back. Its `artifact_count`
caps the artifacts saved per container.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from soar_sdk.abstract import SOARClient
from soar_sdk.actions_manager import ActionsManager
from soar_sdk.exceptions import ActionFailure
from soar_sdk.logging import getLogger
from soar_sdk.models.artifact import Artifact
from soar_sdk.models.container import Container
from soar_sdk.params import MAX_COUNT_VALUE, OnPollParams

from . import binary, binary_request, state
from .asset import Asset
from .ingest import VaultFiles, to_container, vault_and_artifacts

logger = getLogger()


def poll(
    params: OnPollParams, soar: SOARClient[Any], asset: Asset, actions: ActionsManager
) -> Iterator[Container | Artifact]:
    """Run one poll, yielding each container and then its artifacts."""
    manual = params.is_manual_poll()
    ingest_state = asset.ingest_state
    auth = asset.auth_state.get_all()
    if manual:
        request_state = state.request_state(None, None, auth)
        count = int(params.container_count or 0)
        artifact_limit = int(params.artifact_count) if params.artifact_count else None
    else:
        request_state = state.request_state(ingest_state.get_all(), actions.load_state(), auth)
        count, artifact_limit = MAX_COUNT_VALUE, None
    parameter = {"container_count": count, "artifact_count": MAX_COUNT_VALUE}
    with VaultFiles(soar) as files:
        request = binary_request.build(
            "on_poll",
            asset,
            soar,
            actions.get_config(),
            parameters=[parameter],
            state=request_state,
            vault_dir=files.path,
        )
        run = binary.Run(request)
        held: list[Artifact] = []
        try:
            for found in run:
                # The previous container's artifacts go out before the next container:
                # the SDK saves them when it saves that container.
                yield from held
                container = to_container(found)
                yield container
                if container.container_id is None:
                    raise ActionFailure(f"SOAR gave no id for container {container.name!r}")
                held = vault_and_artifacts(
                    found, int(container.container_id), soar, files, artifact_limit
                )
        except binary.BinaryError as error:
            raise ActionFailure(str(error)) from error
        outcome = run.outcome
        if outcome is None:
            raise ActionFailure("the soar-imap binary ended without a response")
        returned = outcome.response.get("state")
        position = None if manual else ingest_state
        if outcome.succeeded:
            yield from held
            state.store_returned(returned, position, asset.auth_state)
            _report(outcome.response, manual)
            return
        if outcome.containers:
            # Failed midway: SOAR has every container returned so far; keep the position
            # that covers them, then report the failure.
            if held:
                _save_now(actions, held)
            state.store_returned(returned, position, asset.auth_state)
            if ingest_state.in_transaction:
                ingest_state.commit()
        else:
            # Nothing delivered: only tokens may have changed (a refresh before the failure).
            state.store_returned(returned, None, asset.auth_state)
        raise ActionFailure(binary_request.in_soar_terms(outcome.message))


def _save_now(actions: ActionsManager, artifacts: list[Artifact]) -> None:
    """Save artifacts at once, as the SDK does when it flushes them."""
    ok, message, _ = actions.save_artifacts([artifact.to_dict() for artifact in artifacts])
    if not ok:
        raise ActionFailure(f"Failed to save artifacts: {message}")


def _report(response: dict[str, Any], manual: bool) -> None:
    """The binary's summary as progress lines: what was found, ingested, skipped, failed."""
    results = response.get("action_results") or [{}]
    summary = results[0].get("summary") or {}
    if summary:
        kind = "Poll Now" if manual else "Poll"
        failed = summary.get("failed") or []
        logger.progress(
            f"{kind}: {summary.get('emails_found', 0)} emails found,"
            f" {summary.get('emails_ingested', 0)} ingested,"
            f" {summary.get('duplicates_skipped', 0)} already ingested, {len(failed)} failed"
        )
        for failure in failed:
            logger.progress(f"  UID {failure.get('uid')}: {failure.get('reason')}")
        done = summary.get("after_ingest_done") or 0
        if done:
            # The mail of containers SOAR saved in earlier polls (after_ingest).
            logger.progress(f"after_ingest: {done} emails of earlier polls handled")
