#!/usr/bin/env bash
# A local cluster (issue 16): one Redis, three clickgame nodes, haproxy in front.
#
#   scripts/cluster.sh                 start it all; Ctrl-C stops it all and removes the data
#   scripts/cluster.sh --check-config  render the haproxy config and let haproxy check it
#   scripts/cluster.sh --render-config FILE NODE HTTP HTTPS [NODE HTTP HTTPS]...
#                                      only write the haproxy config for these nodes' ports (the
#                                      entry point's ports from CLUSTER_HTTP_PORT/_HTTPS_PORT):
#                                      tests/api/entry_point.rs runs the shipped config this way
#
# Redis runs on a free port with a throw-away data dir (AOF on, fsync every second: a restarted
# Redis keeps the game, see docs/scaling.md). Each node gets its own free HTTP and HTTPS ports,
# its own data dir, and what they must share: one certificate (the entry point hands any
# connection to any node), one admin token, the entry point's origins as allowed origins, the
# entry point's URLs as --public-url (so the join card and its QR code send phones through
# haproxy, not to one node's own port, which would bypass failover), and 127.0.0.1 as the
# trusted proxy. The entry point is http://127.0.0.1:8080 and
# https://127.0.0.1:8443 (CLUSTER_HTTP_PORT / CLUSTER_HTTPS_PORT to change them).
#
# `make cluster` builds the release binary and runs this. CLUSTER_ARGS adds flags to every
# node (e.g. "--lease-ttl-ms 1000" for quicker failovers). To watch a failover: find the node
# that runs the game (`curl -s http://127.0.0.1:8080/api/stats`, "authority_node"), kill it with
# `kill -9` (its pid is printed below), and watch /compare.html carry on.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${CLICKGAME_BIN:-target/release/clickgame}
HTTP_PORT=${CLUSTER_HTTP_PORT:-8080}
HTTPS_PORT=${CLUSTER_HTTPS_PORT:-8443}
NODES=(a b c)

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# render_config <file> <node> <http port> <https port> [<node> <http> <https>]...
render_config() {
  local out=$1 http_servers="" https_servers=""
  shift
  while [ $# -gt 0 ]; do
    http_servers+="    server $1 127.0.0.1:$2"$'\n'
    https_servers+="    server $1 127.0.0.1:$3"$'\n'
    shift 3
  done
  local config
  config=$(<scripts/cluster/haproxy.cfg.in)
  config=${config//@HTTP_PORT@/$HTTP_PORT}
  config=${config//@HTTPS_PORT@/$HTTPS_PORT}
  config=${config//@HTTP_SERVERS@/${http_servers%$'\n'}}
  config=${config//@HTTPS_SERVERS@/${https_servers%$'\n'}}
  printf '%s\n' "$config" >"$out"
}

if [ "${1:-}" = --render-config ]; then
  shift
  [ $# -ge 4 ] && [ $((($# - 1) % 3)) -eq 0 ] || { echo "cluster: --render-config FILE NODE HTTP HTTPS..." >&2; exit 2; }
  render_config "$@"
  exit 0
fi

work=$(mktemp -d -t clickgame-cluster-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [ "${1:-}" = --check-config ]; then
  render_config "$work/haproxy.cfg" a 18081 18441 b 18082 18442 c 18083 18443
  haproxy -c -q -f "$work/haproxy.cfg"
  echo "cluster: the haproxy config is valid"
  exit 0
fi

for cmd in redis-server haproxy python3; do
  command -v "$cmd" >/dev/null || { echo "cluster: $cmd is missing (make deps installs it)" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "cluster: $BIN is missing: cargo build --release" >&2; exit 1; }

redis_port=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" \
  --save '' --appendonly yes --appendfsync everysec --daemonize no \
  --logfile "$work/redis/redis.log" &
pids+=($!)

"$BIN" --init-certs --data-dir "$work/shared" >/dev/null
admin_token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
origins="http://127.0.0.1:$HTTP_PORT,http://localhost:$HTTP_PORT,https://127.0.0.1:$HTTPS_PORT,https://localhost:$HTTPS_PORT"

servers=()
for node in "${NODES[@]}"; do
  http=$(free_port)
  https=$(free_port)
  servers+=("$node" "$http" "$https")
  CLICKGAME_ALLOWED_ORIGINS=$origins "$BIN" \
    --redis-url "redis://127.0.0.1:$redis_port" --node-id "$node" \
    --http-addr "127.0.0.1:$http" --https-addr "127.0.0.1:$https" \
    --data-dir "$work/node-$node" --no-persist \
    --cert "$work/shared/cert.pem" --key "$work/shared/key.pem" \
    --admin-token "$admin_token" --trusted-proxy 127.0.0.1 \
    --public-url "http://127.0.0.1:$HTTP_PORT/" --public-url "https://127.0.0.1:$HTTPS_PORT/" \
    ${CLUSTER_ARGS:-} &
  pids+=($!)
  echo "cluster: node $node (pid $!) on http://127.0.0.1:$http and https://127.0.0.1:$https"
done

render_config "$work/haproxy.cfg" "${servers[@]}"
haproxy -db -f "$work/haproxy.cfg" &
pids+=($!)

echo "cluster: Redis on 127.0.0.1:$redis_port (data in $work/redis)"
echo "cluster: entry point http://127.0.0.1:$HTTP_PORT and https://127.0.0.1:$HTTPS_PORT"
echo "cluster: admin token $admin_token"
echo "cluster: Ctrl-C stops everything"
# A node killed on purpose (a failover demo) is not a reason to stop: only Redis or haproxy.
wait -n "${pids[0]}" "${pids[-1]}" || true
echo "cluster: Redis or haproxy ended; stopping the rest" >&2
