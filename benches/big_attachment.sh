#!/usr/bin/env bash
# Peak RSS and wall time of `parse email` of one email carrying a 100 MB attachment
# (base64, so the message is ~137 MB), read from a file (`path`) and, with --raw, sent
# inline in the request (`raw_email`). The email is generated (seeded, deterministic) in
# target/bench/, never committed. Target: peak RSS <= 3x the message size.
#
# Usage: cargo build --release --locked && benches/big_attachment.sh [RUNS] [--raw]
# COMPARE_BIN=/path/to/another/soar-imap runs that binary too, alternating with this one.
# Needs python3, jq and GNU time (/usr/bin/time).
set -euo pipefail
runs=${1:-3}
raw=${2:-}
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="$root/target/release/soar-imap"
dir="$root/target/bench"
mkdir -p "$dir"
eml="$dir/big-attachment.eml"
if [[ ! -s $eml ]]; then
  python3 - "$eml" <<'PY'
import base64, random, sys
blob = random.Random(100).randbytes(100 * 1024 * 1024)
with open(sys.argv[1], "wb") as f:
    f.write(b"From: Alice <alice@example.com>\r\nTo: soc@example.org\r\n"
            b"Subject: big attachment\r\nMessage-ID: <big@example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nSee the attached dump from http://evil.example.com/x\r\n"
            b"--b\r\nContent-Type: application/octet-stream; name=dump.bin\r\n"
            b"Content-Disposition: attachment; filename=dump.bin\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n")
    b64 = base64.b64encode(blob)
    for i in range(0, len(b64), 76):
        f.write(b64[i:i + 76] + b"\r\n")
    f.write(b"--b--\r\n")
PY
fi
size=$(stat -c %s "$eml")
data="$dir/big-attachment-data"
if [[ $raw == --raw ]]; then
  req="$dir/big-attachment-raw.json"
  python3 - "$eml" "$data" "$req" <<'PY'
import json, sys
eml, data, req = sys.argv[1:]
with open(eml, "rb") as f:
    text = f.read().decode("ascii")
with open(req, "w") as f:
    json.dump({"identifier": "parse_email", "config": {"data_dir": data},
               "parameters": [{"raw_email": text}]}, f)
PY
else
  req="$dir/big-attachment-path.json"
  jq -n --arg p "$eml" --arg d "$data" \
    '{identifier:"parse_email",config:{data_dir:$d},parameters:[{path:$p}]}' > "$req"
fi
echo "message: $eml, $size bytes; request: $req"
bins=("$bin")
[[ -n ${COMPARE_BIN:-} ]] && bins+=("$COMPARE_BIN")
for i in $(seq "$runs"); do
  for b in "${bins[@]}"; do
    rm -rf "$data"
    /usr/bin/time -f "%M %e" -o "$dir/time.txt" "$b" --request "$req" > "$dir/out.json" 2>/dev/null
    read -r kb secs < "$dir/time.txt"
    status=$(jq -r '.status' "$dir/out.json")
    files=$(jq '[.containers[0].artifacts[] | select(.name == "Vault Artifact")] | length' "$dir/out.json")
    echo "bin=$b run=$i status=$status vault_artifacts=$files peak_rss_kb=$kb wall_s=$secs ratio=$(python3 -c "print(round($kb * 1024 / $size, 2))")"
  done
done
rm -rf "$data" "$dir/out.json"
