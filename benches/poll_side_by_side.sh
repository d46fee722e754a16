#!/usr/bin/env bash
# Poll throughput side by side against a throwaway Dovecot on loopback (implicit TLS):
# the first N emails of the seeded benchmark corpus (gen_corpus.py) in INBOX, then ROUNDS
# rounds, each running every contender once, in an order that rotates each round (after
# one warm-up round that is not counted):
#   soar      soar-imap scheduled `on poll` of all N (first_run_max_emails >= N), a fresh
#             data_dir on disk each round, the response to a file
#   soar-shm  the same with data_dir on tmpfs (/dev/shm): fsync costs nothing there, so
#             the difference to `soar` is what durability costs on this disk
#   a         Python imaplib: login, EXAMINE, one `UID FETCH 1:* BODY.PEEK[]`, read all
#   b         Python imaplib, the reference's pattern: `UID SEARCH ALL`, then one
#             `UID FETCH n (RFC822)` round trip per message (under EXAMINE: no \Seen)
# COMPARE_BINS="NAME=/path/to/soar-imap ..." (say, a build of the previous commit) adds
# one contender per binary, polling the same way as `soar` (COMPARE_ON=shm: as
# `soar-shm`), for before/after figures taken side by side.
# Then latency, medians of LATENCY runs (default 15), process start to exit: `--version`,
# `parse email` of one small email, `test connectivity` and imaplib's login + LIST +
# EXAMINE + logout on INBOX and on a folder of 8 emails; and one run of each timed step
# by step.
#
# Usage: cargo build --release --locked && benches/poll_side_by_side.sh [N] [ROUNDS] [RTT_MS]
#   defaults N=10000 ROUNDS=5 RTT_MS=0. RTT_MS > 0 puts a delay proxy (imap_baselines.py
#   delay-proxy) between every client and Dovecot, adding that round-trip time.
# Needs dovecot-imapd, openssl, python3, jq and GNU time (/usr/bin/time), as root.
set -euo pipefail
N=${1:-10000}
ROUNDS=${2:-5}
RTT_MS=${3:-0}
LATENCY=${LATENCY:-15}
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=benches/dovecot_env.sh
source "$here/dovecot_env.sh"
[[ -x $bench_bin ]] || { echo "build first: cargo build --release --locked" >&2; exit 1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "soar-imap: $("$bench_bin" --version); $(dovecot --version | cut -d' ' -f1) Dovecot; $(python3 --version)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
bench_dovecot_start
bench_dovecot_load "$N"
client_port=$port
if [[ $RTT_MS != 0 ]]; then
  client_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$bench_python" "$here/imap_baselines.py" delay-proxy --port "$port" --listen-port "$client_port" --rtt-ms "$RTT_MS" &
  proxy=$!
  sleep 1
fi
config=$(jq -c --argjson p "$client_port" '.port = $p' <<<"$bench_config")
py=("$bench_python" "$here/imap_baselines.py" --port "$client_port" --ca "$ca" --user "$bench_user" --password "$bench_password")
shm=$(mktemp -d /dev/shm/soar-bench.XXXXXX)
# Replaces bench_dovecot_start's trap: it also stops the proxy and removes $shm.
trap 'kill ${proxy:-} 2>/dev/null || true; doveadm -c "$work/dovecot.conf" stop 2>/dev/null || true; rm -rf "$work" "$shm"' EXIT
results="$work/results.txt"
: > "$results"

# One scheduled poll of everything into a fresh data_dir under $1; records seconds and
# peak RSS, and checks every message was ingested.
soar_poll() {
  local name=$1 bin=${3:-$bench_bin} data
  # A data_dir per run, kept until the end: ext4 without a journal (target/ and /tmp on
  # these machines) passes over recently deleted inodes when it allocates one, so
  # deleting the last run's thousands of vault files would slow this run's (see
  # bulk_side_by_side.sh).
  data=$(mktemp -d "$2/data.XXXXXX")
  jq -n --argjson c "$config" --arg d "$data" '{identifier:"on_poll",config:($c + {data_dir:$d})}' > "$work/poll.json"
  local t0 t1
  t0=$(bench_now)
  /usr/bin/time -f "%M" -o "$work/rss.txt" "$bin" --request "$work/poll.json" > "$work/poll.out" 2> "$work/poll.err"
  t1=$(bench_now)
  local got
  got=$(jq '.action_results[0].summary.emails_ingested' "$work/poll.out")
  [[ $got == "$N" ]] || { echo "$name ingested $got of $N" >&2; tail -3 "$work/poll.err" >&2; exit 1; }
  echo "$name $(python3 -c "print(round($t1 - $t0, 3))") $(cat "$work/rss.txt")" >> "$results"
}

python_run() {
  local name=$1 mode=$2 t0 t1 out
  t0=$(bench_now)
  out=$("${py[@]}" "$mode")
  t1=$(bench_now)
  [[ $out == *"messages=$N "* ]] || { echo "$name: $out" >&2; exit 1; }
  echo "$name $(python3 -c "print(round($t1 - $t0, 3))") 0" >> "$results"
}

contender() {
  case $1 in
    soar) soar_poll soar "$work" ;;
    soar-shm) soar_poll soar-shm "$shm" ;;
    a) python_run a batched ;;
    b) python_run b per-message ;;
    *) soar_poll "$1" "$([[ ${COMPARE_ON:-disk} == shm ]] && echo "$shm" || echo "$work")" "${compare[$1]}" ;;
  esac
}

order=(soar a b soar-shm)
declare -A compare=()
for spec in ${COMPARE_BINS:-}; do
  compare[${spec%%=*}]=${spec#*=}
  order+=("${spec%%=*}")
done
for round in $(seq 0 "$ROUNDS"); do
  for k in "${!order[@]}"; do
    contender "${order[$(((k + round) % ${#order[@]}))]}"
  done
  if [[ $round == 0 ]]; then : > "$results"; fi   # the warm-up round is not counted
  echo "round $round done, load $(cut -d' ' -f1 /proc/loadavg)" >&2
done

median_of() { awk -v n="$1" '$1 == n {print $2}' "$results" | bench_median; }
all_of() { awk -v n="$1" '$1 == n {printf "%s ", $2}' "$results"; }
soar=$(median_of soar); soar_shm=$(median_of soar-shm); a=$(median_of a); b=$(median_of b)
rss=$(awk '$1 == "soar" {print $3}' "$results" | bench_median | cut -d. -f1)
echo
echo "poll of $N messages, added RTT ${RTT_MS} ms, medians of $ROUNDS rounds (seconds; every run in brackets)"
row() { printf '%-38s %7s s %7s msg/s   [ %s]\n' "$1" "$2" "$(python3 -c "print(int($N / $2))")" "$(all_of "$3")"; }
row "soar-imap on poll (data_dir on disk)" "$soar" soar
row "soar-imap on poll (data_dir on tmpfs)" "$soar_shm" soar-shm
row "(a) imaplib one UID FETCH 1:*" "$a" a
row "(b) imaplib UID FETCH n per message" "$b" b
for name in "${!compare[@]}"; do
  other=$(median_of "$name")
  if [[ ${COMPARE_ON:-disk} == shm ]]; then
    row "$name on poll (data_dir on tmpfs)" "$other" "$name"
    echo "  $name = ${compare[$name]}: $name/soar-shm = $(python3 -c "print(round($other / $soar_shm, 2))")x"
  else
    row "$name on poll (data_dir on disk)" "$other" "$name"
    echo "  $name = ${compare[$name]}: $name/soar = $(python3 -c "print(round($other / $soar, 2))")x"
  fi
done
echo "soar-imap peak RSS (median): $rss KB"
python3 - "$soar" "$soar_shm" "$a" "$b" <<'PY'
import sys
soar, shm, a, b = map(float, sys.argv[1:])
print(f"ratios: soar/a = {soar / a:.2f}x (target <= 1.5x); soar-shm/a = {shm / a:.2f}x; "
      f"b/soar = {b / soar:.2f}x (target >= 20x); b/soar-shm = {b / shm:.2f}x")
PY
echo "load average after the rounds: $(cut -d' ' -f1-3 /proc/loadavg)"

# Latency: each command LATENCY times, alternating, medians in milliseconds. Test
# connectivity EXAMINEs the folder, and Dovecot's EXAMINE of a 10,000-message maildir
# alone takes ~0.2 s (it lists the directory), so connectivity is measured twice: on
# INBOX and on a folder of the 8 fixtures/eml/basic emails, which shows the client's
# own cost.
doveadm -c "$work/dovecot.conf" mailbox create -u "$bench_user" Small
for f in "$bench_root"/fixtures/eml/basic/*.eml; do
  doveadm -c "$work/dovecot.conf" save -u "$bench_user" -m Small < "$f"
done
small="$bench_root/fixtures/eml/basic/001-plain-text-iocs.eml"
jq -n --arg p "$small" --arg d "$work/lat-data" '{identifier:"parse_email",config:{data_dir:$d},parameters:[{path:$p}]}' > "$work/parse.json"
for folder in INBOX Small; do
  jq -n --argjson c "$config" --arg d "$work/lat-data" --arg f "$folder" \
    '{identifier:"test_asset_connectivity",config:($c + {data_dir:$d, folder:$f})}' > "$work/conn-$folder.json"
done
: > "$work/lat.txt"
ms() { python3 -c "print(round(($2 - $1) * 1000, 1))"; }
for i in $(seq "$LATENCY"); do
  t0=$(bench_now); "$bench_bin" --version > /dev/null; t1=$(bench_now)
  echo "version $(ms "$t0" "$t1")" >> "$work/lat.txt"
  t0=$(bench_now); "$bench_bin" --request "$work/parse.json" > /dev/null 2>&1; t1=$(bench_now)
  echo "parse $(ms "$t0" "$t1")" >> "$work/lat.txt"
  for folder in INBOX Small; do
    t0=$(bench_now); "$bench_bin" --request "$work/conn-$folder.json" > "$work/conn.out" 2>&1; t1=$(bench_now)
    grep -q '"status":"success"' "$work/conn.out" || { echo "test connectivity failed" >&2; cat "$work/conn.out" >&2; exit 1; }
    echo "connectivity-$folder $(ms "$t0" "$t1")" >> "$work/lat.txt"
    t0=$(bench_now); "${py[@]}" --folder "$folder" connectivity > /dev/null 2>&1; t1=$(bench_now)
    echo "py-connectivity-$folder $(ms "$t0" "$t1")" >> "$work/lat.txt"
  done
  t0=$(bench_now); "$bench_python" -c pass; t1=$(bench_now)
  echo "py-start $(ms "$t0" "$t1")" >> "$work/lat.txt"
done
lat() { awk -v n="$1" '$1 == n {print $2}' "$work/lat.txt" | bench_median; }
echo
echo "latency, medians of $LATENCY runs (ms, process start to exit):"
lat_row() { printf '  %-58s %8s\n' "$1" "$(lat "$2")"; }
lat_row "soar-imap --version" version
lat_row "soar-imap parse email (one 1 KB email)" parse
lat_row "soar-imap test connectivity, INBOX ($N messages)" connectivity-INBOX
lat_row "imaplib login + LIST + EXAMINE + logout, INBOX" py-connectivity-INBOX
lat_row "soar-imap test connectivity, 8-message folder" connectivity-Small
lat_row "imaplib login + LIST + EXAMINE + logout, 8-message folder" py-connectivity-Small
lat_row "python3 -c pass (interpreter start)" py-start
# Where test connectivity's time goes on the small folder: one more run of each, with
# the time between soar-imap's log lines and imaplib's steps.
"$bench_bin" --log-format json --request "$work/conn-Small.json" > /dev/null 2> "$work/conn.log"
echo "  soar-imap test connectivity steps (ms since the previous log line):"
python3 - "$work/conn.log" <<'PY'
import datetime, json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
stamp = lambda l: datetime.datetime.fromisoformat(l["timestamp"].replace("Z", "+00:00"))
print("   ", "; ".join(f'{l["message"]}: {(stamp(l) - stamp(p)).total_seconds() * 1000:.1f}'
                     for p, l in zip(lines, lines[1:])))
PY
echo "  imaplib steps: $("${py[@]}" --folder Small connectivity 2>&1 >/dev/null)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
