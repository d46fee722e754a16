"""A container of the binary as SOAR objects: the SDK's Container and Artifacts, with
each attachment handed to the SOAR vault.

Everything the binary says about an email reaches SOAR: the container's name, SDI,
label, `run_automation` and `data` (`raw_email`, `raw_email_encoding`, `parse_warnings`)
as they are; each artifact's name, `cef`, `cef_types`, SDI and `run_automation`. The SDK's
models refuse unknown keys, so `found_in` (where an indicator outside the body was
found) goes into the artifact's cef as `foundIn`, where SOAR shows it and playbooks can
read it, and any other key they do not know goes into the object's `data`. The binary's
own container id and its `duplicate` and `redelivered` flags are connector bookkeeping
with no meaning in SOAR (whose SDIs absorb a copy); they are not passed on.

A Vault Artifact is finished once its file is in the SOAR vault: `vaultId` and `cs6`
become the id the vault returns, `container_id` the SOAR container's, and its SDI is
computed as the reference app computes it (md5 of the artifact's JSON with sorted keys,
from those values), so re-ingesting the same email into its container adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from soar_sdk.abstract import SOARClient
from soar_sdk.actions_manager import ActionsManager
from soar_sdk.exceptions import ActionFailure
from soar_sdk.logging import getLogger
from soar_sdk.models.artifact import Artifact
from soar_sdk.models.container import Container

from .binary import JSON

logger = getLogger()


VAULT_ARTIFACT = "Vault Artifact"
#: Container keys of the binary that are not passed on (see the module's docs).
BOOKKEEPING = frozenset({"id", "duplicate", "redelivered", "artifacts"})


def to_container(container: JSON) -> Container:
    """The SDK Container for one of the binary's containers (without its artifacts). A key
    the SDK's model does not know goes into the container's data, never away."""
    fields: JSON = {}
    extra: JSON = {}
    for key, value in container.items():
        if key in BOOKKEEPING:
            continue
        (fields if key in Container.model_fields else extra)[key] = value
    if extra:
        fields["data"] = {**(fields.get("data") or {}), **extra}
    return Container.model_validate(fields)


def artifact_sdi(artifact: JSON) -> str:
    """The reference app's artifact SDI: md5 of Python's `json.dumps(sort_keys=True)` of
    the artifact without its SDI."""
    body = {key: value for key, value in artifact.items() if key != "source_data_identifier"}
    return hashlib.md5(json.dumps(body, sort_keys=True).encode(), usedforsecurity=False).hexdigest()


def to_artifact(artifact: JSON, container_id: int | None) -> Artifact:
    """The SDK Artifact for one of the binary's artifacts: `found_in` into its cef as
    `foundIn`; any other key the SDK's model does not know into its data."""
    fields: JSON = {}
    extra: JSON = {}
    for key, value in artifact.items():
        if key == "found_in":
            fields["cef"] = {**fields.get("cef", {}), "foundIn": value}
        elif key == "cef":
            fields["cef"] = {**value, **fields.get("cef", {})}
        elif key in Artifact.model_fields:
            fields[key] = value
        else:
            extra[key] = value
    if extra:
        fields["data"] = {**(fields.get("data") or {}), **extra}
    fields["container_id"] = container_id
    return Artifact.model_validate(fields)


def cap_artifacts(artifacts: list[JSON], limit: int | None) -> tuple[list[JSON], int]:
    """At most `limit` artifacts (Poll Now's "maximum artifacts"), in the binary's order,
    the last kept one running automation as the last one would have; and how many were
    left out."""
    if limit is None or limit <= 0 or len(artifacts) <= limit:
        return artifacts, 0
    kept = [dict(artifact) for artifact in artifacts[:limit]]
    if not any(artifact.get("run_automation") for artifact in kept):
        kept[-1]["run_automation"] = True
    return kept, len(artifacts) - limit


class VaultFiles:
    """The directory the binary writes a run's attachments to (its `vault_dir`), inside
    SOAR's vault temp dir so the vault may take the files from there; removed after."""

    def __init__(self, soar: SOARClient[Any]) -> None:
        base = Path(soar.vault.get_vault_tmp_dir())
        if not base.is_dir():
            # Offline (no SOAR): the SDK's fake vault names a directory that is not there.
            base = Path(tempfile.gettempdir())
        self.path = Path(tempfile.mkdtemp(prefix="soar-imap-", dir=base))
        self._handed = 0

    def __enter__(self) -> VaultFiles:
        return self

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def file(self, sha1: str) -> Path:
        """Where the binary wrote the attachment with this SHA-1."""
        return self.path / sha1[:2] / sha1

    def hand_over(self, sha1: str) -> Path:
        """A name of its own for one vault add: the vault may move the file it is given,
        and one attachment can belong to several containers."""
        source = self.file(sha1)
        if not source.is_file():
            raise ActionFailure(f"the binary named attachment {sha1} but wrote no file for it")
        self._handed += 1
        staged = self.path / "handed" / f"{self._handed}-{sha1}"
        staged.parent.mkdir(exist_ok=True)
        try:
            os.link(source, staged)
        except OSError:
            shutil.copyfile(source, staged)
        return staged


def vault_and_artifacts(
    container: JSON,
    container_id: int,
    soar: SOARClient[Any],
    files: VaultFiles,
    artifact_limit: int | None = None,
) -> list[Artifact]:
    """After the container is saved as `container_id`: its attachments into the vault,
    and its artifacts as SDK Artifacts."""
    artifacts, left_out = cap_artifacts(list(container.get("artifacts") or []), artifact_limit)
    if left_out:
        logger.progress(
            f"Container {container.get('source_data_identifier')}: {left_out} of"
            f" {len(artifacts) + left_out} artifacts left out (maximum artifacts {artifact_limit})"
        )
    saved: list[Artifact] = []
    for artifact in artifacts:
        if artifact.get("name") == VAULT_ARTIFACT:
            saved.append(_vault_artifact(artifact, container_id, soar, files))
        else:
            saved.append(to_artifact(artifact, container_id))
    return saved


def _vault_artifact(
    artifact: JSON, container_id: int, soar: SOARClient[Any], files: VaultFiles
) -> Artifact:
    cef = dict(artifact.get("cef") or {})
    sha1 = str(cef.get("vaultId", ""))
    name = str(cef.get("fileName") or sha1)
    try:
        vault_id = soar.vault.add_attachment(container_id, str(files.hand_over(sha1)), name)
    except ActionFailure:
        raise
    except Exception as error:
        raise ActionFailure(
            f"cannot add attachment {name!r} ({sha1}) to the vault of container {container_id}:"
            f" {error}"
        ) from error
    cef["vaultId"] = vault_id
    cef["cs6"] = vault_id
    finished = {key: value for key, value in artifact.items() if key != "source_data_identifier"}
    finished["cef"] = cef
    finished["container_id"] = container_id
    finished["source_data_identifier"] = artifact_sdi(finished)
    return to_artifact(finished, container_id)


def save_one(actions: ActionsManager, soar: SOARClient[Any], found: JSON, files: VaultFiles) -> int:
    """Save one container (get email or parse email with `ingest_email`) with its
    attachments and artifacts, through the connector calls `on poll` uses; its id. A
    container SOAR already has (same SDI) is reused, as the platform answers."""
    container = to_container(found)
    ok, message, container_id = actions.save_container(container.to_dict())
    if not ok and "duplicate container found" not in str(message).lower():
        raise ActionFailure(f"Failed to create container: {message}")
    if container_id is None:
        raise ActionFailure(f"SOAR gave no id for container {container.name!r}: {message}")
    artifacts = vault_and_artifacts(found, int(container_id), soar, files)
    if artifacts:
        saved, why, _ = actions.save_artifacts([a.to_dict() for a in artifacts])
        if not saved:
            raise ActionFailure(f"Failed to save artifacts: {why}")
    return int(container_id)
