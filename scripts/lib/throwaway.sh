# Shared by scripts/with-postgres.sh and scripts/with-redis.sh (sourced, not run): the shape of
# "run a command with a throwaway server". The caller sets, before sourcing:
#   TW_NAME   how its messages start (e.g. with-redis)
#   TW_WHAT   the server in words (e.g. Redis)
#   TW_VAR    the variable it exports (e.g. FRONTDESK_TEST_REDIS)
#   TW_TESTS  who needs it, for the skip message (e.g. "the cluster tests")
# and then uses: tw_usage, tw_say, tw_unavailable, tw_install, tw_tempdir, tw_try_ports, tw_listening,
# tw_run. Nothing here starts a server: each script knows how to start and stop its own.

# Exits 2 with the usage line when no command was given.
tw_usage() {
    if [ "$1" -eq 0 ]; then
        echo "usage: $0 COMMAND [ARGS...]" >&2
        exit 2
    fi
}

tw_say() { echo "$TW_NAME: $*" >&2; }

# tw_unavailable MESSAGE COMMAND...: the server cannot be had. Under FRONTDESK_REQUIRE_POSTGRES=1
# (CI) that is an error; otherwise the command runs without $TW_VAR (its tests say they are
# skipped, and why).
tw_unavailable() {
    if [ "${FRONTDESK_REQUIRE_POSTGRES:-0}" = 1 ]; then
        tw_say "$1 (FRONTDESK_REQUIRE_POSTGRES=1, so this is an error)"
        exit 1
    fi
    tw_say "$1; running without $TW_WHAT: $TW_TESTS will say they are skipped"
    unset "$TW_VAR"
    shift
    exec "$@"
}

# tw_install PACKAGE COMMAND...: installs Debian's PACKAGE (apt-get, as root or through
# passwordless sudo); when that is not possible, tw_unavailable with COMMAND.
tw_install() {
    local package="$1"
    shift
    local apt
    if [ "$(id -u)" = 0 ]; then
        apt=(apt-get)
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        apt=(sudo -n apt-get)
    else
        tw_unavailable "no $TW_WHAT found and not allowed to install Debian's $package (run as root, or apt-get install $package)" "$@"
    fi
    tw_say "installing Debian's $package package"
    if ! { "${apt[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq --no-install-recommends "$package" >/dev/null; }; then
        tw_unavailable "apt-get install $package failed" "$@"
    fi
}

# tw_tempdir PREFIX: a new temporary directory's path on stdout.
tw_tempdir() { mktemp -d -t "$1.XXXXXX"; }

# tw_listening PORT: true when something accepts connections on 127.0.0.1:PORT.
tw_listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# tw_try_ports START: calls `START PORT` with random free loopback ports (up to 20) until it
# succeeds; sets TW_PORT to that port, or to "" when none did.
tw_try_ports() {
    local start="$1" candidate
    TW_PORT=""
    for _ in $(seq 1 20); do
        candidate=$((20000 + RANDOM % 30000))
        if tw_listening "$candidate"; then
            continue
        fi
        if "$start" "$candidate"; then
            TW_PORT="$candidate"
            return 0
        fi
    done
    return 1
}

# tw_run URL COMMAND...: exports $TW_VAR=URL, runs COMMAND, and exits with its status (the
# caller's EXIT trap stops the server and removes its directory).
tw_run() {
    export "$TW_VAR=$1"
    shift
    set +e
    "$@"
    local status=$?
    set -e
    exit "$status"
}
