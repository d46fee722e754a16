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

python313=${PYTHON313:-}
if [ -z "$python313" ]; then
    for candidate in "$(pyenv root 2>/dev/null || echo /root/.pyenv)/versions/3.13.0/bin/python3.13" \
        "$(command -v python3.13 || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then python313=$candidate; break; fi
    done
fi
if [ -z "$python313" ]; then
    echo "error: Python 3.13 not found: set PYTHON313 to a python3.13 interpreter" >&2
    exit 1
fi
if ! command -v uv >/dev/null 2>&1; then
    echo "installing uv" >&2
    python3 -m pip install --quiet uv
fi
export UV_PYTHON="$python313" UV_PYTHON_DOWNLOADS=never
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
