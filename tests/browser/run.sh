#!/usr/bin/env bash
# kiln's web page in a real browser behind a real proxy (issue 6; generate jobs too): starts `kiln serve` on a
# free loopback port with a temporary data folder and small limits, nginx in front of it
# (response buffering on, kiln under /kiln/; a second server where /kiln/v1/events answers
# 502), then runs web_ui_test.mjs in Debian's chromium through npm's playwright-core.
#
#   tests/browser/run.sh            # screenshots: build/browser-screenshots/ or $KILN_BROWSER_OUT
#
# Environment: KILN_BINARY (default build/app/kiln), KILN_MODELS_DIR (default models/),
# KILN_CHROMIUM (default /usr/bin/chromium), KILN_BROWSER_OUT.
# Exits 77 (ctest: skipped) when chromium, nginx, node, the npm modules (npm ci here; the
# install script does it) or the model weights are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/kiln_port.sh
source "$root/tests/kiln_port.sh"
kiln=${KILN_BINARY:-$root/build/app/kiln}
models=${KILN_MODELS_DIR:-$root/models}
chromium=${KILN_CHROMIUM:-/usr/bin/chromium}
out=${KILN_BROWSER_OUT:-$root/build/browser-screenshots}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
python=/usr/bin/python3
fast_model=realesr-animevideov3-x4 # the smallest: the uploads whose pixels are checked
slow_model=realesrgan-x4plus       # RRDBNet, seconds per tile: the job that is cancelled
gen_model=fashion-unet             # the diffusion model trained here (tests/data/diffusion)

skip() {
    echo "browser tests skipped: $*"
    exit 77
}
[[ -x "$chromium" ]] || skip "no $chromium (apt-get install chromium)"
[[ -x "$nginx" ]] || skip "no nginx (apt-get install nginx-light)"
command -v node >/dev/null 2>&1 || skip "no node"
[[ -f "$here/node_modules/playwright-core/package.json" ]] ||
    skip "no tests/browser/node_modules (cd tests/browser && npm ci)"
[[ -x "$kiln" ]] || skip "no kiln binary at $kiln (build first)"
for m in "$fast_model" "$slow_model"; do
    [[ -f "$models/$m.param" ]] || skip "no $models/$m.param (scripts/fetch-models.sh)"
done
"$python" -c 'import PIL, skimage' 2>/dev/null || skip "no python3-pil / python3-skimage"
gen_source=$root/tests/data/diffusion/$gen_model
[[ -f "$models/$gen_model/config.json" || -f "$gen_source/config.json" ]] ||
    skip "no $models/$gen_model (scripts/fetch-models.sh links it from tests/data/diffusion)"

tmp=$(mktemp -d -t kiln-browser.XXXXXX)
kiln_pid=
nginx_pid=
cleanup() {
    local rc=$?
    [[ -n "$nginx_pid" ]] && kill "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    [[ -n "$kiln_pid" ]] && kill "$kiln_pid" 2>/dev/null && wait "$kiln_pid" 2>/dev/null
    if ((rc != 0)); then
        echo "--- kiln log (tail)"
        tail -n 40 "$tmp/kiln.log" 2>/dev/null || true
        echo "--- nginx error log (tail)"
        tail -n 20 "$tmp/nginx/error.log" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The generate model lives in the repository; a models folder without the link to it
# (scripts/fetch-models.sh makes one) is served through a private folder of links that has it.
if [[ ! -f "$models/$gen_model/config.json" ]]; then
    mkdir -p "$tmp/models"
    for f in "$models"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$tmp/models/"; done
    ln -sfn "$gen_source" "$tmp/models/$gen_model"
    models=$tmp/models
fi

# Inputs: two different real photos (scikit-image's bundled chelsea and coffee, made small),
# a larger one for the job that is cancelled, and three the server refuses.
inputs=$tmp/inputs
mkdir -p "$inputs" "$out"
"$python" - "$inputs" <<'EOF'
import sys, random
from PIL import Image
import skimage.data as data
d = sys.argv[1]
Image.fromarray(data.chelsea()).resize((96, 64), Image.LANCZOS).save(f"{d}/cat.png")
Image.fromarray(data.coffee()).resize((96, 64), Image.LANCZOS).save(f"{d}/coffee.jpg", quality=90)
Image.fromarray(data.astronaut()).resize((256, 256), Image.LANCZOS).save(f"{d}/astronaut.png")
Image.fromarray(data.astronaut()).resize((640, 640), Image.LANCZOS).save(f"{d}/too-many-pixels.png")
rng = random.Random(6)  # noise does not compress: a PNG over the 1 MiB body limit
Image.frombytes("RGB", (640, 640), bytes(rng.getrandbits(8) for _ in range(640 * 640 * 3))).save(
    f"{d}/too-many-bytes.png", compress_level=0)
with open(f"{d}/notes.png", "w") as f:  # a text file named .png
    f.write("these are notes, not an image\n" * 20)
EOF
# What `kiln upscale` makes of each photo: the page's downloads must match it.
for name in cat.png coffee.jpg; do
    "$kiln" upscale -m "$fast_model" --models-dir "$models" --threads 1 \
        "$inputs/$name" "$inputs/$name.x4.png" >"$tmp/upscale.log" 2>&1 ||
        {
            cat "$tmp/upscale.log"
            exit 1
        }
done

# kiln: small limits (1 MiB bodies, 300k-pixel images), one worker with one thread.
"$kiln" serve --host 127.0.0.1 --port 0 --models "$models" --data "$tmp/data" --web "$root/server/web" \
    --workers 1 --threads 1 --max-body 1 --max-pixels 300000 --max-side 4096 \
    --max-queued-per-session 10 --memory-budget 512 --drain-grace 2 >"$tmp/kiln.log" 2>&1 &
kiln_pid=$!
port=$(kiln_port "$tmp/kiln.log" "$kiln_pid")

# nginx as an unprivileged reverse proxy, everything under $tmp/nginx.
proxy_port=$(free_port)
blocked_port=$(free_port)
while [[ "$blocked_port" == "$proxy_port" ]]; do blocked_port=$(free_port); done
n=$tmp/nginx
mkdir -p "$n"
kiln_location="
            proxy_pass http://127.0.0.1:$port/;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host \$host;
            proxy_buffering on;
            proxy_read_timeout 120s;"
# As root, nginx's workers would run as nobody and could not write in $tmp (mode 0700).
user_line=
((EUID == 0)) && user_line="user root root;"
cat >"$n/nginx.conf" <<EOF
$user_line
worker_processes 1;
daemon off;
pid $n/nginx.pid;
error_log $n/error.log info;
events { worker_connections 256; }
http {
    access_log $n/access.log;
    client_body_temp_path $n/body;
    proxy_temp_path $n/proxy;
    fastcgi_temp_path $n/fastcgi;
    uwsgi_temp_path $n/uwsgi;
    scgi_temp_path $n/scgi;
    client_max_body_size 16m;
    server {
        listen 127.0.0.1:$proxy_port;
        location = /kiln { return 301 /kiln/; }
        location /kiln/ {$kiln_location
        }
    }
    server {
        listen 127.0.0.1:$blocked_port;
        location = /kiln { return 301 /kiln/; }
        location /kiln/v1/events { return 502; }
        location /kiln/ {$kiln_location
        }
    }
}
EOF
"$nginx" -e "$n/error.log" -p "$n" -c "$n/nginx.conf" &
nginx_pid=$!
for base in "http://127.0.0.1:$proxy_port/kiln/" "http://127.0.0.1:$blocked_port/kiln/"; do
    ok=
    for _ in $(seq 1 300); do
        if "$python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "healthz", timeout=2)' \
            "$base" 2>/dev/null; then
            ok=1
            break
        fi
        kill -0 "$nginx_pid" 2>/dev/null || {
            echo "nginx exited"
            exit 1
        }
        sleep 0.1
    done
    [[ -n "$ok" ]] || {
        echo "nginx did not answer at $base within 30 s"
        exit 1
    }
done

start=$(date +%s)
KILN_URL="http://127.0.0.1:$proxy_port/kiln/" \
    KILN_URL_NO_EVENTS="http://127.0.0.1:$blocked_port/kiln/" \
    KILN_INPUTS="$inputs" KILN_BROWSER_OUT="$out" KILN_CHROMIUM="$chromium" \
    KILN_FAST_MODEL="$fast_model" KILN_SLOW_MODEL="$slow_model" KILN_GEN_MODEL="$gen_model" \
    node --test --test-reporter=spec "$here/web_ui_test.mjs"
echo "browser tests: passed in $(($(date +%s) - start)) s; screenshots in $out"
