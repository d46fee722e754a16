#!/usr/bin/env bash
# The Splunk SOAR app's checks, run by the repository's .ci/test and .ci/run:
#
#   integrations/splunk-soar/check.sh lint   # ruff (lint + format) and mypy --strict
#   integrations/splunk-soar/check.sh test   # pytest: offline SDK runs against Dovecot
#
# Installs uv (PyPI) when missing and the app's locked dependencies (uv sync --frozen).
# Needs Python 3.13 (pyenv's on these machines, or $PYTHON313). The tests run the binary
# in $SOAR_IMAP_BIN, else the repository's debug build (built when missing).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

# shellcheck source=python-env.sh
source "$here/python-env.sh"
uv sync --quiet --frozen

case "${1:-test}" in
lint)
    uv run --frozen ruff check
    uv run --frozen ruff format --check
    uv run --frozen mypy
    ;;
test)
    shift || true
    # Two workers: each test starts its own Dovecot on free ports.
    uv run --frozen pytest -q -n 2 -p no:cacheprovider "$@"
    ;;
*)
    echo "usage: $0 lint|test [pytest args]" >&2
    exit 2
    ;;
esac
