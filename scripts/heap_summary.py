#!/usr/bin/env python3
"""Groups the heap of N idle connections by who allocated it (issue 15 point 3).

    scripts/heap_summary.py HEAPTRACK_TRACE.zst CONNECTIONS [--top K]

Runs `heaptrack_print --print-flamegraph --flamegraph-cost-type peak` on the trace, demangles
the frames (c++filt knows Rust's v0 mangling), and puts the bytes live at the peak into owner
groups by the frames of their allocation stack (first matching rule wins), divided by
CONNECTIONS. Bytes allocated before the connections opened (the baseline: workers, the app,
TLS tables) are in the total too; `baseline` is what is left when the connections are gone,
estimated as the groups that do not scale with N (under 16 B per connection).
scripts/heap-per-connection.sh calls it.
"""
import collections
import re
import subprocess
import sys

# (group, regex over the whole demangled stack). Order matters: first match wins.
RULES = [
    ("tokio task: the connection (actix-http dispatcher future)",
     r"spawn_local<>, actix_http::body::either::EitherBody"),
    ("tokio task: clickgame WebSocket loop (transport::websocket::run)",
     r"websocket::upgrade::\{async_fn_env#0\}.*spawn_local"),
    # heaptrack lists a call site's inlined frames innermost first, so match both orders.
    ("actix-http h1: read + write buffer (BytesMut::with_capacity(8 KiB) each)",
     r"new<>, actix_http::body::either::EitherBody[^;]*;with_capacity;"
     r"|with_capacity;new<>, actix_http::body::either::EitherBody"),
    ("actix-http h1: read buffer regrowth (reserve in read_available)",
     r"read_available|reserve_readbuf"),
    ("actix-ws: session channel (tokio mpsc, 32 slots) and close signal",
     r"handle_with_protocols"),
    ("actix-http: request payload channel (Payload::create)",
     r"Payload>::create|payload::Payload[^;]*create|;create;"),
    ("actix-http: request head held by a parked handler (HeaderMap capacity, from the pool)",
     r"get_message"),
    ("tokio: socket registration (ScheduledIo)",
     r"add_source|new_with_interest"),
    ("tokio: timers (Interval / Sleep boxes)",
     r"interval|Sleep|sleep_until|TimerEntry"),
    ("clickgame: SSE stream state and body",
     r"transport::sse"),
    ("clickgame: long poll (parked handler future)",
     r"transport::long_polling"),
    ("clickgame: other per-connection state",
     r"clickgame::(transport|hub|security|metrics|session)"),
    ("actix-web: request, extensions, app data",
     r"actix_web::|HttpRequest|RequestHead|HeaderMap|Extensions"),
]


def demangle(symbols):
    names = [s.split(" (")[0] for s in symbols]
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                         text=True, check=True).stdout.split("\n")
    return {s: re.sub(r"\[[0-9a-f]{16}\]", "", d) for s, d in zip(symbols, out)}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    trace, n = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--top" else 0
    folded = subprocess.run(
        ["heaptrack_print", "-f", trace, "--print-flamegraph", "/dev/stdout",
         "--flamegraph-cost-type", "peak", "-p", "0", "-a", "0", "-T", "0", "-l", "0"],
        capture_output=True, text=True, check=True).stdout
    rows = []
    for line in folded.splitlines():
        if not re.search(r" \d+$", line):
            continue
        stack, count = line.rsplit(" ", 1)
        if int(count):
            rows.append(([f for f in stack.split(";") if f], int(count)))
    names = demangle(sorted({f for frames, _ in rows for f in frames}))
    groups = collections.Counter()
    unmatched = collections.Counter()
    total = 0
    for frames, count in rows:
        stack = ";".join(names[f] for f in frames) + ";"
        total += count
        for group, rule in RULES:
            if re.search(rule, stack):
                groups[group] += count
                break
        else:
            groups["other"] += count
            unmatched[" ← ".join(names[f][:60] for f in reversed(frames[-6:]))] += count
    scaling = {g: b for g, b in groups.items() if b / n >= 16}
    print("peak heap: %.1f MiB over %d connections; groups of 16 B or more per connection:"
          % (total / 2 ** 20, n))
    print("| owner | bytes per connection |")
    print("|---|---:|")
    for group, count in sorted(scaling.items(), key=lambda g: -g[1]):
        print("| %s | %.0f |" % (group, count / n))
    print("| **sum** | **%.0f** |" % (sum(scaling.values()) / n))
    if top:
        print("largest 'other' stacks:")
        for stack, count in unmatched.most_common(top):
            print("  %7.0f  %s" % (count / n, stack[:300]))


if __name__ == "__main__":
    main()
