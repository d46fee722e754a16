#!/usr/bin/env bash
# Peak RSS and wall time of one scheduled poll of N messages (the first N emails of the
# seeded benchmark corpus, gen_corpus.py: 7.4 KB median) against a throwaway Dovecot on
# loopback (implicit TLS), for each N given, RUNS times each with a fresh data_dir; the
# response goes to a file. Prints every run and the medians.
#
# Usage: cargo build --release --locked && benches/poll_memory.sh [RUNS] N...
#   e.g. benches/poll_memory.sh 3 1000 10000 50000
# DATA_ROOT (default: the throwaway directory, on disk) is where each run's data_dir goes.
# Needs dovecot-imapd, openssl, python3, jq and GNU time (/usr/bin/time), as root.
set -euo pipefail
RUNS=${1:-3}
shift || true
sizes=("${@:-1000}")
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=benches/dovecot_env.sh
source "$here/dovecot_env.sh"
[[ -x $bench_bin ]] || { echo "build first: cargo build --release --locked" >&2; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $("$bench_bin" --version)"
bench_dovecot_start
root=${DATA_ROOT:-$work}
for n in "${sizes[@]}"; do
  bench_dovecot_empty
  bench_dovecot_load "$n"
  : > "$work/runs.txt"
  for run in $(seq "$RUNS"); do
    data="$root/data-$n-$run"
    rm -rf "$data"
    jq -n --argjson c "$bench_config" --arg d "$data" '{identifier:"on_poll",config:($c + {data_dir:$d})}' > "$work/req.json"
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -v "$bench_bin" --request "$work/req.json" 2> "$work/time.txt" > "$work/out.json" || true
    ingested=$(jq '.action_results[0].summary.emails_ingested' "$work/out.json")
    rss=$(awk '/Maximum resident/ {print $NF}' "$work/time.txt")
    wall=$(awk '/Elapsed \(wall/ {print $NF}' "$work/time.txt" | awk -F: '{print (NF == 3 ? $1 * 3600 + $2 * 60 + $3 : $1 * 60 + $2)}')
    echo "N=$n run=$run ingested=$ingested peak_rss_kb=$rss wall_s=$wall load=$load"
    [[ $ingested == "$n" ]] || { echo "only $ingested of $n ingested" >&2; exit 1; }
    echo "$rss $wall" >> "$work/runs.txt"
    rm -rf "$data"
  done
  rss=$(cut -d' ' -f1 "$work/runs.txt" | bench_median | cut -d. -f1)
  wall=$(cut -d' ' -f2 "$work/runs.txt" | bench_median)
  echo "N=$n median: peak_rss_kb=$rss wall_s=$wall msg_per_s=$(python3 -c "print(int($n / $wall))")"
done
