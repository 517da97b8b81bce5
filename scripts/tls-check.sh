#!/usr/bin/env bash
# Grades the HTTPS listener with testssl.sh (Debian package `testssl.sh`): starts the server on
# free loopback ports with a fresh self-signed certificate, runs the protocol, cipher and header
# checks, prints the summary and fails if any protocol below TLS 1.2 or any cipher outside the
# six ECDHE AEAD suites (plus TLS 1.3's) is offered.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v testssl >/dev/null 2>&1 || command -v testssl.sh >/dev/null 2>&1 || {
  echo "tls-check: installing testssl.sh"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null; }
TESTSSL=$(command -v testssl || command -v testssl.sh)

cargo build --quiet --bin clickgame
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT
target/debug/clickgame --http-addr 127.0.0.1:0 --https-addr 127.0.0.1:0 --data-dir "$work/data" \
  --no-persist --log warn > "$work/out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do grep -q '^listening on https://' "$work/out" && break; sleep 0.1; done
addr=$(sed -n 's|^listening on https://||p' "$work/out")
[ -n "$addr" ] || { cat "$work/out"; echo "tls-check: server did not start"; exit 1; }
echo "tls-check: grading https://$addr"

"$TESTSSL" --quiet --color 0 --warnings off --sneaky -p -e -f -h --jsonfile "$work/report.json" "$addr" \
  | tee target/tls-check.txt || true

python3 - "$work/report.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
findings = report if isinstance(report, list) else report.get("scanResult", [])
allowed = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
    # the same six under their IANA names, which testssl.sh also prints
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}
bad = []
protocols = {}
ciphers = set()
for f in findings:
    fid, val = f.get("id", ""), f.get("finding", "")
    if fid in ("SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3"):
        protocols[fid] = val
        offered = val.startswith("offered")
        if fid in ("SSLv2", "SSLv3", "TLS1", "TLS1_1") and offered:
            bad.append(f"{fid} is offered")
    if fid.startswith("cipher-tls") or fid.startswith("cipher_x"):
        parts = val.split()
        for p in parts:
            if p.count("-") >= 2 or p.startswith("TLS_"):
                ciphers.add(p)
for c in sorted(ciphers):
    if c not in allowed:
        bad.append(f"cipher {c} is offered")
print("tls-check: protocols:", ", ".join(f"{k}: {v}" for k, v in protocols.items()))
print("tls-check: ciphers offered:", ", ".join(sorted(ciphers)) or "(none parsed)")
if bad:
    print("tls-check: FAIL:", "; ".join(bad))
    sys.exit(1)
print("tls-check: PASS: nothing below TLS 1.2, no cipher outside the Mozilla intermediate list")
PY
