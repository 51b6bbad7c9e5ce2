#!/usr/bin/env bash
# Runs a command with a throwaway Redis: `scripts/with-redis.sh cargo test --test cluster`.
#
# Installs Debian's `redis-server` package when no `redis-server` is found (apt-get, as root or
# through passwordless sudo), starts it in a temporary directory on a free loopback port (no
# persistence: nothing is written but its log), exports FRONTDESK_TEST_REDIS=redis://127.0.0.1:PORT,
# runs the command, then stops it and deletes the directory, whatever the command's outcome; the
# command's exit status is returned. `make test` runs it inside scripts/with-postgres.sh, so the
# several-node tests (tests/cluster.rs) get both.
#
# When Redis cannot be installed or started, the command still runs without the variable (the
# cluster tests then say they are skipped and why), unless FRONTDESK_REQUIRE_POSTGRES=1 (CI): then
# this fails.
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

say() { echo "with-redis: $*" >&2; }

unavailable() {
    if [ "${FRONTDESK_REQUIRE_POSTGRES:-0}" = 1 ]; then
        say "$1 (FRONTDESK_REQUIRE_POSTGRES=1, so this is an error)"
        exit 1
    fi
    say "$1; running without Redis: the cluster tests will say they are skipped"
    unset FRONTDESK_TEST_REDIS
    shift
    exec "$@"
}

if ! bin="$(command -v redis-server)"; then
    if [ "$(id -u)" = 0 ]; then
        apt=(apt-get)
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        apt=(sudo -n apt-get)
    else
        unavailable "no redis-server found and not allowed to install Debian's redis-server (run as root, or apt-get install redis-server)" "$@"
    fi
    say "installing Debian's redis-server package"
    if ! { "${apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends redis-server >/dev/null; }; then
        unavailable "apt-get install redis-server failed" "$@"
    fi
    bin="$(command -v redis-server)" || unavailable "redis-server installed, but not on the PATH" "$@"
fi

dir="$(mktemp -d -t frontdesk-redis.XXXXXX)"
pid=""
stop() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap stop EXIT

# A free loopback port: tried at random until one is free and the server answers on it.
port=""
for _ in $(seq 1 20); do
    candidate=$((20000 + RANDOM % 30000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        continue
    fi
    "$bin" --port "$candidate" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
        --daemonize no --logfile "$dir/redis.log" &
    pid=$!
    for _ in $(seq 1 50); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
            port="$candidate"
            break
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if [ -n "$port" ]; then
        break
    fi
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
done
if [ -z "$port" ]; then
    tail -20 "$dir/redis.log" >&2 || true
    trap - EXIT
    stop
    unavailable "Redis did not start on a loopback port (its log is above)" "$@"
fi

export FRONTDESK_TEST_REDIS="redis://127.0.0.1:$port"
say "Redis $("$bin" --version | awk '{print $3}' | sed 's/v=//') at $FRONTDESK_TEST_REDIS (in $dir)"
set +e
"$@"
status=$?
set -e
exit "$status"
