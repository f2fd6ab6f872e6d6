#!/usr/bin/env bash
# Runs a command inside a fresh Debian 12 (bookworm) root that holds nothing but Debian's
# minimal "apt" variant: no compiler, no library, nothing a developer installed by hand. CI
# (.ci/run) and the GPU-check rehearsal use it so that a missing install step fails here,
# not on a user's new machine.
#
#   scripts/pristine-root.sh [options] SRC -- COMMAND...
#
#   SRC           a folder copied to /src in the root (a git work tree copies its tracked and
#                 untracked-but-not-ignored files, so build/, models/ and the like stay out)
#   --cuda        bind the host's /usr/local/cuda read-only into the root when it exists (the
#                 CUDA toolkit is not a Debian package; the README names it as optional)
#   --export P:D  after the command, copy /src/P out of the root to host path D
#
# COMMAND runs as root in /src through `bash -c`. The root is deleted afterwards (set
# KILN_KEEP_ROOT=1 to keep it for a look). The base root is built once with mmdebstrap and
# cached as a tarball in $KILN_CI_CACHE (default /var/cache/kiln-ci); it holds only the base
# system, never a package of the project's, and is rebuilt when older than a week. The host's
# apt sources, apt settings, DNS settings and CA certificates are copied in (a proxy's CA is
# what lets apt and npm reach their registries from some networks).
set -euo pipefail

cuda=0
exports=()
while (($#)); do
    case "$1" in
    --cuda) cuda=1 ;;
    --export) exports+=("$2"); shift ;;
    --) shift; break ;;
    -*) echo "pristine-root: unknown option $1" >&2; exit 2 ;;
    *) src=$1 ;;
    esac
    shift
done
if [[ -z "${src:-}" || $# -eq 0 ]]; then
    echo "usage: scripts/pristine-root.sh [--cuda] [--export P:D] SRC -- COMMAND..." >&2
    exit 2
fi
src=$(cd "$src" && pwd)
if ((EUID != 0)); then
    echo "pristine-root: must run as root (chroot and mounts)" >&2
    exit 1
fi

cache=${KILN_CI_CACHE:-/var/cache/kiln-ci}
base="$cache/bookworm-apt.tar"
mkdir -p "$cache"

ensure_mmdebstrap() {
    command -v mmdebstrap >/dev/null 2>&1 && return 0
    echo "pristine-root: installing mmdebstrap on the host"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap
}

if [[ ! -f "$base" ]] || [[ -n "$(find "$base" -mtime +7 2>/dev/null)" ]]; then
    ensure_mmdebstrap
    echo "pristine-root: building the base root (mmdebstrap --variant=apt bookworm)"
    t0=$(date +%s)
    mmdebstrap --quiet --variant=apt --include=ca-certificates bookworm "$cache/bookworm-apt.partial.tar" \
        "deb http://deb.debian.org/debian bookworm main" \
        "deb http://deb.debian.org/debian bookworm-updates main" \
        "deb http://deb.debian.org/debian-security bookworm-security main"
    mv "$cache/bookworm-apt.partial.tar" "$base"
    echo "pristine-root: base root built in $(($(date +%s) - t0)) s"
fi

root=$(mktemp -d /var/tmp/kiln-root.XXXXXX)
mounted=()

# Every process whose root is the chroot (servers a test left behind) is ended first, then
# the mounts are undone; the folder is removed only when nothing is mounted below it.
cleanup() {
    local status=$?
    set +e
    for p in /proc/[0-9]*; do
        [[ "$(readlink "$p/root" 2>/dev/null)" == "$root" ]] && kill -9 "${p#/proc/}" 2>/dev/null
    done
    sleep 0.2
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount -R "${mounted[i]}" 2>/dev/null || umount -lR "${mounted[i]}"
    done
    if grep -q " $root/" /proc/self/mounts; then
        echo "pristine-root: mounts remain under $root; not removing it" >&2
    elif [[ "${KILN_KEEP_ROOT:-0}" == 1 ]]; then
        echo "pristine-root: kept $root"
    else
        rm -rf --one-file-system "$root"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tar -C "$root" -xf "$base"

# The host's apt sources and settings replace mmdebstrap's list; DNS and CAs come along.
rm -f "$root/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] && cp "$f" "$root$f"
done
for f in /etc/apt/apt.conf.d/*; do
    [[ -f "$f" && ! -e "$root$f" ]] && cp "$f" "$root$f"
done
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi

mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev" && mounted+=("$root/dev")
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys" && mounted+=("$root/sys")
if ((cuda)) && [[ -d /usr/local/cuda/ ]]; then
    cuda_real=$(readlink -f /usr/local/cuda)
    mkdir -p "$root/usr/local/cuda"
    mount --bind "$cuda_real" "$root/usr/local/cuda"
    mounted+=("$root/usr/local/cuda")
    mount -o remount,bind,ro "$root/usr/local/cuda"
    echo "pristine-root: host CUDA toolkit ($cuda_real) bound read-only at /usr/local/cuda"
fi

mkdir -p "$root/src"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z -co --exclude-standard |
        tar --null --ignore-failed-read -T - -cf -) | tar -C "$root/src" -xf -
else
    cp -a "$src/." "$root/src/"
fi

in_root() {
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
        /bin/bash -c "$1"
}
in_root "update-ca-certificates >/dev/null 2>&1"

echo "pristine-root: running in $root: $*"
status=0
in_root "cd /src && $*" || status=$?

for e in "${exports[@]}"; do
    from=${e%%:*}
    to=${e#*:}
    if [[ -e "$root/src/$from" ]]; then
        rm -rf "$to"
        cp -a "$root/src/$from" "$to"
    else
        echo "pristine-root: nothing to export at /src/$from" >&2
    fi
done
exit "$status"
