# Sourced by the test scripts that start `kiln serve --port 0`: kiln_port LOG PID prints the
# port the server reports in LOG, waiting up to 60 s; fails when the process exits first.
kiln_port() {
    local log=$1 pid=$2 port= _
    for _ in $(seq 1 600); do
        port=$(sed -n 's|.*kiln serve on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n 1)
        if [[ -n "$port" ]]; then
            echo "$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || {
            echo "kiln serve exited" >&2
            return 1
        }
        sleep 0.1
    done
    echo "kiln serve did not start within 60 s" >&2
    return 1
}
