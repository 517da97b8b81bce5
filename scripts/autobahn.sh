#!/usr/bin/env bash
# WebSocket conformance: Autobahn|Testsuite's fuzzingclient against the echo endpoint that
# `clickgame --ws-echo-path` serves through the same socket loop as /api/ws (issue 6).
#
#   scripts/autobahn.sh            # what `make autobahn` runs
#
# Environment: AUTOBAHN_PROFILE=debug|release (default debug: no extra release build on shared
# cores), AUTOBAHN_PYTHON (a Python 2.7; default pyenv's 2.7.18), AUTOBAHN_SITE (install dir,
# default target/autobahn-venv), AUTOBAHN_OUT (reports, default target/autobahn).
# Cases 1-7 and 10 run; 9 (large-message performance) and 12-13 (compression, which we do
# not offer) are excluded in scripts/autobahn-fuzzingclient.json.
# Exits non-zero if any case's behaviour is FAILED.
set -euo pipefail

cd "$(dirname "$0")/.."
PROFILE=${AUTOBAHN_PROFILE:-debug}
SITE_DIR=${AUTOBAHN_SITE:-target/autobahn-venv}
OUT=${AUTOBAHN_OUT:-target/autobahn}
SPEC=scripts/autobahn-fuzzingclient.json
CARGO=${CARGO:-cargo}
if [[ -z "${AUTOBAHN_PYTHON:-}" ]]; then
    if command -v pyenv >/dev/null 2>&1; then
        AUTOBAHN_PYTHON="$(pyenv root)/versions/2.7.18/bin/python"
    else
        AUTOBAHN_PYTHON=python2.7
    fi
fi
PY=$AUTOBAHN_PYTHON

# 1. Autobahn|Testsuite (Python 2 only), installed once into a cache directory.
if [[ ! -f "$SITE_DIR/autobahntestsuite/wstest.py" ]]; then
    echo "autobahn: installing autobahntestsuite into $SITE_DIR"
    "$PY" -m pip install --quiet --disable-pip-version-check --target "$SITE_DIR" autobahntestsuite
fi

# 2. The server, on a free loopback port, with the echo endpoint.
if [[ "$PROFILE" == release ]]; then
    "$CARGO" build --release --bin clickgame
else
    "$CARGO" build --bin clickgame
fi
rm -rf "$OUT"
mkdir -p "$OUT"
"target/$PROFILE/clickgame" --no-tls --ws-echo-path /autobahn --http-addr 127.0.0.1:0 \
    --log "${AUTOBAHN_SERVER_LOG:-warn}" >"$OUT/server.stdout" 2>"$OUT/server.log" &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true' EXIT

ADDR=
for _ in $(seq 1 100); do
    ADDR=$(sed -n 's|^listening on http://||p' "$OUT/server.stdout" | head -n1)
    [[ -n "$ADDR" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "autobahn: the server exited early:" >&2
        cat "$OUT/server.log" >&2
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$ADDR" ]]; then
    echo "autobahn: the server did not print its address within 10 s" >&2
    exit 1
fi
echo "autobahn: clickgame ($PROFILE) echo endpoint at ws://$ADDR/autobahn"

# 3. The fuzzing client; reports land in $OUT (index.html, index.json, one file per case).
"$PY" scripts/autobahn_wstest.py run "$SITE_DIR" "$SPEC" "ws://$ADDR/autobahn" "$OUT" \
    >"$OUT/wstest.log" 2>&1 || {
    echo "autobahn: wstest failed; see $OUT/wstest.log" >&2
    tail -n 30 "$OUT/wstest.log" >&2
    exit 1
}

# 4. The summary; non-zero if anything FAILED.
"$PY" scripts/autobahn_wstest.py summary "$OUT/index.json"
