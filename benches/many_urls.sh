#!/usr/bin/env bash
# Peak RSS and wall time of `parse email` of one email of ~7 MB whose text/plain body
# holds 200,000 distinct URLs, each on a host of its own (so Domain Artifacts multiply
# too), plus one small attachment (its Vault Artifact must survive any cap). The email is
# generated (seeded, deterministic) in target/bench/, never committed. Target (issue 12):
# peak RSS <= 3x the message size + 64 MB. Prints every run, then the medians, the limit,
# and the artifact count and parse warnings of the response.
#
# Usage: benches/many_urls.sh [RUNS]    (builds the release binary first)
# COMPARE_BIN=/path/to/another/soar-imap runs that binary too, alternating with this one.
# Needs python3, jq and GNU time (/usr/bin/time).
set -euo pipefail
runs=${1:-5}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release/soar-imap"
dir="$root/target/bench"
mkdir -p "$dir"
(cd "$root" && cargo build --release --locked --quiet)
eml="$dir/many-urls.eml"
if [[ ! -s $eml ]]; then
  python3 - "$eml" <<'PY'
import random, sys
rng = random.Random(200000)
lines = []
for i in range(200_000):
    # host h000000 .. h199999: every URL, and every URL's host, is distinct
    path = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5))
    lines.append(f"https://h{i:06d}.example.com/{path}\r\n")
body = "".join(lines).encode()
with open(sys.argv[1], "wb") as f:
    f.write(b"From: Alice <alice@example.com>\r\nTo: soc@example.org\r\n"
            b"Subject: many urls\r\nMessage-ID: <many-urls@example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\n")
    f.write(body)
    f.write(b"--b\r\nContent-Type: application/octet-stream; name=note.bin\r\n"
            b"Content-Disposition: attachment; filename=note.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\nAAECAwQFBgcICQ==\r\n--b--\r\n")
PY
fi
size=$(stat -c %s "$eml")
data="$dir/many-urls-data"
req="$dir/many-urls.json"
jq -n --arg p "$eml" --arg d "$data" \
  '{identifier:"parse_email",config:{data_dir:$d},parameters:[{path:$p}]}' > "$req"
echo "message: $eml, $size bytes; request: $req"
echo "command: SOAR_IMAP_HOME=$data /usr/bin/time -f '%e %M' BIN --request $req"
bins=("$bin")
[[ -n ${COMPARE_BIN:-} ]] && bins+=("$COMPARE_BIN")
for k in "${!bins[@]}"; do : > "$dir/many-urls-runs-$k.txt"; done
for i in $(seq "$runs"); do
  for k in "${!bins[@]}"; do
    b=${bins[$k]}
    rm -rf "$data"
    SOAR_IMAP_HOME=$data /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$b" --request "$req" \
      > "$dir/many-urls-out-$k.json" 2>/dev/null
    read -r secs kb < "$dir/time.txt"
    status=$(jq -r '.status' "$dir/many-urls-out-$k.json")
    echo "bin=$b run=$i status=$status peak_rss_kb=$kb wall_s=$secs"
    echo "$kb $secs" >> "$dir/many-urls-runs-$k.txt"
  done
done
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
for k in "${!bins[@]}"; do
  kb=$(cut -d' ' -f1 "$dir/many-urls-runs-$k.txt" | median)
  secs=$(cut -d' ' -f2 "$dir/many-urls-runs-$k.txt" | median)
  python3 - "${bins[$k]}" "$size" "$kb" "$secs" <<'PY'
import sys
b, size, kb, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rss = kb * 1024
limit = 3 * size + 64 * 1024 * 1024
print(f"{b}: median peak RSS {rss / 2**20:.1f} MiB ({kb:.0f} KB), {rss / size:.2f}x the message; "
      f"limit 3x + 64 MiB = {limit / 2**20:.1f} MiB ({'within' if rss <= limit else 'OVER'}); "
      f"median wall {secs} s")
PY
  # The last run's response: what the container holds.
  jq -r '"  artifacts: " + (.action_results[0].summary.artifact_count | tostring)
    + " (" + ([.containers[0].artifacts | group_by(.name)[] | "\(.[0].name): \(length)"] | join(", ")) + ")",
    "  parse warnings: " + (.action_results[0].data[0].parse_warnings | tojson)' "$dir/many-urls-out-$k.json"
  rm -f "$dir/many-urls-out-$k.json" "$dir/many-urls-runs-$k.txt"
done
rm -rf "$data" "$dir/time.txt"
