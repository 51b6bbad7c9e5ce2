#!/usr/bin/env bash
# Draws docs/benchmarks/latency.png from the JSON reports in docs/benchmarks/ (relay and bot
# sweeps), installing matplotlib from PyPI into target/plot-venv first (once).
#
#   scripts/plot-bench.sh [OUT.png] [REPORT.json ...]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo/target/plot-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet matplotlib
fi
out="${1:-$repo/docs/benchmarks/latency.png}"
shift || true
if [ "$#" -eq 0 ]; then
    set -- "$repo/docs/benchmarks/relay.json" "$repo/docs/benchmarks/bot.json"
fi
"$venv/bin/python" "$repo/scripts/plot_bench.py" "$out" "$@"
