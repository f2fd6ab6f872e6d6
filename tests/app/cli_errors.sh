#!/usr/bin/env bash
# The CLI refuses bad input with a message naming the problem and a non-zero exit.
# Usage: cli_errors.sh KILN TEST_DATA WORK_DIR
set -u
kiln=$1 data=$2 work=$3
mkdir -p "$work/models"
cp "$data/weights/srvgg_x4.pth" "$work/models/tiny.pth"
head -c 100 "$data/image/gray16.png" > "$work/truncated.png"
printf 'not an image' > "$work/text.png"
cp "$data/image/gray16.png" "$work/ok.png"

failures=0
# expect_fail NAME PATTERN ARGS... : non-zero exit and PATTERN in stderr
expect_fail() {
    local name=$1 pattern=$2
    shift 2
    local err rc
    err=$("$kiln" "$@" 2>&1 >/dev/null)
    rc=$?
    if [ "$rc" -eq 0 ] || ! grep -qiE "$pattern" <<<"$err"; then
        echo "FAIL $name: exit $rc, stderr: $err"
        failures=$((failures + 1))
    else
        echo "ok   $name: exit $rc: $(head -c 160 <<<"$err" | tr '\n' ' ')"
    fi
}
m=(--models-dir "$work/models")
expect_fail unknown-model "not.*found|unknown|no model" upscale -m nope "${m[@]}" "$work/ok.png" "$work/o.png"
expect_fail missing-input "no such|not found|cannot open" upscale -m tiny "${m[@]}" "$work/missing.png" "$work/o.png"
expect_fail not-an-image "unsupported|unknown|not a" upscale -m tiny "${m[@]}" "$work/text.png" "$work/o.png"
expect_fail truncated-image "truncat|corrupt|bad" upscale -m tiny "${m[@]}" "$work/truncated.png" "$work/o.png"
expect_fail bad-device "device" upscale -m tiny "${m[@]}" --device tpu "$work/ok.png" "$work/o.png"
expect_fail no-subcommand "subcommand|required" 
expect_fail serve-redis-no-results "needs --results" serve "${m[@]}" --port 0 --store redis://h
expect_fail serve-bad-store "store.*mysql.*(sqlite|redis)" serve "${m[@]}" --port 0 --store mysql://x

if "$kiln" -q upscale -m tiny "${m[@]}" "$work/ok.png" "$work/o.png" && [ -s "$work/o.png" ]; then
    echo "ok   good-input: wrote $(stat -c %s "$work/o.png") bytes"
else
    echo "FAIL good-input"
    failures=$((failures + 1))
fi
echo "$((9 - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
