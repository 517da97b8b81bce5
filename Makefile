# clickgame — the two commands that matter: `make run` and `make test`.
CARGO ?= cargo
E2E_DIR := e2e

.PHONY: run class cluster lab test unit fmt lint e2e e2e-deps deps deps-run build clean

## Start the server on the embedded defaults: http://127.0.0.1:8080
run: deps-run
	$(CARGO) run --release --bin clickgame

## The one command for a lecture: every interface, the laptop's LAN addresses allowed and in the
## certificate, the join URL and its QR code printed (docs/classroom.md). CLASS_ARGS for more
## flags, e.g. CLASS_ARGS="--lan-addr 192.168.1.23".
CLASS_ARGS ?=
class: deps-run
	$(CARGO) run --release --bin clickgame -- --lan $(CLASS_ARGS)

## Several nodes, one game (issue 16, docs/scaling.md): a throw-away Redis on a free port, nodes
## a, b and c on free ports, and haproxy in front on http://127.0.0.1:8080 and
## https://127.0.0.1:8443 (round robin, no sticky sessions). Ctrl-C stops everything.
## CLUSTER_ARGS for more flags to every node, e.g. CLUSTER_ARGS="--lease-ttl-ms 1000".
CLUSTER_ARGS ?=
cluster:
	scripts/deps.sh cluster
	$(CARGO) build --release --bin clickgame
	CLUSTER_ARGS="$(CLUSTER_ARGS)" scripts/cluster.sh
## The WSS best-practices lab (docs/lab.md): the game plus an attacker's site on
## http://127.0.0.1:8666/attacker.html, and switches at /lab.html that turn each defence off
## (all start on). LAB_ARGS for more flags, e.g. LAB_ARGS="--lan --lab-allow-remote".
LAB_ARGS ?=
lab: deps-run
	$(CARGO) run --release --bin clickgame -- --lab $(LAB_ARGS)

## Everything CI checks: formatting, lints, unit + integration tests, browser tests. `deps`
## comes first, so a missing package stops the run before any build.
test: deps
	$(MAKE) --no-print-directory fmt lint unit e2e

## Install what the tests need (Debian packages, rustup components, npm modules), or stop at
## once with the command to run when we cannot (not root, no apt-get). See scripts/deps.sh.
deps:
	scripts/deps.sh test

## What `make run` needs beyond cargo (OpenSSL headers for the openssl crate).
deps-run:
	scripts/deps.sh run

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

## The debug server binary for the browser tests. Built as a by-product of the integration
## tests (cargo puts target/debug/clickgame there for them), so it shares their dependency
## build instead of compiling the tree a second time with other features.
build:
	$(CARGO) test --no-run --test api

e2e-deps: deps

## Real-browser tests: headless Chromium (Debian's /usr/bin/chromium) via playwright-core.
e2e: build e2e-deps
	cd $(E2E_DIR) && CLICKGAME_BIN=$(CURDIR)/target/debug/clickgame npm test

clean:
	$(CARGO) clean

# ---- measurements (issue 5; see docs/results.md) ---------------------------------------------
.PHONY: bench load results
RESULTS_DIR := docs/results
LOAD_ARGS ?=

## Criterion: game core, and click → event latency per transport (plain and TLS) against the
## TCP floor; reports in target/criterion, a ratio table printed at the end.
bench:
	$(CARGO) bench --bench core --bench transport_latency

## The load tool against release servers it spawns itself (LOAD_ARGS="--help" for its options).
load:
	$(CARGO) build --release --bin clickgame --bin clickgame-load
	target/release/clickgame-load $(LOAD_ARGS)

## Regenerate the measured tables under docs/results/ (takes ~15 min on 2 cores).
results:
	$(CARGO) build --release --bin clickgame --bin clickgame-load
	$(CARGO) bench --bench transport_latency
	mkdir -p $(RESULTS_DIR)/tls
	cp target/criterion/transport_latency_summary.md $(RESULTS_DIR)/latency.md
	cp target/criterion/transport_latency_summary.json $(RESULTS_DIR)/latency.json
	target/release/clickgame-load --out-dir $(RESULTS_DIR) $(LOAD_ARGS)
	target/release/clickgame-load --tls --scenarios latency --out-dir $(RESULTS_DIR)/tls $(LOAD_ARGS)
	python3 scripts/plot_results.py $(RESULTS_DIR)/load.json

# ---- WebSocket conformance (issue 6) ---------------------------------------------------------
.PHONY: autobahn

## Autobahn|Testsuite's fuzzingclient (cases 1-7, 10) against `clickgame --ws-echo-path`, which
## runs the game's own socket loop; installs the suite (Python 2.7) into target/autobahn-venv
## on first use; report in target/autobahn/index.html; fails if any case FAILED.
autobahn:
	CARGO="$(CARGO)" scripts/autobahn.sh

# ---- TLS (issue 4; see docs/security.md) -----------------------------------------------------
.PHONY: certs ca tls-check

## Create (or renew) the self-signed certificate in ./data and print its fingerprint.
certs:
	$(CARGO) run --quiet --bin clickgame -- --init-certs

## A local CA in ./data (ca.pem; ca-key.pem mode 0600), name-constrained to loopback and this
## machine's LAN names, and a certificate signed by it. Install ca.pem on the projector laptop
## only (docs/classroom.md). CLASS_ARGS="--lan-addr ..." names the addresses instead.
ca:
	$(CARGO) run --quiet --bin clickgame -- --init-ca $(CLASS_ARGS)

## Grade the HTTPS port with testssl.sh: nothing below TLS 1.2, no cipher outside the list.
tls-check:
	scripts/tls-check.sh

## Refresh docs/screenshots/ from a browser run.
.PHONY: screenshots
screenshots: build e2e-deps
	cd $(E2E_DIR) && CLICKGAME_BIN=$(CURDIR)/target/debug/clickgame npm run screenshots

# ---- fuzzing (issue 6; fuzz/ is its own cargo workspace, never built by `cargo test`) -------
.PHONY: fuzz
FUZZ_SECONDS ?= 60

## cargo-fuzz (libFuzzer + ASan; `cargo install cargo-fuzz`, nightly or RUSTC_BOOTSTRAP=1):
## every target in fuzz/fuzz_targets for FUZZ_SECONDS each, then executions and crashes.
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# ---- the Node.js peer (issue 15; see benches/peers/node-ws/server.js) -----------------------
.PHONY: peer-deps compare-peers
PEER_DIR := benches/peers/node-ws
COMPARE_DIR ?= $(RESULTS_DIR)/compare-peers
COMPARE_ARGS ?=

## The peer's one dependency (ws, pinned in its package-lock.json); the load tool's smoke
## test (`cargo test --bin clickgame-load`) needs it installed.
peer-deps: deps

## clickgame against the Node ws peer in one run: fan-out to 9,000 spectators and 9,000 idle
## connections over WebSocket and SSE, each server spawned fresh per measurement; one table
## (time to last recipient, CPU per delivered event, RSS per idle connection, ratio peer ÷
## clickgame) in $(COMPARE_DIR)/compare.{md,json}. COMPARE_ARGS="--repeat 3" for medians.
compare-peers: peer-deps
	$(CARGO) build --release --bin clickgame --bin clickgame-load
	target/release/clickgame-load --peer node --peer-clients 9000 --out-dir $(COMPARE_DIR) $(COMPARE_ARGS)
	python3 scripts/plot_compare.py $(COMPARE_DIR)/compare.json
