#!/usr/bin/python3
"""Opens N connections to a server at once (non-blocking, one thread, so they really arrive
together), sends GET /healthz on each and waits up to --wait seconds for the answers.

Shows whether the listen backlog holds a burst: with cpp-httplib's built-in backlog of 5,
connections beyond what the accept loop drains are dropped (TcpExtListenOverflows in
`nstat`) and wait for SYN retransmits (1 s, 3 s, ...) or go unanswered. Prints one line:
answered with 200, unanswered, p50 / max seconds, how many took over 0.9 s.

    /usr/bin/python3 bench/load/connect_burst.py --url http://127.0.0.1:8080 -n 300
"""

import argparse
import re
import select
import socket
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="http://HOST:PORT")
    p.add_argument("-n", type=int, default=300, help="connections")
    p.add_argument("--wait", type=float, default=15, help="seconds to wait for answers")
    a = p.parse_args()
    m = re.match(r"http://([^:/]+):(\d+)/?$", a.url)
    if not m:
        p.error("--url must look like http://HOST:PORT")
    host, port = m.group(1), int(m.group(2))
    request = f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    t0 = time.monotonic()
    socks = []
    for _ in range(a.n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
    pending = {}
    for s in socks:
        pending[s.fileno()] = s
    unsent = set(pending)
    answers = {}
    deadline = t0 + a.wait
    while pending and time.monotonic() < deadline:
        want_write = [pending[f] for f in unsent if f in pending]
        readable, writable, _ = select.select(list(pending.values()), want_write, [], 0.2)
        for s in writable:
            try:
                s.send(request)
            except OSError:
                pass
            unsent.discard(s.fileno())
        for s in readable:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            answers[s.fileno()] = (time.monotonic() - t0, data[:12])
            del pending[s.fileno()]
    for s in socks:
        s.close()
    lat = sorted(v[0] for v in answers.values()) or [0.0]
    ok = sum(1 for v in answers.values() if v[1].startswith(b"HTTP/1.1 200"))
    print(f"connections {a.n}: answered 200 {ok}, unanswered after {a.wait:g} s {len(pending)}, "
          f"p50 {lat[len(lat) // 2]:.3f} s, max {lat[-1]:.3f} s, "
          f"over 0.9 s {sum(1 for x in lat if x > 0.9)}")
    return 0 if ok == a.n else 1


if __name__ == "__main__":
    sys.exit(main())
