"""Shared fixtures: the real soar-imap binary, and a fresh app per test."""

import importlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import src.app

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session", autouse=True)
def soar_imap_bin() -> Iterator[Path]:
    """The binary the app runs: `$SOAR_IMAP_BIN` when set, else the repository's debug
    build (built here when missing; `.ci/test` has built it already)."""
    given = os.environ.get("SOAR_IMAP_BIN")
    if given:
        yield Path(given)
        return
    path = REPO / "target" / "debug" / "soar-imap"
    if not path.is_file():
        subprocess.run(["cargo", "build", "--locked", "--bin", "soar-imap"], cwd=REPO, check=True)
    os.environ["SOAR_IMAP_BIN"] = str(path)
    yield path
    del os.environ["SOAR_IMAP_BIN"]


@pytest.fixture
def fresh_app() -> ModuleType:
    """The app module imported anew: its App (actions manager, SOAR client, results) is
    the one of a single SOAR action run."""
    return importlib.reload(src.app)
