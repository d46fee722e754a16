"""`on poll` through the SDK, offline, against a real Dovecot with the real binary: every
container, artifact, SDI, container link, vault file and the ingest state, as SOAR would
save them."""

import base64
import hashlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from soar_sdk.asset_state import AssetState

from src import binary, ingest

from .support.dovecot import Dovecot
from .support.soar_platform import Soar, basic_asset, run_action

SCHEDULED = {"container_count": 4294967295, "artifact_count": 4294967295}
INBOX_MD5 = hashlib.md5(b"INBOX").hexdigest()


def report(n: int) -> bytes:
    """A reported phish with a text body of indicators and two attachments."""
    pdf = base64.b64encode(b"%PDF-1.4\n% invoice " + str(n).encode() * 40).decode()
    csv = base64.b64encode(f"host,ip\nbad{n}.example.net,198.51.100.{n}\n".encode()).decode()
    return (
        f"From: Payroll <payroll{n}@evil-payroll.com>\r\n"
        f"To: soc@example.org\r\nSubject: Invoice {n} overdue\r\n"
        f"Message-ID: <phish-{n}@evil-payroll.com>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"Pay at https://pay{n}.evil-payroll.com/login?id={n} from 203.0.113.{n}\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="invoice-{n}.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n"
        "--b\r\nContent-Type: text/csv\r\n"
        f'Content-Disposition: attachment; filename="hosts-{n}.csv"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{csv}\r\n--b--\r\n"
    ).encode()


def ingest_part(soar: Soar) -> dict[str, Any]:
    """The asset's ingest_state, decrypted as the app reads it."""

    class Backend:
        def load_state(self) -> dict[str, Any]:
            return soar.asset_state

    return AssetState(Backend(), "ingest", "7").get_all()


def binary_parse(raw: bytes, uid: int, tmp: Path) -> dict[str, Any]:
    """The container the binary makes of `raw` on its own."""
    eml = tmp / f"direct-{uid}.eml"
    eml.write_bytes(raw)
    request = {
        "identifier": "parse_email",
        "config": {"folder": "INBOX"},
        "parameters": [{"path": str(eml), "id": uid}],
        "vault_dir": str(tmp / "direct-vault"),
    }
    containers, outcome = binary.Run(request).all()
    assert outcome.succeeded
    return containers[0]


def test_a_scheduled_poll_saves_every_email_as_soar_keeps_it(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path, capsys: Any
) -> None:
    raws = [report(n) for n in range(1, 11)]
    assert server.append_many(raws) == list(range(1, 11))
    asset = basic_asset(server)

    result = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path, capsys=capsys)
    assert result.status, result.message
    assert len(soar.containers) == 10
    for uid, raw in enumerate(raws, 1):
        container_id, container = soar.container_by_sdi(f"{INBOX_MD5} : {uid}")
        assert container["name"] == f"Invoice {uid} overdue"
        assert container["label"] == "email"
        assert container["data"]["raw_email"] == raw.decode()
        saved = soar.artifacts_of(container_id)
        direct = binary_parse(raw, uid, tmp_path)
        expected = direct["artifacts"]
        assert [a["name"] for a in saved] == [a["name"] for a in expected]
        for got, want in zip(saved, expected, strict=True):
            assert got["container_id"] == container_id
            if want["name"] == "Vault Artifact":
                _check_vault_artifact(got, want, container_id, soar)
                continue
            # Exactly the binary's artifact; found_in shown in the cef.
            cef = dict(want["cef"])
            if "found_in" in want:
                cef["foundIn"] = want["found_in"]
            assert got["cef"] == cef
            assert got.get("cef_types") == want.get("cef_types")
            assert got["source_data_identifier"] == want["source_data_identifier"]
            assert got["run_automation"] == want["run_automation"]
        # Automation runs once per container: on its last artifact, a vault one here.
        assert [a["run_automation"] for a in saved].count(True) == 1
        assert saved[-1]["run_automation"] is True
    assert len(soar.vault) == 20
    assert {f.container_id for f in soar.vault} == set(soar.containers)

    # The position lives in SOAR's ingest state, nothing of it on this host.
    state = ingest_part(soar)["soar_imap"]
    assert state["folders"][INBOX_MD5]["next_uid"] == 11
    assert len(state["ledger"]) == 10
    assert not list(soar.vault_tmp.iterdir()), "the run's vault files are cleaned up"
    assert server.seen_flags() == set(), "polling never marks mail read"
    assert "Selected folder 'INBOX'" in result.printed
    # The password is nowhere in what the run printed, saved or stored.
    everything = json.dumps([soar.containers, soar.artifacts, soar.asset_state, ingest_part(soar)])
    assert server.password not in result.printed + result.message + everything

    # A second poll with that state saves nothing new.
    calls = soar.save_container_calls
    again = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path)
    assert again.status, again.message
    assert soar.save_container_calls == calls
    assert len(soar.containers) == 10 and len(soar.vault) == 20

    # New mail is picked up from where the last poll stopped.
    server.append(report(11))
    third = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path)
    assert third.status, third.message
    assert len(soar.containers) == 11
    soar.container_by_sdi(f"{INBOX_MD5} : 11")


def _check_vault_artifact(
    got: dict[str, Any], want: dict[str, Any], container_id: int, soar: Soar
) -> None:
    cef = got["cef"]
    [vault_file] = [f for f in soar.vault if f.vault_id == cef["vaultId"]]
    assert vault_file.container_id == container_id
    assert vault_file.name == want["cef"]["fileName"] == cef["fileName"]
    assert vault_file.sha1 == cef["fileHashSha1"] == want["cef"]["vaultId"]
    assert hashlib.sha256(vault_file.data).hexdigest() == cef["fileHashSha256"]
    assert len(vault_file.data) == cef["fileSize"]
    assert cef["cs6"] == cef["vaultId"]
    assert got["cef_types"] == want["cef_types"]
    assert got["source_data_identifier"] == ingest.artifact_sdi(got)


def test_poll_now_takes_the_oldest_caps_artifacts_and_keeps_the_position(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path
) -> None:
    server.append_many([report(n) for n in range(1, 6)])
    asset = basic_asset(server)
    result = run_action(
        fresh_app,
        soar,
        "on_poll",
        asset,
        {"container_count": 3, "artifact_count": 4},
        tmp_path,
    )
    assert result.status, result.message
    assert sorted(c["source_data_identifier"] for c in soar.containers.values()) == [
        f"{INBOX_MD5} : {uid}" for uid in (1, 2, 3)
    ]
    for container_id in soar.containers:
        saved = soar.artifacts_of(container_id)
        assert len(saved) == 4
        assert [a["run_automation"] for a in saved] == [False, False, False, True]
    # Poll Now moves no position: the scheduled poll still starts from the first email.
    assert "soar_imap" not in ingest_part(soar)
    scheduled = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path)
    assert scheduled.status, scheduled.message
    assert len(soar.containers) == 5
    # Poll Now again re-delivers (as the reference does): SOAR's SDIs absorb the copies.
    again = run_action(
        fresh_app, soar, "on_poll", asset, {"container_count": 5, "artifact_count": 100}, tmp_path
    )
    assert again.status, again.message
    assert len(soar.containers) == 5


def test_a_container_soar_already_has_is_reused(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path
) -> None:
    server.append(report(1))
    soar.containers[55] = {
        "name": "from an earlier app",
        "source_data_identifier": f"{INBOX_MD5} : 1",
    }
    result = run_action(fresh_app, soar, "on_poll", basic_asset(server), SCHEDULED, tmp_path)
    assert result.status, result.message
    assert list(soar.containers) == [55]
    assert {a["container_id"] for a in soar.artifacts} == {55}
    assert {f.container_id for f in soar.vault} == {55}


def test_an_upgraded_reference_asset_polls_on_from_its_position(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path
) -> None:
    server.append_many([report(n) for n in range(1, 6)])
    # What IMAP 3.3.2 left in the asset's state file.
    soar.asset_state = {"app_version": "3.3.2", "first_run": False, "next_muid": 4}
    result = run_action(fresh_app, soar, "on_poll", basic_asset(server), SCHEDULED, tmp_path)
    assert result.status, result.message
    assert sorted(c["source_data_identifier"] for c in soar.containers.values()) == [
        f"{INBOX_MD5} : 4",
        f"{INBOX_MD5} : 5",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"password": "not-the-password"}, "cannot log in: [AUTHENTICATIONFAILED]"),
        ({"port": 1}, "cannot connect to localhost:1"),
        ({"max_emails": "abc"}, 'config.max_emails must be a positive integer, got "abc"'),
        ({"ingest_manner": "sideways"}, "config.ingest_manner"),
        ({"server": None}, "config.server is required"),
    ],
)
def test_a_failing_poll_says_why_and_never_shows_the_password(
    fresh_app: ModuleType,
    server: Dovecot,
    soar: Soar,
    tmp_path: Path,
    capsys: Any,
    change: dict[str, Any],
    expected: str,
) -> None:
    server.append(report(1))
    asset = basic_asset(server, **change)
    result = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path, capsys=capsys)
    assert not result.status
    assert expected in result.message, result.message
    assert soar.containers == {}
    everything = result.message + result.printed + json.dumps(soar.asset_state)
    assert server.password not in everything
    assert "soar_imap" not in ingest_part(soar), "a failed poll moves no position"


def _fake_poll_binary(
    tmp_path: Path, containers: list[dict[str, Any]], tail: dict[str, Any]
) -> Path:
    """A binary that answers a poll with `containers`, then `tail` as the rest of its
    response, exiting 1 when that says it failed."""
    body = "\n".join(
        ['{"containers":['] + [("," if n else "") + json.dumps(c) for n, c in enumerate(containers)]
    )
    out = tmp_path / "response.json"
    out.write_text(body + "\n]," + json.dumps(tail)[1:] + "\n")
    script = tmp_path / "fake-soar-imap"
    code = 0 if tail.get("status") == "success" else 1
    script.write_text(f"#!/bin/sh\ncat > /dev/null\ncat {out}\nexit {code}\n")
    script.chmod(0o755)
    return script


def test_a_poll_that_fails_midway_keeps_exactly_the_position_of_what_soar_has(
    fresh_app: ModuleType, soar: Soar, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = [
        binary_parse(report(n).replace(b"multipart/mixed", b"text/plain"), n, tmp_path)
        for n in (1, 2)
    ]
    returned = {"soar_imap_state": 1, "folders": {INBOX_MD5: {"next_uid": 3}}}
    script = _fake_poll_binary(
        tmp_path,
        made,
        {
            "status": "failed",
            "message": "Poll failed: connection to the server lost",
            "state": returned,
        },
    )
    monkeypatch.setenv(binary.BINARY_ENV, str(script))
    asset = {"server": "localhost", "username": "soc", "password": "pw"}
    result = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path)
    assert not result.status
    assert "connection to the server lost" in result.message
    # Both containers, each with every artifact (the last one's saved before failing).
    for n, container in enumerate(made, 1):
        container_id, _ = soar.container_by_sdi(f"{INBOX_MD5} : {n}")
        assert [a["source_data_identifier"] for a in soar.artifacts_of(container_id)] == [
            a["source_data_identifier"] for a in container["artifacts"]
        ]
    assert ingest_part(soar)["soar_imap"] == returned


def test_a_poll_soar_fails_to_save_moves_no_position(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path
) -> None:
    server.append_many([report(n) for n in (1, 2)])
    soar.fail_next_artifacts = "the database is locked"
    result = run_action(fresh_app, soar, "on_poll", basic_asset(server), SCHEDULED, tmp_path)
    assert not result.status
    assert "Failed to save artifacts: the database is locked" in result.message
    assert "soar_imap" not in ingest_part(soar)
    # The next poll delivers both again; SOAR keeps one container per email.
    retry = run_action(fresh_app, soar, "on_poll", basic_asset(server), SCHEDULED, tmp_path)
    assert retry.status, retry.message
    assert len(soar.containers) == 2
    for container_id in soar.containers:
        assert any(a["name"] == "Vault Artifact" for a in soar.artifacts_of(container_id))


def test_after_ingest_moves_mail_once_soar_has_it_at_the_next_scheduled_poll(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path, capsys: Any
) -> None:
    assert server.append_many([report(n) for n in range(1, 4)]) == [1, 2, 3]
    asset = basic_asset(server, after_ingest="move", after_ingest_folder="Processed")
    result = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path, capsys=capsys)
    assert result.status, result.message
    assert len(soar.containers) == 3
    # Planned, not done: the binary runs stateless, and SOAR has not passed the state back.
    assert server.status("INBOX").messages == 3
    result = run_action(fresh_app, soar, "on_poll", asset, SCHEDULED, tmp_path, capsys=capsys)
    assert result.status, result.message
    assert server.status("INBOX").messages == 0
    assert server.status("Processed").messages == 3
    assert "after_ingest: 3 emails of earlier polls handled" in result.printed, result.printed
    assert len(soar.containers) == 3
