#!/usr/bin/env bash
# Where a poll's time goes: for a mailbox of N emails (the benchmark corpus) in a
# throwaway Dovecot, RUNS alternating runs of soar-imap's scheduled poll (data_dir on
# tmpfs and on disk) and of the imaplib baselines, each with its wall time, its CPU time
# (user + sys, GNU time), its peak RSS and the CPU the Dovecot server spent for it (the
# master's cutime + cstime from /proc, which collect the exited imap processes). Then
# the fsync calls of one poll on disk (strace -c) and a perf profile of one poll on
# tmpfs (perf record, call graphs), when strace and perf are installed.
#
# Usage: cargo build --release --locked && benches/poll_profile.sh [N] [RUNS]
#   defaults N=10000 RUNS=3; COMPARE_BIN=/path/to/soar-imap adds its tmpfs poll to each run.
# Needs dovecot-imapd, openssl, python3, jq and GNU time (/usr/bin/time), as root.
set -euo pipefail
N=${1:-10000}
RUNS=${2:-3}
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=benches/dovecot_env.sh
source "$here/dovecot_env.sh"
[[ -x $bench_bin ]] || { echo "build first: cargo build --release --locked" >&2; exit 1; }
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_dovecot_start
shm=$(mktemp -d /dev/shm/soar-bench.XXXXXX)
trap 'doveadm -c "$work/dovecot.conf" stop 2>/dev/null || true; rm -rf "$work" "$shm"' EXIT
bench_dovecot_load "$N" 2>/dev/null
master=$(cat "$work/run/master.pid")
hz=$(getconf CLK_TCK)
server_ticks() { awk '{print $16 + $17}' "/proc/$master/stat"; }
for where in shm disk; do
  dir=$([[ $where == shm ]] && echo "$shm" || echo "$work")
  jq -n --argjson c "$bench_config" --arg d "$dir/data" '{identifier:"on_poll",config:($c + {data_dir:$d})}' > "$work/poll-$where.json"
done
py=("$bench_python" "$here/imap_baselines.py" --port "$port" --ca "$ca" --user "$bench_user" --password "$bench_password")

measure() {
  local name=$1; shift
  rm -rf "$shm/data" "$work/data"
  local before after e u s m
  before=$(server_ticks)
  /usr/bin/time -f "%e %U %S %M" -o "$work/time.txt" "$@" > "$work/out.txt" 2> /dev/null
  sleep 1   # the server's imap process exits after LOGOUT; let the master reap it
  after=$(server_ticks)
  read -r e u s m < "$work/time.txt"
  printf '%-16s wall %6.2f s  cpu %5.2f s (user %5.2f, sys %5.2f)  rss %6d KB  dovecot cpu %5.2f s\n' \
    "$name" "$e" "$(python3 -c "print($u + $s)")" "$u" "$s" "$m" "$(python3 -c "print(($after - $before) / $hz)")"
}

for run in $(seq "$RUNS"); do
  measure soar-tmpfs "$bench_bin" --request "$work/poll-shm.json"
  if [[ -n ${COMPARE_BIN:-} ]]; then measure compare-tmpfs "$COMPARE_BIN" --request "$work/poll-shm.json"; fi
  measure "(a) batched" "${py[@]}" batched
  measure "(b) per-message" "${py[@]}" per-message
  measure soar-disk "$bench_bin" --request "$work/poll-disk.json"
done
echo "load average after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

if command -v strace > /dev/null; then
  rm -rf "$work/data"
  strace -f -c -e trace=fsync,fdatasync -o "$work/strace.txt" "$bench_bin" --request "$work/poll-disk.json" > /dev/null 2>&1
  echo "fsync calls of one poll on disk: $(awk '$NF == "fsync" || $NF == "fdatasync" {n += $4} END {print n}' "$work/strace.txt")," \
    "vault files: $(find "$work/data/vault" -type f | wc -l)"
fi
if command -v perf > /dev/null; then
  rm -rf "$shm/data"
  perf record -q -F 999 --call-graph dwarf,32768 -o "$work/perf.data" "$bench_bin" --request "$work/poll-shm.json" > /dev/null 2>&1
  echo "perf, share of soar-imap's samples (inclusive):"
  perf report -i "$work/perf.data" --children --sort symbol --stdio -g none 2>/dev/null \
    | grep -E '^ +[0-9]' \
    | grep -E '\] (soar_imap::actions::ingest::ingest|soar_imap::container::build_container|soar_imap::mime::walk|soar_imap::artifacts::finish|soar_imap::extract::html::scan_html|soar_imap::extract::scan_text|mail_parser::parsers::message::<impl mail_parser::MessageParser>::parse_|<soar_imap::vault::DirVault as soar_imap::vault::Vault>::store|soar_imap::actions::on_poll::commit_and_emit|<soar_imap::state::sqlite::SqliteStore as soar_imap::state::StateStore>::(commit_batch|find_by_message)|soar_imap::state::container_json|soar_imap::imap::LiveSession<S>::fetch|imap_proto::parser::parse_response|soar_imap::container::_::<impl serde_core::ser::Serialize for soar_imap::container::Container>::serialize|core::ptr::drop_in_place<soar_imap::container::Container>) ' \
    | sed -E 's/^ +([0-9.]+%) +[0-9.]+% +\[\.\] (.*[^ -])[ -]*$/  \1  \2/'
fi
