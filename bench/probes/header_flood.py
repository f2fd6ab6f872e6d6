#!/usr/bin/python3
"""What a flood of request header lines costs a running kiln server (docs/security.md).

Debian's cpp-httplib 0.11.4 caps each header line at 8192 bytes but not how many lines a
request has, so the server holds a request's headers in memory until it ends. This sends
one GET /healthz with LINES header lines of 100 bytes on one connection and prints the
server's resident memory (VmRSS of PID) before, after sending, and after the answer.

    bench/probes/header_flood.py PORT PID [LINES]     # LINES: default 300000 (about 30 MB)
"""

import re
import socket
import sys
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1))


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    port, pid = int(sys.argv[1]), int(sys.argv[2])
    lines = int(sys.argv[3]) if len(sys.argv) > 3 else 300000
    print(f"server RSS before: {rss_kb(pid)} kB")
    conn = socket.create_connection(("127.0.0.1", port))
    conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: kiln\r\n")
    block = (b"X-Pad: " + b"a" * 91 + b"\r\n") * 1000
    sent = 0
    try:
        for _ in range(lines // 1000):
            conn.sendall(block)
            sent += len(block)
        conn.sendall(b"\r\n")
        conn.settimeout(30)
        answer = conn.recv(64).split(b"\r\n")[0].decode(errors="replace")
    except OSError as error:
        answer = f"connection ended: {error}"
    print(f"sent {sent} bytes of header lines; server RSS now {rss_kb(pid)} kB")
    print(f"answer: {answer}")
    time.sleep(1)
    print(f"server RSS a second later: {rss_kb(pid)} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
