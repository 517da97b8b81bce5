#!/usr/bin/env bash
# `make deps`: install what building and testing clickgame need, before any build starts.
#
#   scripts/deps.sh run    what `make run` needs: a C toolchain's view of OpenSSL (pkg-config +
#                          libssl-dev, for the openssl crate)
#   scripts/deps.sh cluster  what `make cluster` needs on top of `run`: redis-server, haproxy,
#                          python3 (free ports)
#   scripts/deps.sh test   everything `make test` needs on top: Debian's Chromium and
#                          ChromeDriver (browser tests), Node.js + npm and the e2e npm modules,
#                          redis-server (the cluster tests start their own, issue 16) and
#                          haproxy (the cluster's entry point; its config is checked),
#                          clippy and rustfmt
#
# What is already there is left alone. What is missing is installed with apt-get when we are
# root on a Debian-like system; otherwise the script stops at once — never after a six-minute
# build — and prints the exact command to run. Shared by `make test` and `.ci/run`.
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-test}
apt_missing=()
notes=()

need_cmd() { # need_cmd <command> <debian package>...
  local cmd=$1
  shift
  command -v "$cmd" >/dev/null 2>&1 || apt_missing+=("$@")
}

if ! command -v cargo >/dev/null 2>&1; then
  echo "deps: cargo is missing: install Rust from https://rustup.rs (rustup), then run make again" >&2
  exit 1
fi
need_cmd make make
need_cmd cc gcc
need_cmd pkg-config pkg-config
if command -v pkg-config >/dev/null 2>&1 && ! pkg-config --exists openssl 2>/dev/null; then
  apt_missing+=(libssl-dev)
elif ! command -v pkg-config >/dev/null 2>&1; then
  apt_missing+=(libssl-dev)
fi

if [ "$what" = test ]; then
  [ -x /usr/bin/chromium ] || apt_missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || apt_missing+=(chromium-driver)
  if ! command -v node >/dev/null 2>&1; then
    apt_missing+=(nodejs npm)
  elif ! command -v npm >/dev/null 2>&1; then
    apt_missing+=(npm)
  fi
  command -v python3 >/dev/null 2>&1 || apt_missing+=(python3)
  # tests/api/classroom.rs runs `openssl verify` against the local CA, as a student would.
  need_cmd openssl openssl
  need_cmd redis-server redis-server
  need_cmd haproxy haproxy
fi

if [ "$what" = cluster ]; then
  command -v python3 >/dev/null 2>&1 || apt_missing+=(python3)
  need_cmd redis-server redis-server
  need_cmd haproxy haproxy
fi

if [ ${#apt_missing[@]} -gt 0 ]; then
  # Unique, in order.
  mapfile -t apt_missing < <(printf '%s\n' "${apt_missing[@]}" | awk '!seen[$0]++')
  cmd="apt-get update && apt-get install -y ${apt_missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing Debian packages: ${apt_missing[*]}" >&2
    echo "deps: not root, so not installing them; run:" >&2
    echo "    sudo sh -c '$cmd'" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: missing packages ${apt_missing[*]}, and this system has no apt-get;" >&2
    echo "deps: install their equivalents with your package manager, then run make again" >&2
    exit 1
  fi
  echo "deps: installing ${apt_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi

if [ "$what" = test ]; then
  # Asked of cargo itself first: Debian's packaged cargo has clippy and rustfmt without rustup.
  for component in clippy rustfmt; do
    sub=$component
    [ "$component" = rustfmt ] && sub=fmt
    if cargo "$sub" --version >/dev/null 2>&1; then
      continue
    elif command -v rustup >/dev/null 2>&1; then
      echo "deps: adding the $component component"
      rustup component add "$component"
    else
      notes+=("cargo $sub is missing: rustup component add $component (or apt-get install rust-clippy rustfmt)")
    fi
  done
  # npm modules, each installed with `npm ci` only when its lock file changed since the last
  # install: the e2e suite's playwright-core (it drives Debian's Chromium and never downloads a
  # browser), and the `ws` library of the Node peer the load tool's tests spawn
  # (benches/peers/node-ws, issue 15).
  for dir in e2e benches/peers/node-ws; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
      ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.deps-lock-copy" 2>/dev/null; then
      echo "deps: npm ci in $dir/"
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
      cp "$dir/package-lock.json" "$dir/node_modules/.deps-lock-copy"
    fi
  done
fi

if [ ${#notes[@]} -gt 0 ]; then
  printf 'deps: %s\n' "${notes[@]}" >&2
  exit 1
fi
echo "deps: everything \`make $what\` needs is here"
