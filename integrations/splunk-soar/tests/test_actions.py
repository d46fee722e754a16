"""test connectivity, get email and parse email through the SDK, offline, against a real
Dovecot with the real binary."""

import hashlib
from pathlib import Path
from types import ModuleType
from typing import Any

from .support.dovecot import Dovecot
from .support.soar_platform import Soar, basic_asset, run_action
from .test_on_poll import INBOX_MD5, SCHEDULED, report

LATIN1 = (
    b"From: caf\xe9 <a@example.com>\r\nSubject: r\xe9sum\xe9\r\n"
    b"Message-ID: <l1@example.com>\r\n\r\n"
    b"see http://evil.example.net/x\r\n"
)


def test_connectivity_passes_and_shows_the_servers_facts(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path, capsys: Any
) -> None:
    server.append(report(1))
    result = run_action(
        fresh_app, soar, "test_connectivity", basic_asset(server), None, tmp_path, capsys=capsys
    )
    assert result.status, result.message
    for line in (
        "Initiated connection to server",
        "User logged in",
        "Logged in with LOGIN",
        "Folder 'INBOX': 1 messages",
        "Connectivity test passed",
    ):
        assert line in result.printed, result.printed
    assert server.password not in result.printed


def test_connectivity_fails_with_the_step_and_the_servers_words(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path, capsys: Any
) -> None:
    asset = basic_asset(server, password="Wr0ng-pa55word")
    result = run_action(fresh_app, soar, "test_connectivity", asset, None, tmp_path, capsys=capsys)
    assert not result.status
    assert "Connectivity test failed: cannot log in: [AUTHENTICATIONFAILED]" in result.message
    assert "Wr0ng-pa55word" not in result.message + result.printed
    # And a certificate the asset does not trust is refused.
    untrusted = basic_asset(server, ca_cert=None)
    result = run_action(fresh_app, soar, "test_connectivity", untrusted, None, tmp_path)
    assert not result.status
    assert "certificate verify failed" in result.message, result.message


def test_get_email_by_uid_returns_the_headers_and_ingests_on_request(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path
) -> None:
    server.create_folder("Reported")
    server.append(report(7), folder="Reported")
    asset = basic_asset(server)
    result = run_action(
        fresh_app, soar, "get_email", asset, {"id": "1", "folder": "Reported"}, tmp_path
    )
    assert result.status, result.message
    assert result.message == "Email not ingested."
    assert result.data[0]["Subject"] == "Invoice 7 overdue"
    assert result.data[0]["Message-ID"] == "<phish-7@evil-payroll.com>"
    assert soar.containers == {}

    ingested = run_action(
        fresh_app,
        soar,
        "get_email",
        asset,
        {"id": "1", "folder": "Reported", "ingest_email": True},
        tmp_path,
    )
    assert ingested.status, ingested.message
    folder_md5 = hashlib.md5(b"Reported").hexdigest()
    container_id, _ = soar.container_by_sdi(f"{folder_md5} : 1")
    assert ingested.summary == {"container_id": container_id}
    assert ingested.message == f"Container id: {container_id}"
    assert len(soar.vault) == 2
    assert all(f.container_id == container_id for f in soar.vault)
    assert server.seen_flags("Reported") == set()


def test_get_email_refuses_a_uid_that_is_not_one(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path
) -> None:
    result = run_action(fresh_app, soar, "get_email", basic_asset(server), {"id": "1:*"}, tmp_path)
    assert not result.status
    assert 'parameters.id must be a positive integer, got "1:*"' in result.message


def test_get_email_by_container_reads_soars_copy_and_reingests_into_that_container(
    fresh_app: ModuleType, server: Dovecot, soar: Soar, tmp_path: Path
) -> None:
    # A container an earlier poll made: SOAR holds the raw email (here not UTF-8).
    server.append(LATIN1)
    poll = run_action(fresh_app, soar, "on_poll", basic_asset(server), SCHEDULED, tmp_path)
    assert poll.status, poll.message
    container_id, container = soar.container_by_sdi(f"{INBOX_MD5} : 1")
    assert container["data"]["raw_email_encoding"] == "latin-1"
    artifacts_before = len(soar.artifacts)

    class Reply:
        def json(self) -> dict[str, Any]:
            return {"id": container_id, **container}

    requested: list[str] = []

    def fake_get(endpoint: str, **_: Any) -> Reply:
        requested.append(endpoint)
        return Reply()

    def patch(app: Any) -> None:
        app.soar_client.get = fake_get

    # The server is not asked: stop it to be sure.
    server.stop()
    result = run_action(
        fresh_app,
        soar,
        "get_email",
        {"server": "localhost", "username": "soc"},
        {"container_id": container_id, "ingest_email": True},
        tmp_path,
        patch=patch,
    )
    assert result.status, result.message
    assert requested == [f"rest/container/{container_id}"]
    assert result.data[0]["Subject"] == "résumé"
    assert result.data[0]["From"] == "café <a@example.com>"
    # The same container (same SDI), and no artifact twice.
    assert result.summary == {"container_id": container_id}
    assert len(soar.containers) == 1
    assert len(soar.artifacts) == artifacts_before


def test_get_email_by_a_container_not_made_from_an_email_says_so(
    fresh_app: ModuleType, soar: Soar, tmp_path: Path
) -> None:
    class Reply:
        def json(self) -> dict[str, Any]:
            return {"id": 9, "source_data_identifier": "x", "data": {}}

    def patch(app: Any) -> None:
        app.soar_client.get = lambda endpoint, **_: Reply()

    result = run_action(
        fresh_app,
        soar,
        "get_email",
        {"server": "localhost", "username": "soc"},
        {"container_id": "9"},
        tmp_path,
        patch=patch,
    )
    assert not result.status
    assert "raw_email data not found" in result.message
    bad = run_action(
        fresh_app,
        soar,
        "get_email",
        {"server": "localhost", "username": "soc"},
        {"container_id": "abc"},
        tmp_path,
    )
    assert not bad.status
    assert "parameters.container_id must be a positive integer, got 'abc'" in bad.message


def test_parse_email_from_the_vault_gives_the_indicators_and_can_ingest(
    fresh_app: ModuleType, soar: Soar, tmp_path: Path
) -> None:
    eml = tmp_path / "reported.eml"
    eml.write_bytes(report(3))

    class Attachment:
        path = str(eml)

    looked_up: list[str | None] = []

    def get_attachment(vault_id: str | None = None, **_: Any) -> list[Attachment]:
        looked_up.append(vault_id)
        return [Attachment()]

    def patch(app: Any) -> None:
        app.soar_client.vault.get_attachment = get_attachment

    asset = {"server": "localhost", "username": "soc"}
    params = {"vault_id": "ab" * 20, "id": 3, "folder": "Reported"}
    result = run_action(fresh_app, soar, "parse_email", asset, params, tmp_path, patch=patch)
    assert result.status, result.message
    assert looked_up == ["ab" * 20]
    parsed = result.data[0]
    assert parsed["container_name"] == "Invoice 3 overdue"
    assert parsed["source_data_identifier"] == f"{hashlib.md5(b'Reported').hexdigest()} : 3"
    assert parsed["headers"]["Subject"] == "Invoice 3 overdue"
    urls = [a["cef"].get("requestURL") for a in parsed["artifacts"] if a["name"] == "URL Artifact"]
    assert urls == ["https://pay3.evil-payroll.com/login?id=3"]
    assert result.summary["artifact_count"] == parsed["artifact_count"] == len(parsed["artifacts"])
    assert soar.containers == {} and soar.vault == []

    result = run_action(
        fresh_app,
        soar,
        "parse_email",
        asset,
        {**params, "ingest_email": True},
        tmp_path,
        patch=patch,
    )
    assert result.status, result.message
    [container_id] = soar.containers
    assert result.summary["container_id"] == container_id
    assert len(soar.vault) == 2


def test_parse_email_needs_exactly_one_source(
    fresh_app: ModuleType, soar: Soar, tmp_path: Path
) -> None:
    asset = {"server": "localhost", "username": "soc"}
    neither = run_action(fresh_app, soar, "parse_email", asset, {}, tmp_path)
    assert not neither.status
    assert "parse email needs parameters.vault_id" in neither.message
    raw = run_action(
        fresh_app, soar, "parse_email", asset, {"raw_email": "Subject: hi\r\n\r\nx"}, tmp_path
    )
    assert raw.status, raw.message
    assert raw.data[0]["container_name"] == "hi"


def test_parse_email_gives_the_triage_at_a_glance(
    fresh_app: ModuleType, soar: Soar, tmp_path: Path
) -> None:
    """A Microsoft 365 delivery and a SafeLinks-wrapped lure: the verdict, the originating
    IP and the unwrapped link reach the action result, the hops its Email Artifact."""
    fixtures = Path(__file__).resolve().parents[3] / "fixtures" / "eml"
    raw = (fixtures / "triage" / "011-auth-m365-fail.eml").read_text()
    wrapped = (fixtures / "phishing" / "005-m365-safelinks.eml").read_text()
    asset = {"server": "localhost", "username": "soc"}
    result = run_action(fresh_app, soar, "parse_email", asset, {"raw_email": raw}, tmp_path)
    assert result.status, result.message
    parsed = result.data[0]
    assert parsed["email_authentication"]["verdict"] == "fail"
    assert parsed["originating_ip"] == "203.0.113.47"
    email = next(a for a in parsed["artifacts"] if a["name"] == "Email Artifact")
    hops = email["cef"]["receivedHops"]
    assert [hop["internal"] for hop in hops] == [True, True, True, False]
    assert hops[-1]["with"].startswith("Microsoft SMTP Server")
    assert email["cef"]["originatingIp"] == parsed["originating_ip"]
    result = run_action(fresh_app, soar, "parse_email", asset, {"raw_email": wrapped}, tmp_path)
    assert result.status, result.message
    unwrapped = result.data[0]["unwrapped_urls"]
    assert [(u["url"], u["rewriter"]) for u in unwrapped] == [
        ("https://sharepointonline-docs.com/sites/finance/payroll.aspx", "microsoft_safelinks")
    ]
    assert "safelinks.protection.outlook.com" in unwrapped[0]["wrapped_url"]
