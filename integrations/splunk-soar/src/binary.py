"""Runs the bundled soar-imap binary: one JSON request in, its containers and response out.

The binary writes its one JSON response with each container on a line of its own
(``{"containers":[`` / ``<c1>`` / ``,<c2>`` / ``],"identifier":...}``), flushed as soon as
that container is durable, so containers are handed on one at a time while the binary is
still fetching: memory stays at one container however large the poll.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from soar_sdk.logging import getLogger

logger = getLogger()

#: Where `build.sh` puts the portable binary inside the package.
BUNDLED = Path(__file__).resolve().parent.parent / "templates" / "bin" / "soar-imap"
#: Overrides the binary (development and tests run the one cargo built).
BINARY_ENV = "SOAR_IMAP_BIN"

#: A JSON object of the binary's (request, response, container, state).
JSON = dict[str, Any]


class BinaryError(Exception):
    """The binary could not be run, or ended without a complete response."""


def locate() -> Path:
    """The binary to run: ``$SOAR_IMAP_BIN``, else the one bundled in the package, made
    executable when installing the package lost its mode bits."""
    override = os.environ.get(BINARY_ENV)
    path = Path(override) if override else BUNDLED
    if not path.is_file():
        where = f"${BINARY_ENV}" if override else "the package"
        raise BinaryError(f"the soar-imap binary is missing: no file at {path} ({where})")
    if os.access(path, os.X_OK):
        return path
    # SOAR may unpack the package without the exec bit. Restore it in place when the
    # app directory is ours to change, else run a private executable copy.
    with contextlib.suppress(OSError):
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        if os.access(path, os.X_OK):
            return path
    copy_dir = Path(tempfile.gettempdir()) / f"soar-imap-{os.getuid()}"
    copy_dir.mkdir(mode=0o700, exist_ok=True)
    copy = copy_dir / "soar-imap"
    if not (copy.is_file() and copy.stat().st_size == path.stat().st_size):
        staged = copy_dir / f".soar-imap.{os.getpid()}"
        shutil.copyfile(path, staged)
        staged.chmod(0o700)
        staged.replace(copy)
    return copy


@dataclass
class Outcome:
    """What a finished run answered: the response without its containers, and how many
    containers came before it."""

    response: JSON
    exit_code: int
    containers: int

    @property
    def succeeded(self) -> bool:
        """Whether every action result succeeded (exit status 0)."""
        return self.exit_code == 0 and self.response.get("status") == "success"

    @property
    def message(self) -> str:
        """The response's message: what failed and why, when it failed."""
        return str(self.response.get("message") or "")


class Run:
    """One run of the binary. Iterate it for the containers, as they come; then
    `outcome` holds the rest of the response."""

    def __init__(self, request: JSON, *, binary: Path | None = None) -> None:
        self._binary = binary or locate()
        self._request = json.dumps(request).encode()
        self.outcome: Outcome | None = None

    def __iter__(self) -> Iterator[JSON]:
        # The request (with the asset's password) goes through stdin: never argv or the
        # environment, which other users of the host can read.
        process = subprocess.Popen(
            [str(self._binary), "--log-format", "json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        if process.stdin is None or process.stdout is None or process.stderr is None:
            raise BinaryError("cannot open pipes to the soar-imap binary")
        log_tail: list[str] = []
        stderr_reader = threading.Thread(
            target=_forward_log, args=(process.stderr, log_tail), daemon=True
        )
        stderr_reader.start()
        writer = threading.Thread(
            target=_write_request, args=(process.stdin, self._request), daemon=True
        )
        writer.start()
        response: JSON | None = None
        try:
            response, count = yield from _containers(process.stdout)
        finally:
            # Stopped early (the caller failed): do not leave the binary running.
            if process.poll() is None and response is None:
                process.kill()
            process.stdout.close()
            code = process.wait()
            writer.join()
            stderr_reader.join()
        if response is None:
            raise BinaryError(_cut_off(code, log_tail))
        self.outcome = Outcome(response=response, exit_code=code, containers=count)

    def all(self) -> tuple[list[JSON], Outcome]:
        """Run to the end; the containers in a list (for actions that make one or two)."""
        containers = list(self)
        if self.outcome is None:
            raise BinaryError("the soar-imap binary ended without a response")
        return containers, self.outcome


def _write_request(stdin: IO[bytes], request: bytes) -> None:
    # A binary that refuses the request early closes its stdin; its response says why.
    with contextlib.suppress(BrokenPipeError), stdin:
        stdin.write(request)


def _containers(stdout: IO[bytes]) -> Generator[JSON, None, tuple[JSON | None, int]]:
    """Yield the containers; return the rest of the response (None when it never came)
    and how many containers there were."""
    count = 0
    if stdout.readline().strip() != b'{"containers":[':
        return None, count
    for line in stdout:
        if line.startswith(b"]"):
            # `],"identifier":...}`: the rest of the response, on this last line.
            rest = line[1:].strip().removeprefix(b",")
            return (json.loads(b"{" + rest) if rest != b"}" else {}), count
        count += 1
        yield json.loads(line.removeprefix(b","))
    return None, count


def _forward_log(stderr: IO[bytes], tail: list[str]) -> None:
    """The binary's log lines (JSON) into the SOAR log; the reference's progress lines
    (connecting, logged in, folder selected, the summary) also into the action's
    progress, which SOAR shows while the action runs."""
    for raw in stderr:
        text = raw.decode("utf-8", "replace").rstrip()
        try:
            entry = json.loads(text)
            level = str(entry.get("level", "INFO"))
            message = str(entry.get("message", text))
        except (ValueError, AttributeError):
            level, message = "INFO", text
        tail.append(message)
        del tail[:-20]
        if level == "ERROR":
            logger.error(message)
        elif level == "WARN":
            logger.warning(message)
            logger.progress(message)
        elif level == "INFO" and not message.startswith("Parsing email uid:"):
            logger.progress(message)
        else:
            logger.debug(message)


def _cut_off(code: int, log_tail: list[str]) -> str:
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    last = f"; its last log line: {log_tail[-1]}" if log_tail else ""
    return f"the soar-imap binary {how} before it finished its response{last}"
