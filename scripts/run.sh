#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs kiln's main job: dependencies, build, the real
# model weights, then a 4x upscale of a real photo with Real-ESRGAN x4plus on the best
# backend (the CPU when there is no GPU). Usage: scripts/run.sh [input] [output] [model]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/fetch-models.sh
photo=/usr/lib/python3/dist-packages/skimage/data/chelsea.png  # a real photo, from python3-skimage
input=${1:-$photo}
output=${2:-chelsea-x4.png}
model=${3:-realesrgan-x4plus}
build/app/kiln models
build/app/kiln upscale -m "$model" "$input" "$output"
