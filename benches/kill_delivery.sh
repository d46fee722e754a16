#!/usr/bin/env bash
# The kill experiment of issue 13: a scheduled poll of N emails from a throwaway Dovecot,
# killed with SIGKILL KILLS times at seeded random moments, then polled to completion.
# Reports, per binary, what a platform reading each response as one JSON document got:
# the containers of complete responses (distinct SDIs, against the folder's N), those
# flagged redelivered, those only ever written by cut-off runs, and the ledger's rows.
#
#   benches/kill_delivery.sh [N] [KILLS] [SEED]      (defaults 2000 5 1)
#   COMPARE_BIN=/path/to/older/soar-imap benches/kill_delivery.sh 2000 5 1
#
# Needs what benches/dovecot_env.sh needs (dovecot-imapd, openssl, python3, jq; root).
set -euo pipefail
n=${1:-2000}
kills=${2:-5}
seed=${3:-1}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=benches/dovecot_env.sh
source "$here/dovecot_env.sh"
(cd "$bench_root" && cargo build --release --locked -q)
bench_dovecot_start
bench_dovecot_load "$n"

request() { # asset
  jq -cn --argjson config "$bench_config" --arg asset "$1" \
    '{identifier:"on_poll", asset_id:$asset, config:$config,
      parameters:[{container_count:4294967295}]}'
}

# One binary's experiment: kills, then complete polls until one sends nothing.
experiment() { # name binary
  local name=$1 bin=$2 home="$work/home-$1" out="$work/out-$1"
  mkdir -p "$home" "$out"
  request "$name" > "$work/request-$name.json"
  # How long a whole poll takes, elsewhere: the kill moments are drawn within it.
  local scratch="$work/scratch-$name" start end whole_ms
  mkdir -p "$scratch"
  start=$(date +%s%N)
  SOAR_IMAP_HOME="$scratch" "$bin" < "$work/request-$name.json" > /dev/null 2>&1
  end=$(date +%s%N)
  whole_ms=$(( (end - start) / 1000000 ))
  local rng=$seed i delay
  for ((i = 1; i <= kills; i++)); do
    rng=$(( (rng * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff ))
    delay=$(( (rng >> 20) % (whole_ms + 1) ))
    SOAR_IMAP_HOME="$home" "$bin" < "$work/request-$name.json" > "$out/kill-$i.json" 2>/dev/null &
    local pid=$!
    sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for ((i = 1; i <= 4; i++)); do
    SOAR_IMAP_HOME="$home" "$bin" < "$work/request-$name.json" > "$out/complete-$i.json" 2>/dev/null || true
    [ "$(jq '.containers | length' "$out/complete-$i.json")" = 0 ] && break
  done
  python3 - "$name" "$n" "$kills" "$whole_ms" "$out" "$home/state.sqlite3" <<'PY'
import json, pathlib, sqlite3, sys
name, n, kills, whole_ms, out, db = sys.argv[1:]
delivered, redelivered, cut = set(), 0, set()
complete_kills = 0
for path in sorted(pathlib.Path(out).glob("*.json")):
    text = path.read_text()
    try:
        response = json.loads(text)
    except ValueError:
        for line in text.splitlines()[1:]:
            try:
                c = json.loads(line.lstrip(","))
            except ValueError:
                continue
            if isinstance(c, dict) and "source_data_identifier" in c:
                cut.add(c["source_data_identifier"])
        continue
    complete_kills += path.name.startswith("kill-")
    for c in response["containers"]:
        delivered.add(c["source_data_identifier"])
        redelivered += bool(c.get("redelivered"))
rows, sdis = sqlite3.connect(db).execute(
    "SELECT count(*), count(DISTINCT sdi) FROM ledger").fetchone()
print(f"{name}: whole poll {whole_ms} ms; {kills} kills ({complete_kills} finished first); "
      f"{len(cut)} containers written only by cut-off runs; {len(delivered)} of {n} emails "
      f"in complete responses ({int(n) - len(delivered)} never delivered); {redelivered} "
      f"redelivered; ledger {rows} rows, {sdis} distinct SDIs; "
      f"cut-off containers never delivered: {len(cut - delivered)}")
PY
}

experiment soar "$bench_bin"
if [ -n "${COMPARE_BIN:-}" ]; then
  experiment before "$COMPARE_BIN"
fi
