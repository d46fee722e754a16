"""The binary's containers as SDK models, and attachments handed to the SOAR vault."""

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from soar_sdk.exceptions import ActionFailure
from soar_sdk.models.artifact import Artifact

from src import binary, ingest

from .conftest import REPO

FIXTURES = REPO / "fixtures" / "eml"


def parse(paths: list[Path], vault_dir: Path | None = None) -> list[dict[str, Any]]:
    request: dict[str, Any] = {
        "identifier": "parse_email",
        "parameters": [{"path": str(p), "id": n} for n, p in enumerate(paths, 1)],
        "state": {},
    }
    if vault_dir is not None:
        request["vault_dir"] = str(vault_dir)
    containers, outcome = binary.Run(request).all()
    assert outcome.succeeded, outcome.response
    return containers


def test_the_python_sdi_is_the_binarys_for_every_fixture_artifact(tmp_path: Path) -> None:
    """Vault Artifacts get their SDI recomputed here: the two must agree to the byte
    (Python's json.dumps escaping, key order, separators), as checked on every fixture."""
    emails = sorted(FIXTURES.rglob("*.eml"))
    assert len(emails) > 50
    checked = 0
    for container in parse(emails, tmp_path):
        for artifact in container["artifacts"]:
            hashed = dict(artifact)
            # As in the reference: a Vault Artifact is hashed as saved, any other one
            # before the last artifact of the container is flagged to run automation.
            if artifact["name"] != "Vault Artifact":
                hashed["run_automation"] = False
            assert ingest.artifact_sdi(hashed) == artifact["source_data_identifier"], artifact
            checked += 1
    assert checked > 400


class FakeVault:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.added: list[tuple[int, bytes, str]] = []

    def get_vault_tmp_dir(self) -> str:
        return str(self.tmp)

    def add_attachment(self, container_id: int, file_location: str, file_name: str) -> str:
        self.added.append((container_id, Path(file_location).read_bytes(), file_name))
        return f"{len(self.added):040x}"


class FakeSoar:
    def __init__(self, tmp: Path) -> None:
        self.vault = FakeVault(tmp)


def test_vault_artifacts_name_the_vaults_id_and_the_soar_container(tmp_path: Path) -> None:
    soar: Any = FakeSoar(tmp_path)
    with ingest.VaultFiles(soar) as files:
        assert files.path.parent == tmp_path, "under SOAR's vault temp dir"
        [container] = parse([FIXTURES / "mime" / "010-duplicate-attachment-names.eml"], files.path)
        artifacts = ingest.vault_and_artifacts(container, 55, soar, files)
    assert not files.path.exists(), "the run's files are removed afterwards"
    vault = [a for a in artifacts if a.name == "Vault Artifact"]
    originals = [a for a in container["artifacts"] if a["name"] == "Vault Artifact"]
    assert len(vault) == len(originals) == len(soar.vault.added) >= 2
    for n, (artifact, original, added) in enumerate(
        zip(vault, originals, soar.vault.added, strict=True), 1
    ):
        cef = artifact.cef or {}
        assert cef["vaultId"] == cef["cs6"] == f"{n:040x}"
        assert artifact.container_id == 55
        container_id, data, name = added
        assert container_id == 55 and name == original["cef"]["fileName"]
        assert hashlib.sha1(data).hexdigest() == cef["fileHashSha1"] == original["cef"]["vaultId"]
        # The reference's SDI over the finished artifact.
        body = artifact.to_dict()
        del body["source_data_identifier"]
        expected = hashlib.md5(json.dumps(body, sort_keys=True).encode()).hexdigest()
        assert artifact.source_data_identifier == expected != original["source_data_identifier"]
    # Everything else is exactly the binary's.
    others = [a for a in artifacts if a.name != "Vault Artifact"]
    assert [a.source_data_identifier for a in others] == [
        a["source_data_identifier"] for a in container["artifacts"] if a["name"] != "Vault Artifact"
    ]


def test_a_missing_vault_file_fails_clearly(tmp_path: Path) -> None:
    soar: Any = FakeSoar(tmp_path)
    with ingest.VaultFiles(soar) as files, pytest.raises(ActionFailure, match="wrote no file"):
        files.hand_over("ab" * 20)


def test_found_in_goes_into_the_cef_where_soar_shows_it() -> None:
    artifact = ingest.to_artifact(
        {
            "cef": {"destinationDnsDomain": "example.com"},
            "found_in": ["header From"],
            "name": "Domain Artifact",
            "run_automation": False,
            "source_data_identifier": "225a13a4d465199a271fcecdc51ef60b",
        },
        9,
    )
    assert isinstance(artifact, Artifact)
    assert artifact.cef == {"destinationDnsDomain": "example.com", "foundIn": ["header From"]}
    assert artifact.source_data_identifier == "225a13a4d465199a271fcecdc51ef60b"
    assert artifact.container_id == 9


def test_keys_the_sdk_does_not_know_go_into_data_never_away() -> None:
    artifact = ingest.to_artifact(
        {"cef": {"requestURL": "https://a.example.com/"}, "name": "URL Artifact", "verdict": "x"},
        4,
    )
    assert artifact.data == {"verdict": "x"}
    container = ingest.to_container({"name": "n", "data": {"raw_email": "r"}, "severity": "high"})
    assert container.severity == "high"
    container = ingest.to_container({"name": "n", "data": {"raw_email": "r"}, "verdicts": [1]})
    assert container.data == {"raw_email": "r", "verdicts": [1]}


def test_containers_keep_everything_but_the_binarys_bookkeeping() -> None:
    container = ingest.to_container(
        {
            "id": 3,
            "duplicate": True,
            "redelivered": True,
            "name": "Invoice",
            "source_data_identifier": "af1cd994dfcb9286c394d142687ff5a0 : 5",
            "label": "phishing",
            "run_automation": False,
            "data": {"raw_email": "x", "raw_email_encoding": "latin-1", "parse_warnings": ["w"]},
            "artifacts": [{"name": "IP Artifact"}],
        }
    )
    assert container.to_dict() == {
        "name": "Invoice",
        "source_data_identifier": "af1cd994dfcb9286c394d142687ff5a0 : 5",
        "label": "phishing",
        "run_automation": False,
        "data": {"raw_email": "x", "raw_email_encoding": "latin-1", "parse_warnings": ["w"]},
    }


def test_poll_now_caps_artifacts_and_keeps_automation_on_the_last_kept() -> None:
    artifacts = [{"name": f"A{n}", "run_automation": n == 4} for n in range(5)]
    kept, left_out = ingest.cap_artifacts(artifacts, 3)
    assert [a["name"] for a in kept] == ["A0", "A1", "A2"] and left_out == 2
    assert [a["run_automation"] for a in kept] == [False, False, True]
    assert artifacts[2]["run_automation"] is False, "the binary's list is not changed"
    assert ingest.cap_artifacts(artifacts, None) == (artifacts, 0)
    assert ingest.cap_artifacts(artifacts, 5) == (artifacts, 0)
