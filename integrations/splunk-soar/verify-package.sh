#!/usr/bin/env bash
# Checks a built package as SOAR would use it: extract the .tgz, install the package's own
# wheels (the ones its manifest lists, nothing from an index) into a fresh Python 3.13
# venv, and run its on poll, with its bundled binary, against a Dovecot of 10 emails with
# attachments: 10 containers, every artifact linked, every attachment handed to the vault;
# then a second poll that saves none (verify_package.py).
#
#   integrations/splunk-soar/verify-package.sh [target/splunk-soar/soar-imap-splunk-soar-*.tgz]
#
# Needs Python 3.13 (pyenv's, or $PYTHON313) and dovecot-imapd.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
package=${1:-$(ls "$root"/target/splunk-soar/soar-imap-splunk-soar-*.tgz | head -n1)}
package=$(realpath "$package")
# shellcheck source=python-env.sh
source "$here/python-env.sh"

work=$(mktemp -d /tmp/soar-imap-verify.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -xzf "$package" -C "$work"
app=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)

# The wheels the manifest lists for Python 3.13 on this platform, from the package only.
wheels=$("$python313" - "$app" <<'EOF'
import json, platform, sys
from pathlib import Path
app = Path(sys.argv[1])
manifest = json.loads((app / "manifest.json").read_text())
key = "input_file_aarch64" if platform.machine() == "aarch64" else "input_file"
print("\n".join(str(app / w[key]) for w in manifest["pip313_dependencies"]["wheel"]))
EOF
)
# What SOAR's Python runner provides itself, which the SDK leaves out of packages
# (soar_sdk.meta.dependencies.constants.DEPENDENCIES_TO_SKIP), at the versions uv.lock pins.
provided=$("$python313" - "$here/uv.lock" <<'EOF'
import sys, tomllib
skip = {"beautifulsoup4", "soupsieve", "parse", "python-dateutil", "six", "requests",
        "certifi", "charset-normalizer", "idna", "urllib3", "sh", "xmltodict"}
lock = tomllib.load(open(sys.argv[1], "rb"))
print(" ".join(f"{p['name']}=={p['version']}" for p in lock["package"] if p["name"] in skip))
EOF
)
"$python313" -m venv "$work/venv"
pip=("$work/venv/bin/pip" install --quiet --disable-pip-version-check)
# shellcheck disable=SC2086
"${pip[@]}" $provided
# shellcheck disable=SC2086
"${pip[@]}" --no-index $wheels
echo "installed $(echo "$wheels" | wc -l) wheels from $(basename "$package") (and SOAR's own: $provided) into a fresh venv" >&2

"$work/venv/bin/python" "$here/verify_package.py" "$app" "$work/run"
echo "package: $package ($(du -h "$package" | cut -f1))"
