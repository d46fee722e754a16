"""SOAR, as far as an action run sees it, offline: the SDK's own fakes (no `phantom`
module here) with SOAR's save calls recorded.

`run_action` builds the input the platform hands an app exactly as the SDK's CLI does
(`AppCliRunner`), runs it through `app.handle`, and returns what SOAR would keep: the
action results, the containers, artifacts and vault files saved, and the asset state
(to hand to the next run, as SOAR does).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from soar_sdk.app_cli_runner import AppCliRunner
from soar_sdk.shims.phantom_common.encryption.encryption_manager_factory import (
    platform_encryption_backend,
)


@dataclass
class VaultFile:
    """One `vault.add_attachment` call."""

    vault_id: str
    container_id: int
    name: str
    data: bytes

    @property
    def sha1(self) -> str:
        return hashlib.sha1(self.data).hexdigest()


@dataclass
class Soar:
    """What SOAR holds across runs: containers by id (deduplicated by SDI, as the
    platform does), artifacts, vault files, and each asset's state."""

    vault_tmp: Path
    containers: dict[int, dict[str, Any]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    vault: list[VaultFile] = field(default_factory=list)
    asset_state: dict[str, Any] = field(default_factory=dict)
    save_container_calls: int = 0
    #: The next save_artifacts fails with this message (once).
    fail_next_artifacts: str | None = None

    def save_container(
        self, container: dict[str, Any], fail_on_duplicate: bool = False
    ) -> tuple[bool, str, int | None]:
        self.save_container_calls += 1
        sdi = container.get("source_data_identifier")
        for existing_id, existing in self.containers.items():
            if sdi and existing.get("source_data_identifier") == sdi:
                return True, "Duplicate container found", existing_id
        container_id = len(self.containers) + 101
        self.containers[container_id] = json.loads(json.dumps(container))
        return True, "Container saved successfully", container_id

    def save_artifacts(self, artifacts: list[dict[str, Any]]) -> tuple[bool, str, list[int]]:
        if self.fail_next_artifacts is not None:
            message, self.fail_next_artifacts = self.fail_next_artifacts, None
            return False, message, []
        ids = []
        for artifact in artifacts:
            key = (artifact.get("container_id"), artifact.get("source_data_identifier"))
            known = [
                n
                for n, a in enumerate(self.artifacts)
                if (a.get("container_id"), a.get("source_data_identifier")) == key
            ]
            if known:  # SOAR keeps one artifact per SDI in a container
                ids.append(known[0] + 1)
                continue
            self.artifacts.append(json.loads(json.dumps(artifact)))
            ids.append(len(self.artifacts))
        return True, "Artifacts saved successfully", ids

    def add_attachment(
        self,
        container_id: int,
        file_location: str,
        file_name: str,
        metadata: dict[str, str] | None = None,
    ) -> str:
        path = Path(file_location)
        assert path.is_relative_to(self.vault_tmp), f"{path} is outside the vault temp dir"
        data = path.read_bytes()
        # SOAR's own ids are opaque to the app: take any, never assume the SHA-1.
        vault_id = secrets.token_hex(20)
        self.vault.append(VaultFile(vault_id, container_id, file_name, data))
        return vault_id

    def artifacts_of(self, container_id: int) -> list[dict[str, Any]]:
        return [a for a in self.artifacts if a.get("container_id") == container_id]

    def container_by_sdi(self, sdi: str) -> tuple[int, dict[str, Any]]:
        for container_id, container in self.containers.items():
            if container.get("source_data_identifier") == sdi:
                return container_id, container
        raise KeyError(sdi)


@dataclass
class Result:
    """One action run as SOAR records it."""

    status: bool
    message: str
    data: list[dict[str, Any]]
    summary: dict[str, Any]
    printed: str


def run_action(
    app_module: ModuleType,
    soar: Soar,
    identifier: str,
    asset: dict[str, Any],
    params: dict[str, Any] | None,
    tmp: Path,
    *,
    asset_id: str = "7",
    capsys: Any = None,
    patch: Any = None,
) -> Result:
    """Run one action of the app module imported anew, as SOAR runs each action in a
    process of its own."""
    app = importlib.reload(app_module).app
    app.actions_manager.save_container = soar.save_container
    app.actions_manager.save_artifacts = soar.save_artifacts
    app.soar_client.vault.add_attachment = soar.add_attachment
    app.soar_client.vault.get_vault_tmp_dir = lambda: str(soar.vault_tmp)
    if patch is not None:
        patch(app)
    asset_file = tmp / f"asset-{identifier}.json"
    asset_file.write_text(json.dumps(asset))
    argv = ["action", identifier, "-a", str(asset_file)]
    if params is not None:
        params_file = tmp / f"params-{identifier}.json"
        params_file.write_text(json.dumps(params))
        argv += ["-p", str(params_file)]
    raw = json.loads(AppCliRunner(app).parse_args(argv).raw_input_data)
    # The CLI encrypts secrets for a random asset id, as SOAR does for the real one.
    for key in app.asset_cls.fields_requiring_decryption():
        if raw["config"].get(key):
            plain = platform_encryption_backend.decrypt(raw["config"][key], raw["asset_id"])
            raw["config"][key] = platform_encryption_backend.encrypt(plain, asset_id)
    raw["asset_id"] = asset_id
    raw["config"]["ingest"] = {"container_label": "email", "interval_mins": 60}
    app.actions_manager.save_state(json.loads(json.dumps(soar.asset_state)))
    if capsys is not None:
        capsys.readouterr()
    app.handle(json.dumps(raw))
    printed = capsys.readouterr().out if capsys is not None else ""
    soar.asset_state = json.loads(json.dumps(app.actions_manager.load_state() or {}))
    [result] = app.actions_manager.get_action_results()
    return Result(
        status=result.get_status(),
        message=result.get_message(),
        data=result.get_data(),
        summary=result.get_summary(),
        printed=printed,
    )


def basic_asset(dovecot: Any, **overrides: Any) -> dict[str, Any]:
    """An asset for the test Dovecot over implicit TLS, verifying its certificate; a key
    overridden with None is left out."""
    asset = {
        "server": "localhost",
        "port": dovecot.tls_port,
        "use_ssl": True,
        "username": dovecot.username,
        "password": dovecot.password,
        "ca_cert": str(dovecot.ca_cert_path),
        "folder": "INBOX",
        "ingest_manner": "oldest first",
        "first_run_max_emails": 2000,
        "max_emails": 100,
        "timeout_secs": 10,
    }
    asset.update(overrides)
    return {key: value for key, value in asset.items() if value is not None}
