#!/usr/bin/env bash
# Build the soar-imap binary that the Splunk SOAR app bundles, and check it is portable.
#
#   integrations/splunk-soar/portable-binary.sh OUT_PATH
#
# SOAR runs on RHEL / Oracle Linux 8 and 9 and Amazon Linux: glibc 2.28 and OpenSSL 1.1 on
# RHEL 8. A plain `cargo build` here links against this machine's newer glibc and its
# libssl.so.3, so it would not start there. This script builds with cargo-zigbuild, whose
# zig linker targets glibc 2.28 with the Rust std already installed (no rustup target
# needed), and with the `vendored-openssl` feature, which links OpenSSL statically. Then it
# strips the binary into OUT_PATH (mode 0755) and fails unless it needs no GLIBC symbol
# above 2.28, needs no libssl/libcrypto, and runs (`--version`).
#
# Needs cargo (Rust 1.95) and python3. Installs the rest when missing: zig (PyPI `ziglang`)
# and cargo-zigbuild (PyPI) in a tool venv under target/, and binutils, perl, make, gcc or
# python3-venv with apt-get (as root). A second run with nothing changed reuses the venv
# and cargo's build and takes about a second. Progress goes to stderr.
set -euo pipefail

# Pinned: the pair this script was checked with, so a later rebuild uses the same linker.
ZIGLANG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.1
# The oldest glibc among SOAR hosts (RHEL 8 / Oracle Linux 8).
GLIBC_MAX=2.28
TARGET=x86_64-unknown-linux-gnu

say() { printf 'portable-binary: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[ $# -eq 1 ] || { echo "usage: $0 OUT_PATH" >&2; exit 2; }
# Resolve OUT_PATH against the caller's directory before moving to the repository.
out=$(realpath -m -- "$1")
cd "$(dirname "$0")/../.."
repo=$PWD

# Install Debian packages when missing; only root can.
apt_install() {
    [ "$(id -u)" -eq 0 ] || die "missing $*; install it (as root: apt-get install $*)"
    say "installing $* with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# objdump/readelf/strip check and shrink the result; OpenSSL's build needs perl
# (with IPC::Cmd, which Debian's perl-base lacks) and make.
need=()
for tool in objdump readelf strip; do
    command -v "$tool" >/dev/null 2>&1 || { need+=(binutils); break; }
done
perl -MIPC::Cmd -MFindBin -e 1 >/dev/null 2>&1 || need+=(perl)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"

# zig and cargo-zigbuild both come as wheels from PyPI: no `cargo install` (a minute of
# compiling) and no download from ziglang.org (unreachable here).
tools=$repo/target/splunk-soar/tools
stamp=$tools/.installed-ziglang-$ZIGLANG_VERSION-cargo-zigbuild-$CARGO_ZIGBUILD_VERSION
if [ ! -e "$stamp" ]; then
    say "creating the tool venv $tools (ziglang $ZIGLANG_VERSION, cargo-zigbuild $CARGO_ZIGBUILD_VERSION)"
    rm -rf "$tools"
    python3 -m venv "$tools" || {
        # Debian's python3 splits venv (ensurepip) into its own package.
        apt_install python3-venv
        rm -rf "$tools"
        python3 -m venv "$tools"
    }
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check \
        "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
    touch "$stamp"
else
    say "reusing the tool venv $tools"
fi
# Use exactly the venv's zig (its `python-zig` entry point), whatever else is on PATH.
export CARGO_ZIGBUILD_ZIG_PATH=$tools/bin/python-zig

# Its own target dir: a different target and feature set would otherwise invalidate the
# normal target/release build (and each build would wait on the other's lock).
target_dir=$repo/target/portable
say "building: cargo zigbuild --release --locked --target $TARGET.$GLIBC_MAX --features vendored-openssl (first build: ~6 min on 2 cores)"
start=$SECONDS
# Run as cargo runs a subcommand (`cargo-zigbuild zigbuild ...`), so that PATH need not change.
"$tools/bin/cargo-zigbuild" zigbuild --release --locked --target "$TARGET.$GLIBC_MAX" \
    --features vendored-openssl --target-dir "$target_dir"
say "built in $((SECONDS - start)) s"
built=$target_dir/$TARGET/release/soar-imap
[ -x "$built" ] || die "cargo reported success but $built is missing"

# Strip into a temporary file next to OUT_PATH, then rename: a failed check never leaves a
# half-checked binary at OUT_PATH.
mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
strip -o "$tmp" "$built"
chmod 0755 "$tmp"

# 1. glibc: every versioned symbol it imports must exist in glibc 2.28.
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }
versions=$(objdump -T "$tmp" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -uV)
[ -n "$versions" ] || die "objdump -T found no GLIBC_ symbol versions in the binary"
highest=$(echo "$versions" | tail -n 1)
say "highest GLIBC symbol version: GLIBC_$highest (limit GLIBC_$GLIBC_MAX)"
if ! version_le "$highest" "$GLIBC_MAX"; then
    for v in $versions; do
        version_le "$v" "$GLIBC_MAX" || objdump -T "$tmp" | grep -E "GLIBC_${v//./\\.}([^0-9.]|$)" >&2 || true
    done
    die "the binary needs GLIBC_$highest, newer than GLIBC_$GLIBC_MAX (RHEL 8): see the symbols above"
fi

# 2. OpenSSL: statically linked, so no libssl/libcrypto may be NEEDED (RHEL 8 has 1.1 only).
needed=$(readelf -d "$tmp" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
say "NEEDED: $(echo "$needed" | paste -sd ' ' -)"
if echo "$needed" | grep -qE '^lib(ssl|crypto)\.'; then
    die "the binary links OpenSSL dynamically; was the vendored-openssl feature lost?"
fi

# 3. It starts.
version=$("$tmp" --version) || { rc=$?; die "$tmp --version exited with $rc"; }
say "runs: $version"

mv -f "$tmp" "$out"
trap - EXIT
say "wrote $out ($(stat -c %s "$out") bytes, stripped)"
