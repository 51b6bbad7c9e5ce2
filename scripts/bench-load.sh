#!/usr/bin/env bash
# The benchmark table of docs/BENCHMARKS.md, measured again: every frontdesk-load profile against
# the release server, JSON reports into docs/benchmarks/ (or $OUT), then the latency plot.
# Run it on an otherwise idle machine, at normal priority, after `cargo build --release --bins`.
#
#   scripts/bench-load.sh                 everything, RUNS=3 runs each (about 40 minutes)
#   RUNS=1 scripts/bench-load.sh relay    one profile (idle, bot, relay, desk, edit, chaos)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
runs="${RUNS:-3}"
out="${OUT:-$repo/docs/benchmarks}"
plausible="${PLAUSIBLE:-../shared/data/plausible_docs/docs}"
load="target/release/frontdesk-load"
mkdir -p "$out"
if [ ! -x "$load" ] || [ ! -x target/release/frontdesk ]; then
    echo "build first: cargo build --release --bins" >&2
    exit 1
fi
if [ ! -d "$plausible" ]; then
    echo "the bot and edit profiles use the Plausible docs at $plausible (../shared/data): not found" >&2
    exit 1
fi
profiles=("$@")
if [ "${#profiles[@]}" -eq 0 ]; then
    profiles=(idle bot relay desk edit chaos)
fi
for profile in "${profiles[@]}"; do
    echo "== $profile"
    case "$profile" in
    idle) "$load" idle --runs "$runs" --steps 1000,3000,5000,10000,15000 --out "$out/idle.json" ;;
    bot) "$load" bot --runs "$runs" --kb "$plausible" --rates 20,60,150,200 --out "$out/bot.json" ;;
    relay)
        "$load" relay --runs "$runs" --direction a2c --rates 200,1000,2000,5000 --conversations 500 --out "$out/relay.json"
        "$load" relay --runs "$runs" --direction both --rates 200,1000,2000,5000 --conversations 500 --out "$out/relay-both.json"
        ;;
    desk) "$load" desk --runs "$runs" --kb "$plausible" --out "$out/desk.json" ;;
    edit) "$load" edit --runs "$runs" --kb "$plausible" --out "$out/edit.json" ;;
    # The verdict is a finding, not a reason to stop the other profiles.
    chaos) "$load" chaos --out "$out/chaos.json" || echo "chaos: FAILED (see $out/chaos.json)" ;;
    *) echo "unknown profile $profile" >&2; exit 2 ;;
    esac
done
if [ -f "$out/relay.json" ] && [ -f "$out/bot.json" ]; then
    scripts/plot-bench.sh "$out/latency.png" "$out/relay.json" "$out/bot.json"
fi
