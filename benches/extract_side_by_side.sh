#!/usr/bin/env bash
# Extraction throughput of soar-imap against two Python baselines, side by side on one core.
#
# Usage: benches/extract_side_by_side.sh [ROUNDS]        (default 5 rounds)
# Environment: CORE (default 1), SEED (generator seed, default the generator's),
#              SOAR_IMAP_CORPUS (default ../shared/corpus; skipped when absent),
#              BASELINE_BIN (another soar-imap binary, e.g. a release build of an earlier
#              commit: timed as `soar-imap-baseline` and `soar-imap-baseline-disk`, like
#              soar-imap and soar-imap-disk, in the same rounds, so a change is measured
#              against its parent under the same load),
#              TOOLS (the contenders, default "soar-imap soar-imap-disk reference
#              eml_parser", plus both baselines when BASELINE_BIN is set; ratios to a
#              contender left out print as n/a).
#
# Generates the seeded corpus (benches/gen_corpus.py, 10,000 emails) into
# target/bench-corpus/, builds the release binary, installs the baselines into throwaway
# virtualenvs under target/ (pinned versions, from PyPI), then runs ROUNDS rounds; each
# round runs every contender once per corpus, pinned with `taskset -c $CORE`, in an order
# that rotates from round to round so that a burst of load elsewhere does not always hit
# the same one:
#   soar-imap        the release binary's `parse email` over every file in ONE request
#                    (parameters: a list of {"path": ...}), stdout to /dev/null, data_dir
#                    (the vault) on tmpfs, fresh each run;
#   soar-imap-disk   the same with data_dir on disk (each attachment written and fsynced);
#   reference        benches/reference_pipeline.py: the reference app's pipeline, per message;
#   eml_parser       benches/eml_parser_baseline.py: eml-parser with URL/IP extraction.
# Each run is timed with GNU time (wall and CPU). Prints the machine, the load average before
# and after, per-run figures, and a table of medians (emails/s, by wall clock and by CPU
# time) and ratios to the reference; the same goes to target/bench-results/.
# Needs python3 (with venv), GNU time (/usr/bin/time), taskset and a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
core=${CORE:-1}
shared=${SOAR_IMAP_CORPUS:-../shared/corpus}
root=$PWD
corpus=$root/target/bench-corpus
results=$root/target/bench-results
mkdir -p "$results"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log=$results/extract-side-by-side-$stamp.tsv
report=$results/extract-side-by-side-$stamp.md

cargo build --release --locked --quiet
bin=$root/target/release/soar-imap

rm -rf "$corpus"
python3 benches/gen_corpus.py "$corpus" ${SEED:+--seed "$SEED"} | tee "$results/corpus-$stamp.txt"

venv() { # venv DIR PACKAGE==VERSION...: a throwaway virtualenv with exactly these packages
    local dir=$1; shift
    if [ "$(cat "$dir/pins" 2>/dev/null)" != "$*" ]; then
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
        echo "$*" > "$dir/pins"
    fi
}
venv target/bench-venv-ref beautifulsoup4==4.15.0 django==5.2.19
venv target/bench-venv-eml eml-parser==4.4.0

lists=$root/target/bench-lists
mkdir -p "$lists"
find "$corpus" -type f -name '*.eml' | sort > "$lists/generated.txt"
corpora=(generated)
if [ -d "$shared" ]; then
    # Every file but the corpus's own documentation (its README and licence texts).
    find "$(cd "$shared" && pwd)" -type f ! -iname '*.md' ! -iname 'copying*' ! -iname '*license*' \
        | sort > "$lists/shared.txt"
    corpora+=(shared)
else
    echo "no shared corpus at $shared: only the generated corpus is timed" >&2
fi
for c in "${corpora[@]}"; do
    python3 - "$lists/$c.txt" > "$lists/$c.request.json" <<'PY'
import json, sys
paths = [line.rstrip("\n") for line in open(sys.argv[1]) if line.strip()]
print(json.dumps({"identifier": "parse_email", "parameters": [{"path": p} for p in paths]}))
PY
done

tmpfs=/dev/shm
[ -d "$tmpfs" ] && [ -w "$tmpfs" ] || tmpfs=$root/target
scratch_tmpfs=$(mktemp -d "$tmpfs/soar-bench.XXXXXX")
scratch_disk=$(mktemp -d "$root/target/soar-bench.XXXXXX")
trap 'rm -rf "$scratch_tmpfs" "$scratch_disk"' EXIT

run() { # run CORPUS TOOL ROUND
    local c=$1 tool=$2 round=$3 out=$results/last-$2-$1.out timing data status=0
    timing=$(mktemp)
    case $tool in
        soar-imap | soar-imap-disk | soar-imap-baseline | soar-imap-baseline-disk)
            local exe=$bin
            case $tool in *-disk) data=$scratch_disk/data ;; *) data=$scratch_tmpfs/data ;; esac
            case $tool in soar-imap-baseline*) exe=$BASELINE_BIN ;; esac
            rm -rf "$data"
            SOAR_IMAP_HOME=$data /usr/bin/time -f '%e %U %S' -o "$timing" \
                taskset -c "$core" "$exe" --request "$lists/$c.request.json" > /dev/null 2> "$out" || status=$?
            # 1 means some email failed; the generated corpus must have none.
            if [ "$status" -gt 1 ] || { [ "$c" = generated ] && [ "$status" -ne 0 ]; }; then
                echo "soar-imap failed on $c (exit $status):" >&2; tail -5 "$out" >&2; exit 1
            fi ;;
        reference)
            /usr/bin/time -f '%e %U %S' -o "$timing" taskset -c "$core" \
                target/bench-venv-ref/bin/python benches/reference_pipeline.py "$lists/$c.txt" > "$out" ;;
        eml_parser)
            /usr/bin/time -f '%e %U %S' -o "$timing" taskset -c "$core" \
                target/bench-venv-eml/bin/python benches/eml_parser_baseline.py "$lists/$c.txt" > "$out" 2>/dev/null ;;
    esac
    read -r wall user sys < <(tail -1 "$timing")
    rm -f "$timing"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$c" "$tool" "$round" "$(wc -l < "$lists/$c.txt")" "$wall" "$user" "$sys" | tee -a "$log"
}

{
    echo "# extraction side by side, $stamp"
    echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)"
    echo "tools: $(rustc --version), $(python3 --version), core $core, $rounds rounds"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$report"
printf 'corpus\ttool\tround\temails\twall_s\tuser_s\tsys_s\n' | tee "$log"
read -r -a tools <<< "${TOOLS:-soar-imap soar-imap-disk reference eml_parser${BASELINE_BIN:+ soar-imap-baseline soar-imap-baseline-disk}}"
for round in $(seq 1 "$rounds"); do
    for c in "${corpora[@]}"; do
        for k in "${!tools[@]}"; do
            run "$c" "${tools[$(((k + round - 1) % ${#tools[@]}))]}" "$round"
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$report"
for c in "${corpora[@]}"; do
    for t in reference eml_parser; do
        if [ -f "$results/last-$t-$c.out" ]; then
            echo "$c $t: $(cat "$results/last-$t-$c.out")" | tee -a "$report"
        fi
    done
done

python3 - "$log" <<'PY' | tee -a "$report"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print()
print("| corpus | contender | emails | median wall s | emails/s (wall) | emails/s (CPU) | vs reference (wall) | vs reference (CPU) | vs eml_parser (wall) | vs its baseline (wall) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
def ratio(other, mine):
    return f"{other / max(mine, 0.01):.2f}x" if other is not None else "n/a"
for corpus in dict.fromkeys(r["corpus"] for r in rows):
    med = {}
    for tool in dict.fromkeys(r["tool"] for r in rows):
        runs = [r for r in rows if r["corpus"] == corpus and r["tool"] == tool]
        n = int(runs[0]["emails"])
        wall = statistics.median(float(r["wall_s"]) for r in runs)
        cpu = statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in runs)
        med[tool] = (n, wall, cpu)
    for tool, (n, wall, cpu) in med.items():
        # soar-imap-disk against soar-imap-baseline-disk, soar-imap against soar-imap-baseline
        own_base = "soar-imap-baseline-disk" if tool.endswith("-disk") else "soar-imap-baseline"
        ref, eml, base = (med.get(t, (None, None, None)) for t in ("reference", "eml_parser", own_base))
        print(f"| {corpus} | {tool} | {n} | {wall:.2f} | {n / wall:,.0f} | {n / max(cpu, 0.01):,.0f} "
              f"| {ratio(ref[1], wall)} | {ratio(ref[2], cpu)} | {ratio(eml[1], wall)} | {ratio(base[1], wall)} |")
PY
echo "runs: $log; report: $report"
