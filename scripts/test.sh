#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs every test: dependencies, build (warnings as
# errors), the real model weights and reference binary, then ctest (unit, model parity and
# reference tests against the official binary and PyTorch), then a short run of every fuzz
# target.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
KILN_WERROR=ON scripts/build.sh
scripts/fetch-models.sh
# The Redis tests start their own redis-server (installed above): missing, they fail here
# rather than skip.
KILN_REQUIRE_REDIS=1 ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 1500
# Every reader under libFuzzer with ASan+UBSan, briefly (scripts/fuzz.sh without an argument
# runs each for 10 minutes).
scripts/fuzz.sh "${KILN_FUZZ_SECONDS:-20}"
