#!/usr/bin/env bash
# openapi.yaml as a contract (issue 17): starts `kiln serve` on a free loopback port with a
# temporary data folder, small limits, --api-key, and the two models committed under
# tests/data (an SRVGG upscaler and the fashion-unet diffusion model), then
#   1. generates a TypeScript client's types from openapi.yaml (openapi-typescript), compiles
#      the example client (example/kiln_client.ts, openapi-fetch) with tsc and runs it
#      against the server (docs/api.md shows the same commands);
#   2. runs contract_test.mjs: every route and documented status, each request and answer
#      validated against openapi.yaml by ajv (contract.mjs); it ends by draining the server.
#      A second node on a redis-server of the script's own (`--store redis://`) answers the
#      routes while that Redis is killed: the 503 store_unavailable answers the document
#      lists, which a SQLite server never gives.
#
#   tests/contract/run.sh        # coverage table: build/contract/coverage.md or $KILN_CONTRACT_OUT
#
# Environment: KILN_BINARY (default build/app/kiln), KILN_CONTRACT_OUT, KILN_REQUIRE_REDIS.
# Exits 77 (ctest: skipped) when node, the npm modules (npm ci here; scripts/install-deps.sh
# does it), redis-server (unless KILN_REQUIRE_REDIS=1: then a failure, as in tests/redis) or
# the kiln binary are missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=tests/kiln_port.sh
source "$root/tests/kiln_port.sh"
kiln=${KILN_BINARY:-$root/build/app/kiln}
out=${KILN_CONTRACT_OUT:-$root/build/contract}

skip() {
    echo "contract tests skipped: $*"
    exit 77
}
command -v node >/dev/null 2>&1 || skip "no node"
for m in ajv ajv-formats yaml openapi-typescript openapi-fetch typescript; do
    [[ -f "$here/node_modules/$m/package.json" ]] ||
        skip "no tests/contract/node_modules/$m (cd tests/contract && npm ci)"
done
[[ -x "$kiln" ]] || skip "no kiln binary at $kiln (build first)"
redis_server=$(command -v redis-server || true)
if [[ -z "$redis_server" ]]; then
    why="no redis-server (the 503 store_unavailable answers need a Redis store; scripts/install-deps.sh installs it)"
    if [[ "${KILN_REQUIRE_REDIS:-}" == 1 ]]; then
        echo "contract tests failed: $why (KILN_REQUIRE_REDIS=1 makes this a failure)"
        exit 1
    fi
    skip "$why"
fi

tmp=$(mktemp -d -t kiln-contract.XXXXXX)
kiln_pid=
store_pid=
redis_pid=
cleanup() {
    local rc=$?
    local pid
    for pid in "$kiln_pid" "$store_pid" "$redis_pid"; do
        if [[ -n "$pid" ]] && kill "$pid" 2>/dev/null; then
            wait "$pid" 2>/dev/null || true
        fi
    done
    if ((rc != 0)); then
        echo "--- kiln log (tail)"
        tail -n 40 "$tmp/kiln.log" 2>/dev/null || true
        echo "--- kiln log of the Redis node (tail)"
        tail -n 20 "$tmp/store.log" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/models" "$out"
ln -s "$root/tests/data/weights/srvgg_x4.pth" "$tmp/models/srvgg_x4.pth"
ln -s "$root/tests/data/diffusion/fashion-unet" "$tmp/models/fashion-unet"
api_key=contract-$RANDOM$RANDOM

"$kiln" serve --host 127.0.0.1 --port 0 --models "$tmp/models" --data "$tmp/data" \
    --workers 1 --threads 1 --api-key "$api_key" --max-body 1 --max-queued 5 \
    --max-queued-per-session 3 --http-threads 8 --drain-grace 10 --max-streams-per-session 2 \
    --sessions-per-client-hour 40 --max-stored-per-session 0.25 >"$tmp/kiln.log" 2>&1 &
kiln_pid=$!
port=$(kiln_port "$tmp/kiln.log" "$kiln_pid")
url="http://127.0.0.1:$port"

# The Redis node: a redis-server on a free loopback port (no persistence: the scenario kills
# it), and a node on it with a results folder of its own.
answers_ping() {
    local reply=
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    read -r -t 1 reply <&3 || true
    exec 3>&-
    [[ "$reply" == +PONG* ]]
}
for _ in 1 2 3; do
    redis_port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1",
        () => { console.log(s.address().port); s.close(); });')
    mkdir -p "$tmp/redis"
    "$redis_server" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$tmp/redis" >"$tmp/redis.log" 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 100); do
        answers_ping "$redis_port" && break
        kill -0 "$redis_pid" 2>/dev/null || break
        sleep 0.05
    done
    answers_ping "$redis_port" && break
    kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    redis_pid=
done
[[ -n "$redis_pid" ]] || {
    echo "redis-server did not start: $(tail -n 5 "$tmp/redis.log")"
    exit 1
}
"$kiln" serve --host 127.0.0.1 --port 0 --models "$tmp/models" --store "redis://127.0.0.1:$redis_port" \
    --results "$tmp/shared" --node-id contract-redis --workers 1 --threads 1 --http-threads 8 \
    >"$tmp/store.log" 2>&1 &
store_pid=$!
store_url="http://127.0.0.1:$(kiln_port "$tmp/store.log" "$store_pid")"

start=$(date +%s)
# 1. The generated client, made as docs/api.md says, in a folder of its own: types from the
#    document, the example compiled against them and run.
client=$tmp/client
mkdir -p "$client"
cp "$here/example/kiln_client.ts" "$here/example/tsconfig.json" "$client/"
echo '{"private": true, "type": "module"}' >"$client/package.json"
ln -s "$here/node_modules" "$client/node_modules"
(
    cd "$client"
    node_modules/.bin/openapi-typescript "$root/openapi.yaml" -o kiln-api.d.ts --default-non-nullable false --silent
    node_modules/.bin/tsc -p tsconfig.json
    KILN_URL="$url" KILN_API_KEY="$api_key" node kiln_client.js
)

# 2. The contract scenario; its last test drains the server with SIGTERM.
KILN_URL="$url" KILN_API_KEY="$api_key" KILN_PID="$kiln_pid" KILN_OPENAPI="$root/openapi.yaml" \
    KILN_IMAGES="$root/tests/data/image" KILN_CONTRACT_OUT="$out" KILN_STORE_URL="$store_url" \
    KILN_REDIS_PID="$redis_pid" node --test --test-reporter=spec "$here/contract_test.mjs"
status=0
wait "$kiln_pid" || status=$?
kiln_pid=
if ((status != 0)); then
    echo "kiln serve exited with $status after SIGTERM (expected 0)"
    exit 1
fi
echo "contract tests: passed in $(($(date +%s) - start)) s; route x status table in $out/coverage.md"
