"""Shared fixtures: the real soar-imap binary, a Dovecot, SOAR's stand-in, a fresh app."""

import importlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import src.app

from .support.dovecot import Dovecot
from .support.soar_platform import Soar

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
def server() -> Iterator[Dovecot]:
    """A Dovecot of its own for the test, with a password user."""
    with Dovecot() as dovecot:
        yield dovecot


@pytest.fixture
def soar(tmp_path: Path) -> Soar:
    """SOAR as an action run sees it, with its saves recorded."""
    vault_tmp = tmp_path / "vault-tmp"
    vault_tmp.mkdir()
    return Soar(vault_tmp=vault_tmp)


@pytest.fixture
def fresh_app() -> ModuleType:
    """The app module imported anew: its App (actions manager, SOAR client, results) is
    the one of a single SOAR action run."""
    return importlib.reload(src.app)
