# Sourced by build.sh, check.sh and verify-package.sh: finds Python 3.13 (pyenv's on these
# machines, or $PYTHON313) and uv (installed from PyPI when missing), and points uv at that
# interpreter with no downloads (uv would otherwise fetch CPython from outside PyPI).
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
