#!/usr/bin/env bash
# Where the server's time goes under fan-out (issue 15 point 3): `perf record` of a clickgame
# built with frame pointers while the load tool broadcasts to N spectators, then a flame graph.
#
#   scripts/profile-fanout.sh [websocket|sse] [clients, default 9000] [broadcasts, default 400]
#
# Needs Debian's linux-perf (`perf`) and inferno (`cargo install inferno`). The server is built
# into target/prof (RUSTFLAGS=-Cforce-frame-pointers=yes, line tables only) so the normal
# release build is left alone; the load tool is the normal release one. Many broadcasts (400 ×
# N deliveries) make the broadcast phase dominate the recording: opening the N connections is
# in it too, and shows up as its own towers (accept, handshake, HTTP parsing). Samples use the
# cpu-clock software event, which works in VMs without hardware counters.
# PROFILE_FREQ (Hz, default 199) and PROFILE_CALLGRAPH (default dwarf,16384; `fp` for frame
# pointers) tune the recording.
# PROFILE_BIN (a built server, e.g. target/release/clickgame) skips the frame-pointer build:
# DWARF call graphs need no frame pointers, only inlined frames merge into their callers.
# Output in $PROFILE_OUT (default target/profile): perf-KIND.data, KIND.folded, flame-KIND.svg.
set -euo pipefail
cd "$(dirname "$0")/.."

KIND=${1:-websocket}
CLIENTS=${2:-9000}
BROADCASTS=${3:-400}
OUT=${PROFILE_OUT:-target/profile}
FREQ=${PROFILE_FREQ:-199}
# DWARF unwinding: glibc has no frame pointers, and with `-g` (frame pointers) about 60 % of
# the samples lost their stack at `send(2)`'s wrapper. 16 KiB of stack per sample is enough
# for actix's nested futures.
CALLGRAPH=${PROFILE_CALLGRAPH:-dwarf,16384}
CARGO=${CARGO:-cargo}

command -v perf >/dev/null || { echo "profile: perf not found (apt-get install linux-perf)" >&2; exit 1; }
command -v inferno-flamegraph >/dev/null || { echo "profile: inferno not found (cargo install inferno)" >&2; exit 1; }

BIN=${PROFILE_BIN:-target/prof/release/clickgame}
if [[ -z "${PROFILE_BIN:-}" ]]; then
    RUSTFLAGS="-Cforce-frame-pointers=yes" CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        "$CARGO" build --release --bin clickgame --target-dir target/prof
fi
"$CARGO" build --release --bin clickgame-load
mkdir -p "$OUT"

# The server gets the same settings the load tool gives the servers it spawns, and the hard
# descriptor limit (each spectator is one descriptor on each side).
ulimit -n "$(ulimit -Hn)"
extra=()
help=$("$BIN" --help)
for flag in --max-sockets-per-ip --max-conns --join-rate --max-players; do
    grep -qE -- "(^|[[:space:],])$flag([[:space:]=,]|$)" <<<"$help" && extra+=("$flag" 1000000)
done
grep -qE -- "(^|[[:space:],])--round-timeout-ms([[:space:]=,]|$)" <<<"$help" && extra+=(--round-timeout-ms 0)
"$BIN" --no-tls --no-persist --http-addr 127.0.0.1:0 \
    --max-conns-per-ip 0 --click-rate 1000000000 --player-timeout-ms 600000 \
    --longpoll-timeout-ms 600000 --log warn "${extra[@]}" >"$OUT/server-$KIND.stdout" &
SERVER=$!
PERF=
cleanup() {
    [[ -n "$PERF" ]] && kill -INT "$PERF" 2>/dev/null && wait "$PERF" 2>/dev/null || true
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
}
trap cleanup EXIT
ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's|^listening on http://||p' "$OUT/server-$KIND.stdout" | head -n1)
    [[ -n "$ADDR" ]] && break
    sleep 0.1
done
[[ -n "$ADDR" ]] || { echo "profile: the server did not start" >&2; exit 1; }

perf record -e cpu-clock -F "$FREQ" --call-graph "$CALLGRAPH" -p "$SERVER" -o "$OUT/perf-$KIND.data" 2>"$OUT/perf-$KIND.log" &
PERF=$!
sleep 0.5
target/release/clickgame-load --url "http://$ADDR" --pid "$SERVER" --scenarios fanout \
    --fanout-transports "$KIND" --fanout-steps "$CLIENTS" --broadcasts "$BROADCASTS" \
    --out-dir "$OUT/load-$KIND"
kill -INT "$PERF"
wait "$PERF" || true
PERF=

perf script --no-inline -i "$OUT/perf-$KIND.data" 2>/dev/null | inferno-collapse-perf >"$OUT/$KIND.folded"
inferno-flamegraph --title "clickgame: $KIND fan-out to $CLIENTS spectators ($BROADCASTS broadcasts), perf cpu-clock ${FREQ} Hz" \
    --minwidth 0.05 <"$OUT/$KIND.folded" >"$OUT/flame-$KIND.svg"
echo "profile: $OUT/flame-$KIND.svg ($(wc -l <"$OUT/$KIND.folded") distinct stacks)"
