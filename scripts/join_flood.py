#!/usr/bin/env python3
"""Join flood against a clickgame server on loopback (issue 9, item 3): the figures in
docs/security.md, "Attacks tried".

    python3 scripts/join_flood.py [--bin target/debug/clickgame] [--joins 5000] [--addresses 1]
                                  [-- extra server flags]

Starts the server (plain HTTP on a free 127.0.0.1 port, nothing saved) with its default
limits unless extra flags are given, then sends --joins joins one after another over
keep-alive connections, spread round-robin over --addresses source addresses 127.0.0.2,
127.0.0.3, ... (all of 127/8 is loopback). Prints how many were created / refused by status,
the time taken and the largest join response. Loopback only, bounded in count, stops by itself.
"""

import argparse
import http.client
import json
import re
import subprocess
import sys
import time
from collections import Counter


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/clickgame")
    ap.add_argument("--joins", type=int, default=5000)
    ap.add_argument("--addresses", type=int, default=1)
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    if not 1 <= args.addresses <= 250 or not 1 <= args.joins <= 100_000:
        ap.error("--addresses 1..250, --joins 1..100000")

    server = subprocess.Popen(
        [args.bin, "--http-addr", "127.0.0.1:0", "--no-tls", "--no-persist", "--log", "warn",
         *args.extra],
        stdout=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stdout:
            m = re.match(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            print("the server did not start", file=sys.stderr)
            return 1
        conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                            source_address=(f"127.0.0.{2 + i}", 0))
                 for i in range(args.addresses)]
        statuses = Counter()
        codes = Counter()
        largest = 0
        started = time.monotonic()
        for i in range(args.joins):
            conn = conns[i % len(conns)]
            conn.request("POST", "/api/join", body=json.dumps({"name": f"bot{i}"}),
                         headers={"Content-Type": "application/json"})
            res = conn.getresponse()
            body = res.read()
            statuses[res.status] += 1
            if res.status == 201:
                largest = max(largest, len(body))
            else:
                codes[json.loads(body).get("error")] += 1
        took = time.monotonic() - started
        print(f"{args.joins} joins from {args.addresses} address(es) in {took:.1f} s: "
              f"{dict(sorted(statuses.items()))} {dict(codes)}; "
              f"largest join response {largest} bytes")
        return 0
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
