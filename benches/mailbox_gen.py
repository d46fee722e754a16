#!/usr/bin/env python3
"""Fill a maildir with the first N emails of the seeded benchmark corpus (gen_corpus.py,
the same emails the extraction benchmarks use), in order, for the poll benchmarks.

Writing the maildir directly is much faster than `doveadm import` for 50,000 messages;
the file names sort in corpus order, so Dovecot's UIDs follow it (UID k = email k-1).

Usage: mailbox_gen.py N MAILDIR [--seed S]
"""

import argparse
import os
import shutil
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("n", type=int)
    ap.add_argument("maildir")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    staging = os.path.join(args.maildir, ".gen")
    gen = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen_corpus.py"),
           staging, "--count", str(args.n)]
    if args.seed is not None:
        gen += ["--seed", str(args.seed)]
    subprocess.run(gen, check=True, stdout=sys.stderr)
    cur = os.path.join(args.maildir, "cur")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(args.maildir, sub), exist_ok=True)
    for seq, name in enumerate(sorted(os.listdir(staging)), start=1):
        # `:2,` is the maildir info of a message already seen by a mail client (no flags).
        os.rename(os.path.join(staging, name), os.path.join(cur, f"{1700000000 + seq}.M{seq}P1.bench:2,"))
    shutil.rmtree(staging)


if __name__ == "__main__":
    main()
