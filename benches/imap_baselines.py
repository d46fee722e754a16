#!/usr/bin/env python3
"""IMAP baselines for the poll benchmarks, with Python's stdlib imaplib over implicit TLS
trusting the throwaway CA. Each mode prints one line: mode, messages, bytes, seconds.

  batched      login, EXAMINE, one `UID FETCH 1:* BODY.PEEK[]`, read every byte, logout:
               the practical limit of moving the mailbox's bytes to a client.
  per-message  the reference app's pattern: login, `UID SEARCH ALL`, then one
               `UID FETCH n (RFC822)` round trip per message, logout. The folder is
               opened with EXAMINE (read-only), so RFC822 sets no \\Seen flag and the
               server writes nothing: this is kinder to the baseline than the
               reference's read-write SELECT, and every round sees the same mailbox.
  connectivity login, LIST, EXAMINE, logout (what test connectivity does).
  delay-proxy  not a baseline: a loopback TCP proxy adding a round-trip time, to see
               how each client's pattern fares on a real network.

Usage: imap_baselines.py MODE --port P --ca CA.pem --user U --password PW [--folder F]
       imap_baselines.py delay-proxy --port P --listen-port L --rtt-ms MS
"""

import argparse
import imaplib
import ssl
import sys
import time


def connect(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    conn = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=ctx)
    conn.login(args.user, args.password)
    return conn


def check(typ, data, what):
    if typ != "OK":
        sys.exit(f"{what} failed: {typ} {data}")


def literals(data):
    """(messages, bytes) of the literals in an imaplib FETCH answer."""
    count = total = 0
    for item in data:
        if isinstance(item, tuple):
            count += 1
            total += len(item[1])
    return count, total


def batched(args):
    conn = connect(args)
    check(*conn.select(args.folder, readonly=True), "EXAMINE")
    typ, data = conn.uid("FETCH", "1:*", "(BODY.PEEK[])")
    check(typ, data, "UID FETCH 1:*")
    conn.logout()
    return literals(data)


def per_message(args):
    conn = connect(args)
    check(*conn.select(args.folder, readonly=True), "EXAMINE")
    typ, data = conn.uid("SEARCH", None, "ALL")
    check(typ, data, "UID SEARCH ALL")
    count = total = 0
    for uid in data[0].split():
        typ, answer = conn.uid("FETCH", uid, "(RFC822)")
        check(typ, answer, f"UID FETCH {uid.decode()}")
        n, b = literals(answer)
        count += n
        total += b
    conn.logout()
    return count, total


def connectivity(args):
    """Also prints how long each step took, on stderr."""
    marks = [time.perf_counter()]
    ctx = ssl.create_default_context(cafile=args.ca)
    conn = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=ctx)
    marks.append(time.perf_counter())
    conn.login(args.user, args.password)
    marks.append(time.perf_counter())
    check(*conn.list('""', "*"), "LIST")
    marks.append(time.perf_counter())
    check(*conn.select(args.folder, readonly=True), "EXAMINE")
    marks.append(time.perf_counter())
    conn.logout()
    marks.append(time.perf_counter())
    steps = ["connect+TLS+greeting", "LOGIN", "LIST", "EXAMINE", "LOGOUT"]
    print(" ".join(f"{step}={(b - a) * 1000:.1f}ms" for step, a, b in zip(steps, marks, marks[1:])),
          file=sys.stderr)
    return 0, 0


def delay_proxy(args):
    """Forward --listen-port to --port, delaying every chunk by half of --rtt-ms in each
    direction (so a round trip costs --rtt-ms more), without limiting throughput: chunks
    are queued with their due time, not sent one delay after another. Runs until killed.
    (The kernel's netem would do this, but containers rarely have it.)"""
    import asyncio

    one_way = args.rtt_ms / 2000

    async def pipe(reader, writer):
        loop = asyncio.get_running_loop()
        queue = asyncio.Queue()

        async def pump():
            while True:
                data = await reader.read(256 * 1024)
                queue.put_nowait((loop.time() + one_way, data))
                if not data:
                    return

        async def drain():
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not data:
                    writer.close()
                    return
                writer.write(data)
                await writer.drain()

        try:
            await asyncio.gather(pump(), drain())
        except (ConnectionError, OSError):
            writer.close()

    async def serve(client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", args.port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))

    async def run():
        server = await asyncio.start_server(serve, "127.0.0.1", args.listen_port)
        print(f"delay proxy 127.0.0.1:{args.listen_port} -> {args.port}, +{args.rtt_ms} ms per round trip",
              flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["batched", "per-message", "connectivity", "delay-proxy"])
    ap.add_argument("--listen-port", type=int, help="delay-proxy: the port to listen on")
    ap.add_argument("--rtt-ms", type=float, default=0.0, help="delay-proxy: added round-trip time")
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ca")
    ap.add_argument("--user")
    ap.add_argument("--password")
    ap.add_argument("--folder", default="INBOX")
    args = ap.parse_args()
    if args.mode == "delay-proxy":
        delay_proxy(args)
        return
    run = {"batched": batched, "per-message": per_message, "connectivity": connectivity}
    started = time.perf_counter()
    count, total = run[args.mode](args)
    elapsed = time.perf_counter() - started
    print(f"mode={args.mode} messages={count} bytes={total} seconds={elapsed:.3f}")


if __name__ == "__main__":
    main()
