"""Running the binary: its containers as they come, a cut-off response, the exec bit."""

import os
import shutil
import stat
import textwrap
from pathlib import Path

import pytest

from src import binary


def fake_binary(tmp_path: Path, body: str) -> Path:
    """A stand-in for soar-imap that writes what `body` (sh) writes."""
    script = tmp_path / "fake-soar-imap"
    script.write_text("#!/bin/sh\ncat > /dev/null\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def test_containers_come_while_the_binary_still_runs(tmp_path: Path) -> None:
    go_on = tmp_path / "go-on"
    script = fake_binary(
        tmp_path,
        f"""\
        printf '{{"containers":[\\n{{"name":"one"}}\\n'
        while [ ! -e {go_on} ]; do sleep 0.05; done
        printf ',{{"name":"two"}}\\n],"status":"success","message":"done","state":{{"a":1}}}}\\n'
        """,
    )
    run = binary.Run({"identifier": "on_poll"}, binary=script)
    containers = iter(run)
    assert next(containers) == {"name": "one"}
    # The binary is waiting for us: the first container came before it finished.
    assert run.outcome is None
    go_on.touch()
    assert list(containers) == [{"name": "two"}]
    assert run.outcome is not None
    assert run.outcome.succeeded
    assert run.outcome.response == {"status": "success", "message": "done", "state": {"a": 1}}
    assert run.outcome.containers == 2


def test_a_binary_killed_mid_response_is_an_error_naming_how_it_ended(tmp_path: Path) -> None:
    script = fake_binary(
        tmp_path,
        """\
        echo '{"level":"INFO","message":"Selected folder '"'"'inbox'"'"'"}' >&2
        printf '{"containers":[\\n{"name":"one"}\\n'
        kill -9 $$
        """,
    )
    run = binary.Run({}, binary=script)
    got: list[dict[str, object]] = []
    with pytest.raises(binary.BinaryError) as error:
        got.extend(run)
    assert got == [{"name": "one"}]
    assert str(error.value) == (
        "the soar-imap binary was killed by signal 9 before it finished its response;"
        " its last log line: Selected folder 'inbox'"
    )


def test_a_failed_run_keeps_its_message_and_status(tmp_path: Path) -> None:
    script = fake_binary(
        tmp_path,
        """\
        printf '{"containers":[\\n],"status":"failed",'
        printf '"message":"cannot log in: [AUTHENTICATIONFAILED] Authentication failed."}\\n'
        exit 1
        """,
    )
    containers, outcome = binary.Run({}, binary=script).all()
    assert containers == []
    assert not outcome.succeeded
    assert outcome.exit_code == 1
    assert outcome.message == "cannot log in: [AUTHENTICATIONFAILED] Authentication failed."


def test_the_request_goes_in_on_stdin_never_on_the_command_line(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    script = tmp_path / "fake-soar-imap"
    script.write_text(
        f'#!/bin/sh\necho "$@" > {seen}.args\ncat > {seen}.stdin\n'
        'printf \'{"containers":[\\n],"status":"success"}\\n\'\n'
    )
    script.chmod(0o755)
    binary.Run({"config": {"password": "pa55-w0rd"}}, binary=script).all()
    assert "pa55-w0rd" not in Path(f"{seen}.args").read_text()
    assert "pa55-w0rd" in Path(f"{seen}.stdin").read_text()


def test_a_bundled_binary_that_lost_its_exec_bit_is_made_runnable(
    tmp_path: Path, soar_imap_bin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "soar-imap"
    shutil.copyfile(soar_imap_bin, copy)
    copy.chmod(0o644)
    monkeypatch.setenv(binary.BINARY_ENV, str(copy))
    runnable = binary.locate()
    assert os.access(runnable, os.X_OK)
    assert runnable.stat().st_mode & stat.S_IXUSR


def test_a_missing_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(binary.BINARY_ENV, str(tmp_path / "nope"))
    with pytest.raises(binary.BinaryError, match=r"the soar-imap binary is missing: no file at"):
        binary.locate()
