#!/usr/bin/env bash
# Runs a command with a throwaway Redis: `scripts/with-redis.sh cargo test --test cluster`.
#
# Installs Debian's `redis-server` package when no `redis-server` is found (apt-get, as root or
# through passwordless sudo), starts it in a temporary directory on a free loopback port (no
# persistence: nothing is written but its log), exports FRONTDESK_TEST_REDIS=redis://127.0.0.1:PORT,
# runs the command, then stops it and deletes the directory, whatever the command's outcome; the
# command's exit status is returned. `make test` runs it inside scripts/with-postgres.sh, so the
# several-node tests (tests/cluster.rs) get both. The shared steps are in scripts/lib/throwaway.sh.
#
# When Redis cannot be installed or started, the command still runs without the variable (the
# cluster tests then say they are skipped and why), unless FRONTDESK_REQUIRE_POSTGRES=1 (CI): then
# this fails.
set -euo pipefail

TW_NAME=with-redis TW_WHAT=Redis TW_VAR=FRONTDESK_TEST_REDIS TW_TESTS="the cluster tests"
# shellcheck source=lib/throwaway.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/throwaway.sh"
tw_usage $#

if ! bin="$(command -v redis-server)"; then
    tw_install redis-server "$@"
    bin="$(command -v redis-server)" || tw_unavailable "redis-server installed, but not on the PATH" "$@"
fi

dir="$(tw_tempdir frontdesk-redis)"
pid=""
stop() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap stop EXIT

# Starts redis-server on port $1 and waits until it answers there (or gives up on that port).
start() {
    "$bin" --port "$1" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
        --daemonize no --logfile "$dir/redis.log" &
    pid=$!
    for _ in $(seq 1 50); do
        if tw_listening "$1"; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
    return 1
}

if ! tw_try_ports start; then
    tail -20 "$dir/redis.log" >&2 || true
    trap - EXIT
    stop
    tw_unavailable "Redis did not start on a loopback port (its log is above)" "$@"
fi

tw_say "Redis $("$bin" --version | awk '{print $3}' | sed 's/v=//') at redis://127.0.0.1:$TW_PORT (in $dir)"
tw_run "redis://127.0.0.1:$TW_PORT" "$@"
