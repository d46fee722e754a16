#!/usr/bin/env python3
"""eml_parser (PyPI `eml-parser`, GOVCERT-LU) over a list of emails, as a speed baseline.

One `EmlParser` is built once (its Public Suffix List load is not counted per message)
and each message goes through `decode_email_bytes` with the raw body kept
(`include_raw_body=True`), so its URL, e-mail, domain and IP extraction reports the
indicators themselves rather than their hashes; attachments are parsed and hashed
(`parse_attachments=True`, the default) but their bytes not kept.

Usage: eml_parser_baseline.py LIST   (LIST: a file with one email path per line)
Prints one summary line: emails, failures, indicators found by kind. Needs eml-parser
(benches/extract_side_by_side.sh installs it into a throwaway virtualenv).
"""

import json
import logging
import sys

import eml_parser

# eml_parser logs a warning for every odd header; the baseline should not pay for a
# terminal full of them.
logging.disable(logging.WARNING)


def main():
    with open(sys.argv[1]) as f:
        paths = [line.rstrip("\n") for line in f if line.strip()]
    parser = eml_parser.EmlParser(include_raw_body=True, include_attachment_data=False)
    counts = {"uri": 0, "domain": 0, "ip": 0, "email": 0, "attachment": 0}
    failed = 0
    for path in paths:
        with open(path, "rb") as f:
            raw = f.read()
        try:
            parsed = parser.decode_email_bytes(raw)
        except Exception:
            failed += 1
            continue
        for body in parsed.get("body", []):
            for kind in ("uri", "domain", "ip", "email"):
                counts[kind] += len(body.get(kind, []))
        counts["attachment"] += len(parsed.get("attachment", []))
    print(json.dumps({"pipeline": "eml_parser", "emails": len(paths), "failed": failed, "found": counts}))


if __name__ == "__main__":
    main()
