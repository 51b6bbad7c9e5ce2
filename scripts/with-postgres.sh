#!/usr/bin/env bash
# Runs a command with a throwaway Postgres: `scripts/with-postgres.sh cargo test --test postgres`.
#
# Installs Debian's `postgresql` package when no Postgres server binaries are found (apt-get, as root
# or through passwordless sudo), creates a cluster in a temporary directory (as `nobody` when run as
# root: Postgres refuses to run as root), starts it on a free loopback port with its socket in that
# directory, exports FRONTDESK_TEST_POSTGRES=postgres://frontdesk@127.0.0.1:PORT/postgres (a
# superuser, trust authentication, reachable from this machine only), runs the command, then stops
# the cluster and deletes it, whatever the command's outcome; the command's exit status is returned.
#
# When Postgres cannot be installed or started, the command still runs without the variable (the
# Postgres tests then say they are skipped and why), unless FRONTDESK_REQUIRE_POSTGRES=1 (CI): then
# this fails.
set -euo pipefail

if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

say() { echo "with-postgres: $*" >&2; }

unavailable() {
    if [ "${FRONTDESK_REQUIRE_POSTGRES:-0}" = 1 ]; then
        say "$1 (FRONTDESK_REQUIRE_POSTGRES=1, so this is an error)"
        exit 1
    fi
    say "$1; running without Postgres: the Postgres tests will say they are skipped"
    unset FRONTDESK_TEST_POSTGRES
    shift
    exec "$@"
}

# Debian's server binaries, newest version first.
find_bin() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

if ! bin="$(find_bin)"; then
    if [ "$(id -u)" = 0 ]; then
        apt=(apt-get)
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        apt=(sudo -n apt-get)
    else
        unavailable "no Postgres server found and not allowed to install Debian's postgresql (run as root, or apt-get install postgresql)" "$@"
    fi
    say "installing Debian's postgresql package"
    if ! { "${apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends postgresql >/dev/null; }; then
        unavailable "apt-get install postgresql failed" "$@"
    fi
    bin="$(find_bin)" || unavailable "postgresql installed, but no initdb under /usr/lib/postgresql" "$@"
fi

dir="$(mktemp -d -t frontdesk-pg.XXXXXX)"
chmod 755 "$dir"
as_owner=()
if [ "$(id -u)" = 0 ]; then
    chown nobody "$dir"
    as_owner=(runuser -u nobody --)
fi

stop() {
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U frontdesk --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    trap - EXIT
    stop
    unavailable "initdb failed (its log is above)" "$@"
}

# A free loopback port: tried at random until one is free and the server starts on it. The
# cluster is throwaway, so durability is off (fsync) to keep the tests fast; frontdesk's own
# settings are what a test changes, not these.
port=""
for _ in $(seq 1 20); do
    candidate=$((20000 + RANDOM % 30000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
        continue
    fi
    if "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
        -o "-p $candidate -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c full_page_writes=off" \
        >/dev/null 2>&1; then
        port="$candidate"
        break
    fi
done
if [ -z "$port" ]; then
    tail -20 "$dir/server.log" >&2 || true
    trap - EXIT
    stop
    unavailable "Postgres did not start on a loopback port (its log is above)" "$@"
fi

export FRONTDESK_TEST_POSTGRES="postgres://frontdesk@127.0.0.1:$port/postgres"
say "Postgres $("$bin/postgres" --version | awk '{print $3}') at $FRONTDESK_TEST_POSTGRES (data in $dir)"
set +e
"$@"
status=$?
set -e
exit "$status"
