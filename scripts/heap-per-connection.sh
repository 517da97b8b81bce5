#!/usr/bin/env bash
# Where the memory of an idle connection goes (issue 15 point 3): clickgame under heaptrack
# while the load tool holds N idle connections of one transport, then the allocation sites
# of the peak, divided by N.
#
#   scripts/heap-per-connection.sh [websocket|sse|longpoll] [connections, default 2000]
#
# Needs heaptrack (Debian package). Uses the frame-pointer build of scripts/profile-fanout.sh
# (target/prof) for readable stacks. heaptrack counts heap bytes the program asked for; the
# load tool's own figure next to it is RSS (what the kernel gave the process, pages touched),
# and the difference between the two is allocator slack and untouched pages.
# Output in $PROFILE_OUT (default target/profile): heap-KIND.txt (heaptrack_print's peak
# report), heap-KIND.zst (the raw trace, for heaptrack_gui), load-idle-KIND/ (the load tool's).
set -euo pipefail
cd "$(dirname "$0")/.."

KIND=${1:-websocket}
N=${2:-2000}
OUT=${PROFILE_OUT:-target/profile}
CARGO=${CARGO:-cargo}

command -v heaptrack >/dev/null || { echo "heap: heaptrack not found (apt-get install heaptrack)" >&2; exit 1; }
RUSTFLAGS="-Cforce-frame-pointers=yes" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
    "$CARGO" build --release --bin clickgame --target-dir target/prof
"$CARGO" build --release --bin clickgame-load
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)"
rm -f "$OUT/heap-$KIND".*

heaptrack -o "$OUT/heap-$KIND" target/prof/release/clickgame --no-tls --no-persist \
    --http-addr 127.0.0.1:0 --max-conns-per-ip 0 --player-timeout-ms 600000 \
    --longpoll-timeout-ms 600000 --log warn >"$OUT/heap-server-$KIND.stdout" 2>&1 &
TRACER=$!
ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's|^listening on http://||p' "$OUT/heap-server-$KIND.stdout" | head -n1)
    [[ -n "$ADDR" ]] && break
    sleep 0.1
done
[[ -n "$ADDR" ]] || { echo "heap: the server did not start" >&2; kill "$TRACER"; exit 1; }
# heaptrack runs the server and its own interpreter as children: pick the server.
SERVER=$(ps --ppid "$TRACER" -o pid=,comm= | awk '$2 == "clickgame" {print $1}' | head -n1)
[[ -n "$SERVER" ]] || { echo "heap: cannot find the server under heaptrack" >&2; kill "$TRACER"; exit 1; }

target/release/clickgame-load --url "http://$ADDR" --pid "$SERVER" --scenarios idle \
    --transports "$KIND" --idle "$N" --out-dir "$OUT/load-idle-$KIND"
kill -INT "$SERVER"
wait "$TRACER" || true

TRACE=$(ls "$OUT/heap-$KIND".* | head -n1)
heaptrack_print -f "$TRACE" --print-peaks 1 --print-allocators 0 --print-temporary 0 \
    --print-leaks 0 --peak-limit 25 --sub-peak-limit 2 >"$OUT/heap-$KIND.txt"
peak=$(sed -n 's/^peak heap memory consumption: //p' "$OUT/heap-$KIND.txt")
echo "heap: $KIND, $N connections: peak heap $peak (see $OUT/heap-$KIND.txt)"
