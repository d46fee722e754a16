#!/usr/bin/env bash
# Builds the Splunk SOAR app package: target/splunk-soar/<name>-<version>.tgz, one file an
# administrator uploads in SOAR (Apps > Install App).
#
#   integrations/splunk-soar/build.sh
#
# 1. the portable soar-imap binary (glibc <= 2.28, OpenSSL linked in: RHEL 8/9, Oracle
#    Linux, Amazon Linux), by portable-binary.sh;
# 2. a staging copy of the app with the binary under templates/bin/ (the SDK's package
#    build keeps only .py files under src/, but all of templates/, modes included);
# 3. the SDK's `package build` (package.py: downloads that survive slow links).
# Installs uv (PyPI) when missing; needs Python 3.13 (pyenv's on these machines, or
# $PYTHON313).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/target/splunk-soar"
stage="$out/stage/soar_imap_app" # a package name that shadows no installed module
say() { printf '==> %s\n' "$*" >&2; }

# shellcheck source=python-env.sh
source "$here/python-env.sh"

say "portable binary"
mkdir -p "$out"
"$here/portable-binary.sh" "$out/soar-imap"

say "staging the app in $stage"
rm -rf "$out/stage"
mkdir -p "$stage/templates/bin"
cp -r "$here/pyproject.toml" "$here/uv.lock" "$here/README.md" "$here/logo.svg" \
    "$here/logo_dark.svg" "$here/src" "$stage/"
cp "$root/LICENSE" "$stage/LICENSE"
find "$stage/src" -name __pycache__ -prune -exec rm -rf {} +
install -m 0755 "$out/soar-imap" "$stage/templates/bin/soar-imap"

say "SDK package build"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$here/pyproject.toml" | head -n1)
package="$out/soar-imap-splunk-soar-$version.tgz"
rm -f "$out"/*.tgz
# The build's own environment: the app's locked dependencies (the SDK and its CLI).
UV_PROJECT_ENVIRONMENT="$out/venv" uv sync --quiet --frozen --no-dev --project "$stage"
"$out/venv/bin/python" "$here/package.py" "$stage" "$package" >&2

say "checking the package"
listing=$(tar -tvzf "$package")
top=$(awk 'NR == 1 { split($6, path, "/"); print path[1] }' <<<"$listing")
for want in "$top/manifest.json" "$top/src/app.py" "$top/templates/bin/soar-imap"; do
    grep -q " $want\$" <<<"$listing" || { echo "error: $want missing from $package" >&2; exit 1; }
done
grep -E " $top/templates/bin/soar-imap\$" <<<"$listing" | grep -q '^-rwx' ||
    { echo "error: the bundled binary is not executable in $package" >&2; exit 1; }
size=$(du -h "$package" | cut -f1)
say "built $package ($size)"
echo "$package"
