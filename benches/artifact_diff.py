#!/usr/bin/env python3
"""What a change does to the indicators: two soar-imap binaries, one corpus.

Runs `parse email` of each binary over every file under the given directories (one
request per binary) and prints, per artifact class (IP, URL, Domain, Hash), how many
artifacts each produced, and samples of the values that disappeared and appeared, with
the file they came from, to check by hand.

    benches/artifact_diff.py BEFORE_BINARY AFTER_BINARY DIR [DIR ...] [--samples N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

CLASSES = {
    "IP Artifact": "sourceAddress",
    "URL Artifact": "requestURL",
    "Domain Artifact": "destinationDnsDomain",
    "Hash Artifact": "fileHash",
}


def files_under(dirs: list[Path]) -> list[Path]:
    found: list[Path] = []
    for d in dirs:
        found.extend(
            p
            for p in d.rglob("*")
            if p.is_file()
            and not p.name.endswith((".json", ".md"))
            and not p.name.lower().startswith(("license", "copying"))
        )
    return sorted(found)


def artifacts(binary: str, files: list[Path]) -> dict[Path, dict[str, set[str]]]:
    """Per file, per class, the set of values (a file whose parse failed maps to {})."""
    with tempfile.TemporaryDirectory() as home:
        request = {
            "identifier": "parse_email",
            "config": {"data_dir": home},
            "parameters": [{"path": str(p)} for p in files],
        }
        run = subprocess.run(
            [binary],
            input=json.dumps(request).encode(),
            capture_output=True,
            check=False,
        )
    if b"panicked" in run.stderr:
        sys.exit(f"{binary} panicked:\n{run.stderr.decode(errors='replace')}")
    response = json.loads(run.stdout)
    containers = response.get("containers", [])
    results = response["action_results"]
    out: dict[Path, dict[str, set[str]]] = {}
    # one container per successful result, in order
    it = iter(containers)
    for path, result in zip(files, results, strict=True):
        per_class: dict[str, set[str]] = {name: set() for name in CLASSES}
        if result["status"] == "success":
            container = next(it)
            for artifact in container["artifacts"]:
                key = CLASSES.get(artifact["name"])
                if key:
                    per_class[artifact["name"]].add(artifact["cef"][key])
        out[path] = per_class
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before")
    parser.add_argument("after")
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args()
    files = files_under(args.dirs)
    before = artifacts(args.before, files)
    after = artifacts(args.after, files)
    print(f"{len(files)} files under {', '.join(str(d) for d in args.dirs)}")
    print(f"| class | before | after | removed | added | files changed |")
    print(f"|---|---:|---:|---:|---:|---:|")
    for name in CLASSES:
        b = sum(len(before[f][name]) for f in files)
        a = sum(len(after[f][name]) for f in files)
        removed = [(v, f) for f in files for v in before[f][name] - after[f][name]]
        added = [(v, f) for f in files for v in after[f][name] - before[f][name]]
        changed = sum(1 for f in files if before[f][name] != after[f][name])
        print(f"| {name} | {b} | {a} | {len(removed)} | {len(added)} | {changed} |")
        for label, pairs in (("removed", removed), ("added", added)):
            if not pairs:
                continue
            common = Counter(v for v, _ in pairs).most_common(5)
            print(f"\n{name} {label}, most frequent: {common}")
            step = max(1, len(pairs) // args.samples)
            for v, f in pairs[::step][: args.samples]:
                print(f"  {label}: {v!r}  ({f.relative_to(f.parents[1])})")
        print()


if __name__ == "__main__":
    main()
