#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs kiln's main job: dependencies, build, the real
# model weights, a 4x upscale of a real photo with Real-ESRGAN x4plus as a check, then the
# server (`kiln serve`, SQLite + files under data/, the best backend: the CPU without a GPU)
# with its web page at http://127.0.0.1:8080/. Extra arguments go to `kiln serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/fetch-models.sh
photo=/usr/lib/python3/dist-packages/skimage/data/chelsea.png  # a real photo, from python3-skimage
build/app/kiln models
build/app/kiln upscale -m realesrgan-x4plus "$photo" chelsea-x4.png
exec build/app/kiln serve --data data "$@"
