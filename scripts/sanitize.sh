#!/usr/bin/env bash
# Builds the CPU test suite with sanitizers and runs it (the hardening issue's sanitizer
# builds), writing the last result to bench/results/<date>-sanitize-<mode>.txt.
#
#   scripts/sanitize.sh asan    # AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)
#   scripts/sanitize.sh tsan    # ThreadSanitizer (build-tsan/): kiln's own threads
#
# Both use g++ and no CUDA. Under TSan, OpenMP runs one thread (OMP_THREAD_LIMIT=1 caps even
# the explicit num_threads clauses; OMP_NUM_THREADS alone does not): libgomp is not
# instrumented, so TSan cannot see its fork/join and reports every parallel region as a race
# (measured: 127 reports, all between a parallel region and the thread that started it). What
# TSan checks is kiln's own threads: scheduler workers, HTTP threads, the model cache, the stores. Tests that need the fetched weights, a browser, Node
# or the reference binaries are left out (labels reference, browser, contract, load), and
# the soak (bench/soak, its own bench).
# Exits non-zero when a test fails or a sanitizer reports (halt_on_error / -fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: scripts/sanitize.sh asan|tsan}
jobs=$(nproc)  # before the OMP_* exports below, which GNU nproc obeys
case $mode in
asan)
    flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    ;;
tsan)
    flags="-fsanitize=thread -fno-omit-frame-pointer"
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    export OMP_NUM_THREADS=1 OMP_THREAD_LIMIT=1
    ;;
*)
    echo "usage: scripts/sanitize.sh asan|tsan" >&2
    exit 2
    ;;
esac
# GCC 12 warns only when a sanitizer instruments the code, in two known false positives:
# maybe-uninitialized inside libstdc++ (std::function in <regex>), and mismatched-new-delete
# where a test's own global operator new (malloc) meets its operator delete (free) once
# inlined (tests/cpu/run_allocates_nothing_test.cpp). Every other warning stays an error.
cxx_flags="$flags -Wno-maybe-uninitialized -Wno-mismatched-new-delete"
build=build-$mode
generator=()
[[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS="$cxx_flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" -DKILN_CUDA=OFF \
    -DKILN_BUILD_BENCH=OFF -DKILN_WERROR=ON >/dev/null
cmake --build "$build" --parallel "$jobs"
out=bench/results/$(date -u +%F)-sanitize-$mode.txt
{
    echo "# scripts/sanitize.sh $mode at $(git rev-parse --short HEAD) on $(date -u +%FT%TZ)"
    echo "# flags: $flags; $(g++ --version | head -1)"
} >"$out"
set +e
ctest --test-dir "$build" --parallel "$jobs" --timeout 1500 -LE 'reference|browser|contract|load|soak' \
    --output-on-failure 2>&1 | tee "$build/ctest.log" | grep -E 'tests passed|tests failed|Failed|\*\*\*' >>"$out"
rc=${PIPESTATUS[0]}
set -e
grep -h -E 'ERROR: (Address|Leak|Thread)Sanitizer|runtime error:|WARNING: ThreadSanitizer' \
    "$build/ctest.log" | sort | uniq -c >>"$out" || true
cat "$out"
exit "$rc"
