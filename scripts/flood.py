#!/usr/bin/env python3
"""Connection floods against a clickgame server on loopback, with a prober (issue 9, item 2).

Starts the server itself on a free port (never a fixed one), floods it for --duration seconds,
and meanwhile sends `GET /api/time` from another loopback address on a fresh connection every
--probe-ms, timing each answer. Then it stops everything and prints a summary. Python 3.11,
standard library only.

    python3 scripts/flood.py slow-body [--conns 20000]            # from 127.0.0.1
    python3 scripts/flood.py websocket [--conns 20000 --addrs 400]  # from 127.0.1.x, 127.0.2.x ...
    options: --bin target/release/clickgame  --duration 30  --procs 2  --server-arg=--flag=value

slow-body:  each connection sends `POST /api/join` with `Content-Length: 100` and 4 bytes of
            it, then waits. When the server closes it, it reconnects after a second: the
            pressure stays on for the whole run.
websocket:  each connection completes a `clickgame.v1` WebSocket handshake and holds the socket
            (an unsolicited pong every 15 s keeps it from being silent); refused or closed
            ones retry after a second.

The flooders run in --procs processes, since one process may hold at most 20,000 descriptors
here (the hard limit). Only loopback addresses are ever used.
"""
import argparse
import asyncio
import random
import threading
import multiprocessing
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

PROBE_ADDR = "127.0.0.250"
HANDSHAKE = (
    "GET /api/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: clickgame.v1\r\n\r\n"
)
SLOW_BODY = (
    "POST /api/join HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    "Content-Length: 100\r\n\r\n{{\"na"
)
# A masked, empty pong frame.
PONG = bytes([0x8A, 0x80, 1, 2, 3, 4])


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def flood_addresses(mode, n_addrs):
    if mode == "slow-body":
        return ["127.0.0.1"]
    # 127.0.1.1, ... 127.0.1.254, 127.0.2.1, ...: never the prober's 127.0.0.x.
    return [f"127.0.{1 + i // 254}.{1 + i % 254}" for i in range(n_addrs)]


async def one_flooder(mode, host, port, src, deadline, stats):
    """Keeps one flood connection open until the deadline, reopening it when it is closed."""
    while time.monotonic() < deadline:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(src, 0)), 10
            )
            stats["connected"] += 1
            if mode == "slow-body":
                writer.write(SLOW_BODY.format(host=f"{host}:{port}").encode())
                await writer.drain()
                stats["open"] += 1
                try:
                    data = await asyncio.wait_for(
                        reader.read(4096), max(0.1, deadline - time.monotonic())
                    )
                    if data.startswith(b"HTTP/1.1 408"):
                        stats["timed_out_408"] += 1
                    elif data:
                        stats["other_answer"] += 1
                    else:
                        stats["closed_without_answer"] += 1
                finally:
                    stats["open"] -= 1
            else:
                writer.write(HANDSHAKE.format(host=f"{host}:{port}").encode())
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                if not head.startswith(b"HTTP/1.1 101"):
                    stats["refused_" + head[9:12].decode(errors="replace")] += 1
                else:
                    stats["upgraded"] += 1
                    stats["open"] += 1
                    try:
                        last_pong = time.monotonic()
                        while time.monotonic() < deadline:
                            try:
                                data = await asyncio.wait_for(reader.read(65536), 1)
                            except asyncio.TimeoutError:
                                data = b"-"
                            if not data:
                                stats["closed_by_server"] += 1
                                break
                            if time.monotonic() - last_pong > 15:
                                writer.write(PONG)
                                last_pong = time.monotonic()
                    finally:
                        stats["open"] -= 1
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            stats["connect_failed_or_reset"] += 1
        finally:
            if writer is not None:
                writer.close()
        # Reconnect after about a second (jittered so the flood does not pulse).
        await asyncio.sleep(random.uniform(0.5, 1.5))


async def flood_process(slot, mode, host, port, sources, conns, deadline, queue):
    raise_nofile()
    stats = Counter()
    tasks = []
    for i in range(conns):
        tasks.append(
            asyncio.create_task(
                one_flooder(mode, host, port, sources[i % len(sources)], deadline, stats)
            )
        )
        if i % 500 == 499:
            await asyncio.sleep(0.05)  # ramp up over a few seconds, as a real flood would

    async def report():
        while time.monotonic() < deadline:
            queue.put((slot, dict(stats)))
            await asyncio.sleep(1)

    reporter = asyncio.create_task(report())
    await asyncio.gather(*tasks, return_exceptions=True)
    reporter.cancel()
    queue.put((slot, dict(stats)))
    queue.put((slot, None))


def run_flood_process(*args):
    asyncio.run(flood_process(*args))


async def probe(host, port, deadline, every, results):
    """`GET /api/time` from PROBE_ADDR on a fresh connection; latency or the error."""
    request = f"GET /api/time HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, local_addr=(PROBE_ADDR, 0)), 5
            )
            writer.write(request.encode())
            status = await asyncio.wait_for(reader.readline(), 5)
            writer.close()
            ok = status.startswith(b"HTTP/1.1 200")
            results.append((time.monotonic() - started, "200" if ok else status[:12].decode()))
        except (OSError, asyncio.TimeoutError, ConnectionError) as err:
            results.append((time.monotonic() - started, type(err).__name__))
        await asyncio.sleep(max(0, every - (time.monotonic() - started)))


def fds_of(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def start_server(binary, extra):
    data_dir = tempfile.mkdtemp(prefix="clickgame-flood-")
    args = [
        binary,
        "--http-addr",
        "127.0.0.1:0",
        "--no-tls",
        "--no-persist",
        "--data-dir",
        data_dir,
        "--log",
        "warn",
    ] + extra
    server = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in server.stdout:
        m = re.match(r"listening on http://([\d.]+):(\d+)", line.strip())
        if m:
            break
    else:
        raise SystemExit(f"the server did not start: {' '.join(args)}")
    # Keep draining its output so it never blocks on a full pipe; count its log lines.
    threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()

    def count_log():
        for line in server.stderr:
            LOG_LINES.append(line.rstrip())

    threading.Thread(target=count_log, daemon=True).start()
    return server, m.group(1), int(m.group(2)), data_dir


LOG_LINES = []


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=["slow-body", "websocket"])
    parser.add_argument("--bin", default="target/release/clickgame")
    parser.add_argument("--conns", type=int, default=20000)
    parser.add_argument("--addrs", type=int, default=400, help="source addresses (websocket)")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--probe-ms", type=int, default=250)
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra server flag, e.g. --server-arg=--max-conns=5000")
    args = parser.parse_args()
    raise_nofile()

    server, host, port, data_dir = start_server(args.bin, args.server_arg)
    print(f"server pid {server.pid} on {host}:{port}; {args.mode} flood: {args.conns} "
          f"connections, {args.duration:.0f} s, {args.procs} processes", flush=True)
    start = time.monotonic()
    deadline = start + args.duration
    sources = flood_addresses(args.mode, args.addrs)
    queue = multiprocessing.Queue()
    procs = []
    per_proc = args.conns // args.procs
    for i in range(args.procs):
        p = multiprocessing.Process(
            target=run_flood_process,
            args=(i, args.mode, host, port, sources[i::args.procs] or sources, per_proc,
                  deadline, queue),
        )
        p.start()
        procs.append(p)

    results = []
    max_fds = 0
    final = []

    async def watch():
        """Probes, and prints one line a second until every flood process has finished."""
        nonlocal max_fds
        prober = asyncio.create_task(probe(host, port, deadline, args.probe_ms / 1000, results))
        second = 0
        finished = 0
        last = {}
        while finished < len(procs):
            await asyncio.sleep(0.05)
            while not queue.empty():
                slot, item = queue.get()
                if item is None:
                    finished += 1
                else:
                    last[slot] = item
            if time.monotonic() - start >= second + 1:
                second += 1
                fds = fds_of(server.pid)
                max_fds = max(max_fds, fds)
                window = results[-max(1, int(1000 / args.probe_ms)):]
                worst = max((r[0] for r in window), default=0)
                bad = sum(1 for r in window if r[1] != "200")
                open_now = sum(s.get("open", 0) for s in last.values())
                print(f"t={second:3d}s server fds {fds:6d}  flood open {open_now:6d}  "
                      f"probe worst {worst * 1000:7.1f} ms, {bad} failed", flush=True)
        await prober
        final.extend(last.values())

    try:
        asyncio.run(watch())
    finally:
        for p in procs:
            p.join(timeout=15)
            if p.is_alive():
                p.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(data_dir, ignore_errors=True)

    totals = Counter()
    for s in final:
        totals.update(s)
    latencies = sorted(r[0] for r in results if r[1] == "200")
    failures = Counter(r[1] for r in results if r[1] != "200")
    slow = sum(1 for r in results if r[1] != "200" or r[0] > 1.0)
    print("\nflood:", dict(sorted(totals.items())))
    print(f"server: at most {max_fds} open descriptors; {len(LOG_LINES)} log lines"
          + (f", the last: {LOG_LINES[-1][-160:]}" if LOG_LINES else ""))
    if latencies:
        q = (statistics.quantiles(latencies, n=100, method="inclusive")
             if len(latencies) > 1 else latencies * 99)
        print(f"probe GET /api/time from {PROBE_ADDR}: {len(results)} sent, {len(latencies)} "
              f"answered 200; p50 {q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, "
              f"max {latencies[-1] * 1000:.1f} ms; failed: {dict(failures) or 0}; "
              f"over 1 s or failed: {slow}")
    else:
        print(f"probe GET /api/time from {PROBE_ADDR}: {len(results)} sent, none answered; "
              f"failed: {dict(failures)}")
    sys.exit(0)


if __name__ == "__main__":
    main()
