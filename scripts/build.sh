#!/usr/bin/env bash
# Configures and builds kiln (Release) into build/. KILN_WERROR=ON makes warnings errors
# (CI sets it); extra CMake arguments pass through, e.g. -DKILN_CUDA=OFF.
set -euo pipefail
cd "$(dirname "$0")/.."
werror=${KILN_WERROR:-OFF}
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
    cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DKILN_WERROR="$werror" "$@"
else
    cmake -S . -B build -DKILN_WERROR="$werror" "$@" >/dev/null
fi
cmake --build build --parallel "$(nproc)"
echo "build: ok (build/app/kiln)"
