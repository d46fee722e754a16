#!/usr/bin/env bash
# Bulk `parse email`, whole process, against the stdlib-Python stand-in of the reference
# app's processor (issue 12: ">= 15x the stand-in, start-up and vault writes included").
#
# Usage: benches/bulk_side_by_side.sh [COUNT] [ROUNDS]   (defaults 2000 emails, 5 rounds)
# Environment: SEED (generator seed, default the generator's),
#              PYTHON (the stand-in's interpreter, default python3 resolved to its real
#              executable, so that no pyenv shim's start-up is timed),
#              BASELINE_BIN (another soar-imap binary, e.g. a release build of an earlier
#              commit: timed like soar-imap, as `soar-imap-baseline`, in the same rounds).
#
# Builds the release binary, makes sure target/bench-corpus/ holds the first COUNT emails
# of the seeded generated corpus (benches/gen_corpus.py; files already there with the
# right bytes are kept, others written), reads them once so that every run starts from a
# warm page cache, then runs ROUNDS rounds. Each round runs every contender once, one
# after another in an order that rotates from round to round, unpinned (every core), each
# with a FRESH data directory, timed by GNU time (wall, user, sys, peak RSS):
#   soar-imap        the release binary, ONE request of COUNT {"path": ...} parameters,
#                    SOAR_IMAP_HOME (data dir, vault included) on disk under target/,
#                    the response (containers included) to a file on disk, logs dropped;
#   soar-imap-tmpfs  the same with SOAR_IMAP_HOME under /dev/shm: what durability costs;
#   stdlib-python    benches/reference_stdlib.py LIST DIR/vault, DIR on disk under
#                    target/, its containers (JSON lines) to a file on disk;
#   soar-imap-baseline  BASELINE_BIN like soar-imap, when set.
# Every run's output is checked (outside the timing): a soar-imap response must parse,
# have COUNT action results, all successful, and exit 0; the stand-in must give COUNT
# containers and no failure. Prints the machine, the commit, the load average before and
# after, every run's figures, the artifacts each contender found (last round), and a
# table of medians with each contender's speed-up over the stand-in (its median wall
# time over the contender's); the same goes to target/bench-results/.
# Needs python3, GNU time (/usr/bin/time) and a Rust toolchain.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-2000}
rounds=${2:-5}
root=$PWD
corpus=$root/target/bench-corpus
lists=$root/target/bench-lists
results=$root/target/bench-results
mkdir -p "$results" "$lists"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
log=$results/bulk-side-by-side-$stamp.tsv
report=$results/bulk-side-by-side-$stamp.md
python=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}

if [ -n "${BASELINE_BIN:-}" ] && [ ! -x "$BASELINE_BIN" ]; then
    echo "BASELINE_BIN=$BASELINE_BIN is not an executable" >&2; exit 1
fi
cargo build --release --locked --quiet
bin=$root/target/release/soar-imap

# The first COUNT emails of the seeded corpus: regenerated in memory and compared with
# what target/bench-corpus/ holds (another script's corpus of the same seed is reused as
# is), written where missing or different. Same names and bytes as gen_corpus.py --count.
# LIST gets their paths, one a line.
list=$lists/bulk-$count.txt
request=$lists/bulk-$count.request.json
python3 - "$corpus" "$count" "${SEED:-}" "$list" <<'PY' | tee "$results/bulk-corpus-$stamp.txt"
import hashlib, random, sys
from pathlib import Path
sys.path.insert(0, "benches")
import gen_corpus
out, count = Path(sys.argv[1]), int(sys.argv[2])
seed = int(sys.argv[3]) if sys.argv[3] else gen_corpus.DEFAULT_SEED
out.mkdir(parents=True, exist_ok=True)
width = max(5, len(str(count - 1)))
digest, size, written, paths = hashlib.sha256(), 0, 0, []
for i in range(count):
    data = gen_corpus.message(random.Random(f"{seed}:{i}"))
    name = f"{i:0{width}d}.eml"
    path = out / name
    if not path.is_file() or path.read_bytes() != data:
        path.write_bytes(data)
        written += 1
    digest.update(f"{name}\0{len(data)}\0".encode())
    digest.update(data)
    size += len(data)
    paths.append(f"{path}\n")
Path(sys.argv[4]).write_text("".join(paths))
print(f"{count} emails in {out}: {size / 1e6:.1f} MB, seed {seed}, corpus sha256 "
      f"{digest.hexdigest()} ({count - written} reused, {written} written)")
PY
python3 - "$list" > "$request" <<'PY'
import json, sys
paths = [line.rstrip("\n") for line in open(sys.argv[1]) if line.strip()]
print(json.dumps({"identifier": "parse_email", "parameters": [{"path": p} for p in paths]}))
PY
xargs cat < "$list" > /dev/null # warm the page cache: every contender reads from memory

tmpfs=/dev/shm
[ -d "$tmpfs" ] && [ -w "$tmpfs" ] || { echo "no writable /dev/shm for soar-imap-tmpfs" >&2; exit 1; }
scratch_tmpfs=$(mktemp -d "$tmpfs/soar-bulk.XXXXXX")
scratch_disk=$(mktemp -d "$root/target/soar-bulk.XXXXXX")
trap 'rm -rf "$scratch_tmpfs" "$scratch_disk"' EXIT

# check TOOL OUT DIR SUMMARY: fail loudly unless the run gave every email's container;
# print its artifacts by class and the files it left in its data directory.
check() {
    python3 - "$1" "$2" "$count" "$(find "$3" -type f | wc -l)" "${4:-}" <<'PY'
import collections, json, sys
tool, out, count, files, summary = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
names = collections.Counter()
if tool == "stdlib-python":
    containers = [json.loads(line) for line in open(out)]
    s = json.loads(open(summary).read().strip().splitlines()[-1])
    if s["failed"] or len(containers) != count:
        sys.exit(f"{tool}: {len(containers)} containers of {count} emails, {s['failed']} failed")
else:
    try:
        response = json.load(open(out))
    except ValueError as e:
        sys.exit(f"{tool}: the response is not JSON: {e}")
    results = response.get("action_results", [])
    ok = sum(1 for r in results if r.get("status") == "success")
    if len(results) != count or ok != count:
        sys.exit(f"{tool}: {len(results)} action results ({ok} successful) for {count} emails")
    containers = response.get("containers", [])
for c in containers:
    names.update(a["name"] for a in c["artifacts"])
print(json.dumps({"containers": len(containers), "files_in_data_dir": int(files),
                  "artifacts": dict(sorted(names.items()))}))
PY
}

run() { # run TOOL ROUND
    local tool=$1 round=$2 timing dir out status=0
    timing=$(mktemp)
    # Each run's data directory is kept until the script ends: ext4 without a journal
    # (target/ on these machines) passes over inodes deleted in the last seconds to
    # minutes when it allocates one, so creating files right after deleting thousands
    # costs a scan per file (`recently_deleted`, 40% of a bulk run's samples in perf),
    # which would charge one run for the clean-up of the run before.
    case $tool in soar-imap-tmpfs) dir=$scratch_tmpfs/$tool-$round ;; *) dir=$scratch_disk/$tool-$round ;; esac
    out=$scratch_disk/out
    rm -f "$out"
    mkdir -p "$dir"
    case $tool in
        soar-imap | soar-imap-tmpfs | soar-imap-baseline)
            local exe=$bin
            [ "$tool" = soar-imap-baseline ] && exe=$BASELINE_BIN
            SOAR_IMAP_HOME=$dir /usr/bin/time -f '%e %U %S %M' -o "$timing" \
                "$exe" --request "$request" > "$out" 2> /dev/null || status=$?
            if [ "$status" -ne 0 ]; then
                echo "$tool failed (exit $status) on the generated corpus" >&2; exit 1
            fi
            check "$tool" "$out" "$dir" > "$results/last-bulk-$tool.txt" ;;
        stdlib-python)
            /usr/bin/time -f '%e %U %S %M' -o "$timing" \
                "$python" benches/reference_stdlib.py "$list" "$dir/vault" > "$out" 2> "$dir.summary"
            check "$tool" "$out" "$dir" "$dir.summary" > "$results/last-bulk-$tool.txt"
            rm -f "$dir.summary" ;;
    esac
    read -r wall user sys rss < <(tail -1 "$timing")
    rm -f "$timing" "$out"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$round" "$count" "$wall" "$user" "$sys" "$rss" | tee -a "$log"
}

{
    echo "# bulk parse email side by side, $stamp"
    echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/ {print $2}') GiB, $(uname -sr)"
    echo "disk (target/): $(df -T "$root/target" | awk 'NR == 2 {print $2}'); tmpfs: $(df -T "$tmpfs" | awk 'NR == 2 {print $2}')"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock || echo ' (src modified)')"
    echo "tools: $(rustc --version), $("$python" --version) ($python), unpinned, $count emails, $rounds rounds"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$report"
printf 'tool\tround\temails\twall_s\tuser_s\tsys_s\tmaxrss_kb\n' | tee "$log"
tools=(soar-imap soar-imap-tmpfs stdlib-python ${BASELINE_BIN:+soar-imap-baseline})
for round in $(seq 1 "$rounds"); do
    for k in "${!tools[@]}"; do
        run "${tools[$(((k + round - 1) % ${#tools[@]}))]}" "$round"
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$report"
echo | tee -a "$report"
for t in "${tools[@]}"; do
    echo "$t, last round: $(cat "$results/last-bulk-$t.txt")" | tee -a "$report"
done

python3 - "$log" <<'PY' | tee -a "$report"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
med = {}
for tool in dict.fromkeys(r["tool"] for r in rows):
    runs = [r for r in rows if r["tool"] == tool]
    med[tool] = (
        int(runs[0]["emails"]),
        statistics.median(float(r["wall_s"]) for r in runs),
        statistics.median(float(r["user_s"]) + float(r["sys_s"]) for r in runs),
        statistics.median(float(r["sys_s"]) for r in runs),
        statistics.median(int(r["maxrss_kb"]) for r in runs) / 1024,
    )
standin = med.get("stdlib-python", (0, None))[1]
print()
print("| contender | emails | median wall s | median CPU s (user+sys) | median sys s "
      "| median peak RSS MiB | emails/s (wall) | x faster than the stand-in (wall) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for tool, (n, wall, cpu, sys_s, rss) in med.items():
    ratio = f"{standin / max(wall, 0.01):.1f}x" if standin is not None else "n/a"
    print(f"| {tool} | {n} | {wall:.2f} | {cpu:.2f} | {sys_s:.2f} | {rss:.0f} "
          f"| {n / max(wall, 0.01):,.0f} | {ratio} |")
PY
echo "runs: $log; report: $report"
