#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer) of the code that reads what customers, agents
# and content editors write: `fuzz/fuzz_targets/` — `article` (a markdown file: parsing, sections,
# quotes, links, HTML, the corrector built from it), `customer_text` (a message through the word and
# cue readers, the follow-up rules, the corrector, the agent's summary), `bot` (a question through
# the bot's whole turn on the demo knowledge base with the real models, and a pick of any passage)
# and `frames` (a widget's or console's text frame). A panic, an overflow or a broken promise stops the run and leaves the
# input in fuzz/artifacts/TARGET/; its regression test goes with the fix.
#
#   scripts/fuzz.sh                  each target for 5 minutes
#   scripts/fuzz.sh 60 article       one target for a minute
#
# Installs what is missing first: the nightly toolchain (rustup) and cargo-fuzz (crates.io). The
# first build compiles every dependency again with nightly (about 10 minutes on 2 cores, into
# fuzz/target). Corpora start from the demo knowledge base and our own message sets (and the
# Plausible help centre's pages when ../shared/data is beside the repository) and grow in
# fuzz/corpus/ (not committed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
seconds="${1:-300}"
shift || true
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS per target] [TARGET...] (seconds first: got '$seconds')" >&2
    exit 2
    ;;
esac
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then targets=(article customer_text bot frames); fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# libtorch for the fuzz binaries (the main build writes an rpath; these link the library only).
export LD_LIBRARY_PATH="$repo/.torch/site/torch/lib:$repo/.torch/site/nvidia/cuda_runtime/lib:$repo/.torch/site/nvidia/cuda_cupti/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

seed() {
    local target="$1" dir="$repo/fuzz/corpus/$1"
    mkdir -p "$dir"
    [ -n "$(ls -A "$dir")" ] && return
    case "$target" in
    article)
        local pages=(knowledge_base)
        if [ -d ../shared/data/plausible_docs/docs ]; then pages+=(../shared/data/plausible_docs/docs); fi
        local files
        mapfile -t files < <(find "${pages[@]}" -name '*.md*' | sort)
        for f in "${files[@]:0:100}"; do
            cp "$f" "$dir/$(printf '%s' "$f" | tr '/' '_')"
        done
        ;;
    customer_text | bot)
        # One message a file: the list items of our own message sets.
        python3 - "$dir" models/support_messages.yaml models/upset_examples.yaml models/calm_short.yaml <<'PY'
import pathlib, re, sys
out = pathlib.Path(sys.argv[1])
n = 0
for name in sys.argv[2:]:
    for line in pathlib.Path(name).read_text().splitlines():
        m = re.match(r'\s*-\s+(?:text:\s*)?"?(.*?)"?\s*$', line)
        if m and len(m.group(1)) > 3 and n < 400:
            (out / f"m{n}").write_text(m.group(1))
            n += 1
PY
        ;;
    frames)
        printf '%s' '{"type":"hello","session":null,"last_seq":3,"visitor":{"name":"Ana"}}' >"$dir/hello"
        printf '%s' '{"type":"message","client_id":"c1","seen":4,"text":"my order never came"}' >"$dir/message"
        printf '%s' '{"type":"message","client_id":"c2","text":"Billing","choice":{"seq":4,"passage":"billing.md#cards"}}' >"$dir/choice"
        printf '%s' '{"type":"rate","score":5}' >"$dir/rate"
        printf '%s' '{"type":"claim","conversation_id":"0b6d7c1e-9f0a-4c1e-8a51-6a1e3c2f9d10"}' >"$dir/claim"
        printf '%s' '{"type":"message","conversation_id":"0b6d7c1e-9f0a-4c1e-8a51-6a1e3c2f9d10","client_id":"a1","seen":2,"text":"hi"}' >"$dir/reply"
        ;;
    esac
}

for target in "${targets[@]}"; do seed "$target"; done
cd fuzz
for target in "${targets[@]}"; do
    echo "fuzz: $target for ${seconds}s" >&2
    # Markdown files can be long; messages and frames are capped by the server (a message's 4,000
    # characters by default, a customer's frame 16 KiB, an agent's 64 KiB), so their inputs go up
    # to about that at once. The bot's first input also loads the models and the knowledge base.
    case "$target" in
    article) limits=(-max_len=65536 -timeout=10) ;;
    bot) limits=(-max_len=16384 -len_control=0 -timeout=120) ;;
    frames) limits=(-max_len=65536 -len_control=0 -timeout=10) ;;
    *) limits=(-max_len=16384 -len_control=0 -timeout=10) ;;
    esac
    cargo +nightly fuzz run -s none -a "$target" "$repo/fuzz/corpus/$target" -- \
        -max_total_time="$seconds" "${limits[@]}" -rss_limit_mb=4096
done
