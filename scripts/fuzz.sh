#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz: every reader of untrusted bytes) with clang,
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs each for SECONDS (default 600,
# the hardening issue's 10 minutes) from a corpus seeded with the repository's fixtures.
# Prints, and writes to build-fuzz/fuzz-summary.txt, one line per target: runs, exec/s,
# coverage (libFuzzer's cov: edges and ft: features) and its verdict. Exits non-zero when a
# target finds a crash, a leak, a timeout, or an allocation over -malloc_limit_mb; the input
# is kept under build-fuzz/findings/ (make it a regression test).
#
#   scripts/fuzz.sh            # 10 minutes per target
#   scripts/fuzz.sh 15         # what scripts/test.sh (CI) runs
#   KILN_FUZZ_TARGETS="fuzz_pth fuzz_ncnn" scripts/fuzz.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
build=${KILN_FUZZ_BUILD:-build-fuzz}
all_targets="fuzz_pth fuzz_safetensors fuzz_ncnn fuzz_diffusers_config fuzz_image fuzz_multipart fuzz_submission"
targets=${KILN_FUZZ_TARGETS:-$all_targets}

# Debian 12's clang 14 (scripts/install-deps.sh installs it); its symbolizer names frames.
command -v clang++-14 >/dev/null || { echo "fuzz: no clang++-14 (scripts/install-deps.sh)"; exit 1; }
if [[ -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
    export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
    generator=()
    command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
    CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer" \
        -DKILN_FUZZ=ON -DKILN_CUDA=OFF -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_BENCH=OFF \
        -DKILN_WERROR=ON >/dev/null
fi
cmake --build "$build" --target kiln_fuzz_targets --parallel "$(nproc)"

# Seeds: the committed fixtures each reader takes (hostile ones included), files under 1 MiB.
seeds="$build/seeds"
rm -rf "$seeds"
mkdir -p "$seeds"
seed() {  # seed TARGET FILE...
    mkdir -p "$seeds/$1"
    local f
    for f in "${@:2}"; do
        [[ -f "$f" && $(stat -c %s "$f") -lt 1048576 ]] && cp "$f" "$seeds/$1/"
    done
    return 0
}
data=tests/data
seed fuzz_pth "$data"/weights/*.pth
seed fuzz_safetensors "$data"/weights/*.safetensors "$data"/diffusion/*/*.safetensors
seed fuzz_diffusers_config "$data"/diffusion/*/config.json
seed fuzz_image "$data"/image/*.png "$data"/image/*.jpg "$data"/image/*.npy
mkdir -p "$seeds/fuzz_ncnn"
for param in "$data"/weights/*.param; do  # the param text, a NUL, the bin
    bin="${param%.param}.bin"
    [[ -f "$bin" && $(stat -c %s "$bin") -lt 1048576 ]] || continue
    cat "$param" <(printf '\0') "$bin" >"$seeds/fuzz_ncnn/$(basename "$param" .param)"
done
mkdir -p "$seeds/fuzz_multipart" "$seeds/fuzz_submission"
printf 'multipart/form-data; boundary=b0\n--b0\r\nContent-Disposition: form-data; name="request"\r\nContent-Type: application/json\r\n\r\n{"model":"m"}\r\n--b0\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n\x89PNG\r\n--b0--' \
    >"$seeds/fuzz_multipart/two-parts"
printf 'multipart/form-data; boundary="q;b"\npreamble\r\n--q;b\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n--q;b--\r\n' \
    >"$seeds/fuzz_multipart/quoted"
printf '{"model":"m","task":"upscale","input":{"image":"iVBORw0KGgo="},"params":{"tile":64},"priority":"high"}' \
    >"$seeds/fuzz_submission/upscale"
printf '{"model":"g","task":"generate","input":{"prompt":"bag"},"params":{"steps":2,"seed":7}}' \
    >"$seeds/fuzz_submission/generate"

summary="$build/fuzz-summary.txt"
: >"$summary"
failed=0
for t in $targets; do
    corpus="$build/corpus/$t"
    findings="$build/findings"
    mkdir -p "$corpus" "$findings" "$seeds/$t"
    dict=()
    case $t in
    fuzz_submission | fuzz_diffusers_config | fuzz_safetensors) dict=(-dict=tests/fuzz/json.dict) ;;
    esac
    log="$build/$t.log"
    set +e
    "$build/tests/fuzz/$t" "${dict[@]}" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 \
        -artifact_prefix="$findings/$t-" "$corpus" "$seeds/$t" >"$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
    verdict="ok"
    if [[ $rc -ne 0 ]]; then
        verdict="FINDING (exit $rc; $log, $findings/)"
        failed=1
    fi
    line="$t: ${seconds} s, ${runs:-?} runs, ${rate:-?} exec/s, ${cov:-cov: ?}, corpus $(find "$corpus" -type f | wc -l) files: $verdict"
    echo "$line" | tee -a "$summary"
done
echo "fuzz: summary in $summary"
exit $failed
