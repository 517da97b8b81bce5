# clickgame — the two commands that matter: `make run` and `make test`.
CARGO ?= cargo
E2E_DIR := e2e

.PHONY: run test unit fmt lint e2e e2e-deps build clean

## Start the server on the embedded defaults: http://127.0.0.1:8080
run:
	$(CARGO) run --release --bin clickgame

## Everything CI checks: formatting, lints, unit + integration tests, browser tests.
test: fmt lint unit e2e

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test --all-targets

build:
	$(CARGO) build --bin clickgame

e2e-deps:
	cd $(E2E_DIR) && npm ci --no-audit --no-fund

## Real-browser tests: headless Chromium (Debian's /usr/bin/chromium) via playwright-core.
e2e: build e2e-deps
	cd $(E2E_DIR) && CLICKGAME_BIN=$(CURDIR)/target/debug/clickgame npm test

clean:
	$(CARGO) clean

# ---- WebSocket conformance (issue 6) ---------------------------------------------------------
.PHONY: autobahn

## Autobahn|Testsuite's fuzzingclient (cases 1-7, 10) against `clickgame --ws-echo-path`, which
## runs the game's own socket loop; installs the suite (Python 2.7) into target/autobahn-venv
## on first use; report in target/autobahn/index.html; fails if any case FAILED.
autobahn:
	CARGO="$(CARGO)" scripts/autobahn.sh
