#!/usr/bin/env bash
# The one-call GPU check: everything a lent GPU machine (no network, no apt, no Debian dev
# packages; PyTorch's pip CUDA libraries) needs travels in one ignored folder, gpu-pack/.
#
#   scripts/gpu-check.sh pack       # here: build (Release, CUDA on, sm_90) and fill gpu-pack/
#   scripts/gpu-check.sh run        # there: every check, results under $OUT (default out-gpu/)
#   scripts/gpu-check.sh rehearse   # here: `run --rehearsal` inside a pristine Debian 12 root
#
# On the device tool: command `scripts/gpu-check.sh run`, carry ["gpu-pack"], timeout 540 s.
# docs/cuda.md says what each output answers.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
pack=$repo/gpu-pack
build=${KILN_GPU_BUILD_DIR:-build-gpu}
binaries=(app/kiln tests/cuda/kiln_cuda_tests bench/cuda/kiln_cuda_model_bench
    bench/cuda/kiln_cuda_attention_bench)
# Models the benches run, carried from models/ when fetched: SRVGGNetCompact and RRDBNet
# (x4plus-anime: 6 RRDB blocks, 8.9 MB; x4plus at 33 MB would not fit the 64 MiB carry),
# waifu2x CUNet 2x and Real-CUGAN 2x (transposed convolutions, squeeze-excitation), OmniSR
# (depthwise convolutions, window and channel attention): 8.7 MB together. A plan that
# cannot be built on the device (e.g. no cuDNN algorithm for a depthwise convolution) shows
# as that model's bench error.
bench_models=(realesr-animevideov3-x4 realesrgan-x4plus-anime waifu2x-cunet-noise0-scale2x
    realcugan-up2x-conservative 4x_WTP_descreenton)

# Libraries never carried: the C runtime (the device's is newer), and the CUDA libraries
# the device has from pip (nvidia-cudnn-cu13, nvidia-cublas, nvidia-cuda-runtime) or its driver.
skip_lib='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libstdc\+\+|libgcc_s|libcuda\.|libcudart|libcudnn|libcublas|libnvrtc|libnvJitLink)'

do_pack() {
    local t0
    t0=$(date +%s)
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA=ON \
        -DCMAKE_CUDA_ARCHITECTURES="${KILN_GPU_ARCHS:-90}" -DKILN_WERROR=ON >/dev/null
    grep -q '^KILN_CUDNN_LIB:FILEPATH=.*cudnn' "$build/CMakeCache.txt" || {
        echo "gpu-check: cuDNN was not found; the CUDA tests cannot be built" >&2
        exit 1
    }
    cmake --build "$build" --parallel "$(nproc)" --target kiln kiln_cuda_tests \
        kiln_cuda_model_bench kiln_cuda_attention_bench
    rm -rf "$pack"
    mkdir -p "$pack/bin" "$pack/lib" "$pack/models"
    for b in "${binaries[@]}"; do
        cp "$build/$b" "$pack/bin/"
        strip --strip-unneeded "$pack/bin/$(basename "$b")"
    done
    # Every shared library the binaries load, but for the C runtime and CUDA's own.
    for b in "$pack"/bin/*; do
        ldd "$b" | awk '/=> \//{print $1" "$3}'
    done | sort -u | while read -r name path; do
        [[ "$name" =~ $skip_lib ]] && continue
        cp -L "$path" "$pack/lib/$name"
    done
    for m in "${bench_models[@]}"; do
        for f in models/"$m".*; do
            [[ -e "$f" ]] && cp -L "$f" "$pack/models/"
        done
    done
    # oneDNN alone is ~40 MB: libraries travel compressed and are unpacked there.
    tar -C "$pack" -czf "$pack/lib.tar.gz" lib && rm -rf "$pack/lib"
    cp scripts/gpu-check.sh "$pack/"
    local repo_mb pack_mb
    pack_mb=$(du -sm "$pack" | cut -f1)
    # The working tree the device tool copies: git's visible files. Outside a git checkout
    # (a pristine root's copy) what git would copy cannot be told.
    repo_mb="?"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        repo_mb=$(git ls-files -z -co --exclude-standard | du -cm --files0-from=- | tail -1 | cut -f1)
    fi
    echo "gpu-check: packed in $(($(date +%s) - t0)) s: gpu-pack/ ${pack_mb} MiB + working tree" \
        "${repo_mb} MiB (the device tool carries 64 MiB at most)"
    ls -la "$pack" "$pack/bin" "$pack/models"
}

# The device's pip CUDA libraries: nvidia/{cudnn,cublas,cuda_runtime}/lib under any Python.
find_pip_cuda_libs() {
    local dirs=() d
    for d in /opt/torch/.venv/lib/python3*/site-packages /usr/local/lib/python3*/dist-packages \
        /usr/lib/python3/dist-packages ${KILN_PIP_SITE:-}; do
        for sub in cudnn cublas cuda_runtime cu13; do
            [[ -d "$d/nvidia/$sub/lib" ]] && dirs+=("$d/nvidia/$sub/lib")
        done
    done
    local IFS=:
    echo "${dirs[*]}"
}

do_run() {
    local rehearsal=0
    [[ "${1:-}" == "--rehearsal" ]] && rehearsal=1
    local out=${OUT:-$repo/out-gpu}
    mkdir -p "$out"
    [[ -f "$pack/lib.tar.gz" ]] || { echo "gpu-check: no gpu-pack/ (run 'pack' first)" >&2; exit 1; }
    local work=/tmp/kiln-gpu-check
    rm -rf "$work" && mkdir -p "$work"
    tar -C "$work" -xzf "$pack/lib.tar.gz"
    local pip_libs
    pip_libs=$(find_pip_cuda_libs)
    export LD_LIBRARY_PATH="$work/lib${pip_libs:+:$pip_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export KILN_TEST_DATA=$repo/tests/data KILN_MODELS_DIR=$pack/models
    local bin=$pack/bin summary=$out/summary.txt
    : >"$summary"
    note() { echo "$*" | tee -a "$summary"; }
    note "gpu-check $(date -u +%FT%TZ) rehearsal=$rehearsal"
    note "pip CUDA libraries: ${pip_libs:-none found}"

    # 1. Every carried binary loads: no library is missing.
    local missing=0 b
    for b in "$bin"/*; do
        if ldd "$b" | grep -q 'not found'; then
            note "MISSING libraries for $(basename "$b"): $(ldd "$b" | grep 'not found' | tr -s ' \t' ' ')"
            missing=1
        fi
    done
    ((missing == 0)) && note "libraries: every carried binary resolves all its libraries"

    (nvidia-smi || echo "nvidia-smi: not available") >"$out/nvidia-smi.txt" 2>&1
    note "device: $(head -n 12 "$out/nvidia-smi.txt" | grep -o 'NVIDIA [A-Z0-9]*[^|]*' | head -1)"
    "$bin/kiln" info >"$out/kiln-info.txt" 2>&1 || true
    note "kiln info: $(grep -i -m1 -E 'cuda|device' "$out/kiln-info.txt" || echo '?')"

    # 2. The CUDA test suite, JSON results (skips everything without a device).
    local rc=0
    "$bin/kiln_cuda_tests" --gtest_output="json:$out/cuda-tests.json" >"$out/cuda-tests.txt" 2>&1 ||
        rc=$?
    note "cuda tests: exit $rc; $(grep -cE '^\[       OK \]' "$out/cuda-tests.txt") passed," \
        "$(grep -cE '^\[  FAILED  \] .*\([0-9]+ ms\)' "$out/cuda-tests.txt") failed," \
        "$(grep -cE '^\[  SKIPPED \] .*\([0-9]+ ms\)' "$out/cuda-tests.txt") skipped"

    # 3. Plans and benches: each model's describe() and median time at 256x256.
    local m
    for m in "${bench_models[@]}"; do
        if compgen -G "$pack/models/$m.*" >/dev/null; then
            "$bin/kiln" bench -m "$m" --models-dir "$pack/models" --device cuda --size 256 \
                --repeat 10 --warmup 2 --describe >"$out/bench-$m.json" 2>"$out/plan-$m.txt" ||
                true
            note "bench $m 256: $(head -c 300 "$out/bench-$m.json")"
        else
            note "bench $m: model not carried"
        fi
    done
    "$bin/kiln_cuda_model_bench" --benchmark_format=json --benchmark_out="$out/model-bench.json" \
        >"$out/model-bench.txt" 2>&1 || true
    "$bin/kiln_cuda_attention_bench" --benchmark_out="$out/attention-bench.json" \
        >"$out/attention-bench.txt" 2>&1 || true
    # The UNet: 16 guided 30-step images of the trained model, timed whole.
    local t0 t1
    t0=$(date +%s.%N)
    "$bin/kiln" generate -m fashion-unet --models-dir "$repo/tests/data/diffusion" --device cuda \
        --prompt "ankle boot" --steps 30 --sampler ddim --guidance 3 --seed 7 -n 16 \
        "$out/unet-grid.png" >"$out/unet-generate.txt" 2>&1 || true
    t1=$(date +%s.%N)
    note "unet: 16 images x 30 guided steps on cuda: $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s" \
        "($(tail -n 1 "$out/unet-generate.txt"))"

    # 4. compute-sanitizer memcheck on a subset, where the tool exists and works.
    if command -v compute-sanitizer >/dev/null 2>&1 && ((rehearsal == 0)); then
        compute-sanitizer --tool memcheck --error-exitcode 9 "$bin/kiln_cuda_tests" \
            --gtest_filter='*Tile*:*Norm*:*Attention*' >"$out/memcheck.txt" 2>&1 && rc=0 || rc=$?
        note "memcheck (Tile, Norm, Attention): exit $rc, $(tail -n 1 "$out/memcheck.txt")"
    else
        note "memcheck: compute-sanitizer not run"
    fi
    echo
    echo "---- summary ----"
    cat "$summary"
    ((missing == 0))
}

do_rehearse() {
    [[ -f "$pack/lib.tar.gz" ]] || do_pack
    local stage
    stage=$(mktemp -d /var/tmp/kiln-gpu-stage.XXXXXX)
    trap 'rm -rf "$stage"' RETURN
    mkdir -p "$stage/scripts" "$stage/tests" "$stage/fakepip/nvidia"
    cp -a "$pack" "$stage/gpu-pack"
    cp scripts/gpu-check.sh "$stage/scripts/"
    cp -a tests/data "$stage/tests/"
    # The device's pip wheels stand in as the host toolkit's libraries of the same names.
    local cuda_lib
    cuda_lib=$(readlink -f /usr/local/cuda)/lib64
    mkdir -p "$stage/fakepip/nvidia/cudnn/lib" "$stage/fakepip/nvidia/cublas/lib" \
        "$stage/fakepip/nvidia/cuda_runtime/lib"
    cp -L "$cuda_lib"/libcudnn*.so.9 "$stage/fakepip/nvidia/cudnn/lib/" 2>/dev/null ||
        cp -L /usr/lib/x86_64-linux-gnu/libcudnn*.so.9 "$stage/fakepip/nvidia/cudnn/lib/"
    cp -L "$cuda_lib"/libcublas*.so.13 "$stage/fakepip/nvidia/cublas/lib/"
    cp -L "$cuda_lib"/libcudart.so.13 "$stage/fakepip/nvidia/cuda_runtime/lib/"
    scripts/pristine-root.sh "$stage" -- \
        "KILN_PIP_SITE=/src/fakepip OUT=/src/out scripts/gpu-check.sh run --rehearsal"
}

case "${1:-}" in
pack) do_pack ;;
run) shift; do_run "$@" ;;
rehearse) do_rehearse ;;
*) echo "usage: scripts/gpu-check.sh pack|run|rehearse" >&2; exit 2 ;;
esac
