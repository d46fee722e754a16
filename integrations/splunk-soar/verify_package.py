"""The last check of a built package: its own app and bundled binary, in a fresh Python
3.13 environment holding only the package's wheels, poll a throwaway Dovecot of 10
emails with attachments as SOAR would (the SDK's offline mode, SOAR's saves recorded).

Run by verify-package.sh, in a venv of the package's wheels.

Usage: python verify_package.py EXTRACTED_APP_DIR WORK_DIR
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import stat
import sys
from pathlib import Path


def report(n: int) -> bytes:
    """A reported phish with an attachment."""
    pdf = base64.b64encode(b"%PDF-1.4\n% statement " + str(n).encode() * 50).decode()
    return (
        f"From: Billing <billing{n}@pay-portal.com>\r\nTo: soc@example.org\r\n"
        f"Subject: Statement {n}\r\nMessage-ID: <statement-{n}@pay-portal.com>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\n"
        f"See https://pay-portal.com/s/{n} from 203.0.113.{n}\r\n"
        "--b\r\nContent-Type: application/pdf\r\n"
        f'Content-Disposition: attachment; filename="statement-{n}.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b--\r\n"
    ).encode()


def main() -> None:
    """Poll twice; print what SOAR saved; exit non-zero on any mismatch."""
    app_dir, work = Path(sys.argv[1]), Path(sys.argv[2])
    # The package's `src` first: this script's own directory (first on sys.path) has the
    # repository's `src` too; its `tests` give the Dovecot and SOAR stand-ins.
    sys.path.insert(0, str(app_dir))
    os.environ.pop("SOAR_IMAP_BIN", None)  # the package's own binary, nothing else
    bundled = app_dir / "templates" / "bin" / "soar-imap"
    # As if SOAR had unpacked the package without mode bits: the app must cope.
    bundled.chmod(0o644)

    app_module = importlib.import_module("src.app")
    from src import binary  # noqa: PLC0415 (the package's, after sys.path is set)
    from tests.support.dovecot import Dovecot  # noqa: PLC0415
    from tests.support.soar_platform import Soar, basic_asset, run_action  # noqa: PLC0415

    assert Path(app_module.__file__ or "").is_relative_to(app_dir), app_module.__file__
    assert binary.locate() == bundled and bundled.stat().st_mode & stat.S_IXUSR
    vault_tmp = work / "vault-tmp"
    vault_tmp.mkdir(parents=True)
    soar = Soar(vault_tmp=vault_tmp)
    scheduled = {"container_count": 4294967295, "artifact_count": 4294967295}
    folder_md5 = hashlib.md5(b"INBOX").hexdigest()  # noqa: S324 (SOAR's identifier)
    with Dovecot() as server:
        server.append_many([report(n) for n in range(1, 11)])
        asset = basic_asset(server)
        first = run_action(app_module, soar, "on_poll", asset, scheduled, work)
        assert first.status, first.message
        sdis = sorted(
            (c["source_data_identifier"] for c in soar.containers.values()),
            key=lambda sdi: int(sdi.rsplit(" ", 1)[-1]),
        )
        assert sdis == [f"{folder_md5} : {uid}" for uid in range(1, 11)], sdis
        for artifact in soar.artifacts:
            assert artifact["container_id"] in soar.containers, artifact
        vault_artifacts = [a for a in soar.artifacts if a["name"] == "Vault Artifact"]
        assert len(vault_artifacts) == len(soar.vault) == 10
        for artifact in vault_artifacts:
            [handed] = [f for f in soar.vault if f.vault_id == artifact["cef"]["vaultId"]]
            assert handed.container_id == artifact["container_id"]
            assert handed.sha1 == artifact["cef"]["fileHashSha1"]
        calls = soar.save_container_calls
        second = run_action(app_module, soar, "on_poll", asset, scheduled, work)
        assert second.status, second.message
        assert soar.save_container_calls == calls, "the second poll saved containers"
        assert server.seen_flags() == set()
    print(f"package app: {app_module.__file__}")
    print(f"bundled binary: {bundled} (made executable by the app)")
    print(f"first poll: {len(soar.containers)} containers, SDIs {sdis[0]} .. {sdis[-1]}")
    print(f"  {len(soar.artifacts)} artifacts, each linked to its container")
    print(f"  {len(soar.vault)} vault files, each SHA-1 equal to its Vault Artifact's")
    print(f"second poll: {soar.save_container_calls - calls} containers saved")


if __name__ == "__main__":
    main()
