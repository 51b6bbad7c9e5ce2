#!/usr/bin/env bash
# Runs a command with a throwaway Postgres: `scripts/with-postgres.sh cargo test --test postgres`.
#
# Installs Debian's `postgresql` package when no Postgres server binaries are found (apt-get, as root
# or through passwordless sudo), creates a cluster in a temporary directory (as `nobody` when run as
# root: Postgres refuses to run as root), starts it on a free loopback port with its socket in that
# directory, exports FRONTDESK_TEST_POSTGRES=postgres://frontdesk@127.0.0.1:PORT/postgres (a
# superuser, trust authentication, reachable from this machine only), runs the command, then stops
# the cluster and deletes it, whatever the command's outcome; the command's exit status is returned.
# The shared steps are in scripts/lib/throwaway.sh.
#
# When Postgres cannot be installed or started, the command still runs without the variable (the
# Postgres tests then say they are skipped and why), unless FRONTDESK_REQUIRE_POSTGRES=1 (CI): then
# this fails.
set -euo pipefail

TW_NAME=with-postgres TW_WHAT=Postgres TW_VAR=FRONTDESK_TEST_POSTGRES TW_TESTS="the Postgres tests"
# shellcheck source=lib/throwaway.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/throwaway.sh"
tw_usage $#

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
    tw_install postgresql "$@"
    bin="$(find_bin)" || tw_unavailable "postgresql installed, but no initdb under /usr/lib/postgresql" "$@"
fi

dir="$(tw_tempdir frontdesk-pg)"
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
    tw_unavailable "initdb failed (its log is above)" "$@"
}

# Starts the cluster on port $1. It is throwaway, so durability is off (fsync) to keep the tests
# fast; frontdesk's own settings are what a test changes, not these.
start() {
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
        -o "-p $1 -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c full_page_writes=off" \
        >/dev/null 2>&1
}

if ! tw_try_ports start; then
    tail -20 "$dir/server.log" >&2 || true
    trap - EXIT
    stop
    tw_unavailable "Postgres did not start on a loopback port (its log is above)" "$@"
fi

url="postgres://frontdesk@127.0.0.1:$TW_PORT/postgres"
tw_say "Postgres $("$bin/postgres" --version | awk '{print $3}') at $url (data in $dir)"
tw_run "$url" "$@"
