#!/usr/bin/env bash
# End-to-end tests: the widget and the agent console in real headless Chromium (Debian's
# `chromium`, driven by playwright-core from npm) against the real server binary with the demo
# knowledge base.
# Installs what is missing first: the `chromium` package (apt) and tests/e2e's npm packages
# (`npm ci`, pinned by package-lock.json). Part of `make test`.
#
#   scripts/e2e.sh                                   every test
#   scripts/e2e.sh --test-name-pattern=offline       arguments go to `node --test`
#   UPDATE_SCREENSHOTS=1 scripts/e2e.sh              also rewrite docs/screenshots/*.png
#   CHROMIUM=/path/to/chrome scripts/e2e.sh          another Chromium build
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
say() { printf 'e2e: %s\n' "$*" >&2; }
started=$SECONDS

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
apt_install() {
    say "installing Debian's $* package(s) (once)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
    apt_install chromium
fi
# The tests run under `node --test` (Node 18 or later; Debian 12's nodejs is 18).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
fi

# npm ci only when node_modules is missing or older than the lock file (it wipes node_modules).
if [ ! -f tests/e2e/node_modules/.package-lock.json ] ||
    [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
    say "installing the test's npm packages (npm ci)"
    (cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
fi

say "building the server"
cargo build --quiet --bin frontdesk
bin="${CARGO_TARGET_DIR:-$repo/target}/debug/frontdesk"

# The real server on a free port with an empty store, and the demo accounts (demo@example.com and
# editor@example.com, password demo) for the console and editors' tests. Agents claim from the
# queue (no automatic assignment), and the pickup and reply timers are too long to fire during a
# run. Every browser comes from 127.0.0.1, so the per-address limits are raised, and every test signs
# in as the same demo agent, so is the per-account login throttle (5 in a burst, then one per 30 s:
# a fast run signs in more often than that; tests/trust.rs drives the throttle itself). It serves a
# watched copy of the demo knowledge base, which the editors' test may break (FRONTDESK_E2E_KB);
# the base is embedded through the same cache the Rust integration tests use, so only the first
# run ever pays for it (~20 s).
work="$(mktemp -d)"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$repo/target"
cp -R "$repo/knowledge_base" "$work/kb"
# An empty settings file: the defaults and the variables below, whatever frontdesk.toml is here.
: > "$work/frontdesk.toml"
NO_COLOR=1 RUST_LOG="${RUST_LOG:-info,tantivy=warn,sqlx=warn,tower_http=warn}" \
    FRONTDESK_CONFIG="$work/frontdesk.toml" \
    FRONTDESK_SERVER__HOST=127.0.0.1 \
    FRONTDESK_SERVER__PORT=0 \
    FRONTDESK_STORE__URL="sqlite://$work/e2e.db" \
    FRONTDESK_KB__DIR="$work/kb" \
    FRONTDESK_KB__WATCH=true \
    FRONTDESK_KB__EMBEDDING_CACHE="$repo/target/test-embeddings.cache" \
    FRONTDESK_NLU__MODEL_DIR="$repo/models/all-MiniLM-L6-v2" \
    FRONTDESK_NLU__ONNX_MODEL_DIR="$repo/models/all-MiniLM-L6-v2-int8" \
    FRONTDESK_NLU__ONNX_RUNTIME="$repo/.onnxruntime/libonnxruntime.so" \
    FRONTDESK_AGENTS__DEMO_AGENT=true \
    FRONTDESK_HANDOFF__AUTO_ASSIGN=false \
    FRONTDESK_HANDOFF__PICKUP_TIMEOUT_SECONDS=3600 \
    FRONTDESK_HANDOFF__REPLY_TIMEOUT_SECONDS=3600 \
    FRONTDESK_AGENTS__LOGIN_ATTEMPTS_PER_ACCOUNT=1000 \
    FRONTDESK_AGENTS__LOGIN_ATTEMPTS_PER_ADDRESS=1000 \
    FRONTDESK_LIMITS__SOCKETS_PER_ADDRESS=1000 \
    FRONTDESK_LIMITS__QUEUED_PER_ADDRESS=1000 \
    FRONTDESK_LIMITS__NEW_CONVERSATIONS_PER_ADDRESS_PER_MINUTE=1000 \
    FRONTDESK_LIMITS__HANDOFF_REQUESTS_PER_ADDRESS_PER_MINUTE=1000 \
    FRONTDESK_LIMITS__TICKETS_PER_ADDRESS_PER_MINUTE=1000 \
    "$bin" serve >"$work/server.log" 2>&1 &
server=$!

say "starting the server (the first run embeds the demo knowledge base)"
port=""
for _ in $(seq 1 600); do
    if ! kill -0 "$server" 2>/dev/null; then
        say "the server exited; its log:"
        cat "$work/server.log" >&2
        exit 1
    fi
    port="$(grep -o 'serving on http://localhost:[0-9]*' "$work/server.log" | grep -o '[0-9]*$' || true)"
    if [ -n "$port" ] && curl -fsS "http://127.0.0.1:$port/api/health" >/dev/null 2>&1; then
        break
    fi
    port=""
    sleep 0.5
done
if [ -z "$port" ]; then
    say "the server did not answer /api/health within 5 minutes; its log:"
    cat "$work/server.log" >&2
    exit 1
fi
say "server ready on port $port after $((SECONDS - started)) s; running the browser tests"

status=0
# One test file at a time (they share one server); Node 18 has no flag for it and runs one file at a
# time on two cores anyway.
concurrency=()
if [ "$(node -p 'parseInt(process.versions.node)')" -ge 20 ]; then concurrency=(--test-concurrency=1); fi
(cd tests/e2e && FRONTDESK_URL="http://127.0.0.1:$port" FRONTDESK_E2E_KB="$work/kb" node --test "${concurrency[@]}" "$@" ./*.test.js) ||
    status=$?
if [ "$status" -ne 0 ]; then
    say "tests failed; the server's log ends with:"
    tail -n 40 "$work/server.log" >&2
fi
say "done in $((SECONDS - started)) s"
exit "$status"
