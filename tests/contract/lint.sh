#!/usr/bin/env bash
# Lints openapi.yaml with Redocly CLI's recommended rules, every warning an error
# (redocly.yaml here says which rules are off and why; .redocly.lint-ignore.yaml which
# operations one rule skips and why). Exits 77 (ctest: skipped) when node or the npm modules
# (npm ci here; scripts/install-deps.sh does it) are missing.
#
#   tests/contract/lint.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v node >/dev/null 2>&1 || {
    echo "openapi lint skipped: no node"
    exit 77
}
[[ -f "$here/node_modules/@redocly/cli/package.json" ]] || {
    echo "openapi lint skipped: no tests/contract/node_modules (cd tests/contract && npm ci)"
    exit 77
}
# No usage telemetry and no update check from a test.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
exec "$here/node_modules/.bin/redocly" lint "$root/openapi.yaml" --config "$here/redocly.yaml" \
    --format stylish
