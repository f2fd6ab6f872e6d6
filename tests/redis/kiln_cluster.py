"""What the multi-node tests share (standard library only; tests/redis and tests/deploy): a
redis-server of the test's own that can crash and come back on the same port with its data
(appendonly, appendfsync always) or keep none, `kiln serve --store redis://` nodes on it, a
small PNG, and plain HTTP calls."""
import base64
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib

SKIP = 77
LISTENING = re.compile(r"kiln serve on http://([0-9.]+):(\d+)")


def skip(why):
    """Exit 77 (ctest: skipped), or fail when KILN_REQUIRE_REDIS=1 (CI insists)."""
    if os.environ.get("KILN_REQUIRE_REDIS") == "1":
        sys.exit(f"FAIL: {why} (KILN_REQUIRE_REDIS=1 makes this a failure)")
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def check_prerequisites(models):
    redis_server = shutil.which("redis-server")
    if not redis_server:
        skip("redis-server is not on PATH; scripts/install-deps.sh installs it")
    if not os.path.isfile(os.path.join(models, "srvgg_x4.pth")):
        skip(f"no srvgg_x4.pth in {models}")
    return redis_server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(width, height, seed=0):
    """An RGB PNG with varied samples; `seed` makes images (and so requests) differ."""
    rows = b"".join(b"\0" + bytes((x * 7 + y * 13 + seed * 31) % 256 for x in range(width * 3))
                    for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lowercase names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def error_code(self):
        try:
            return self.json()["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


def request(port, method, path, body=None, headers=None, timeout=30, source="127.0.0.1"):
    """One call on a new connection from loopback address `source` (what a proxy in front
    sees); raises OSError (and http.client's errors) when the node cannot be reached."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def job_body(side, seed=0):
    """A POST /v1/jobs JSON body: a side x side image for srvgg_x4."""
    return json.dumps({"model": "srvgg_x4",
                       "input": {"image": base64.b64encode(png(side, side, seed)).decode()}}).encode()


class Redis:
    """redis-server on a fixed loopback port, with its AOF in `directory` (`aof`: every
    acknowledged write survives a crash and start() brings it back) or no persistence."""

    def __init__(self, binary, directory, aof=True):
        self.binary = binary
        self.directory = directory
        self.persistence = (["--appendonly", "yes", "--appendfsync", "always"] if aof
                            else ["--appendonly", "no"])
        self.port = free_port()
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
            + self.persistence + ["--dir", self.directory, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                sys.exit(f"FAIL: redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def kill(self):
        """SIGKILL: a crash, with no chance to write anything more."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait()


class Node:
    """`kiln serve` on the shared Redis and results folder, on a free port."""

    def __init__(self, kiln, models, redis_port, results, work, name, claim_timeout_s=2,
                 extra_args=()):
        self.name = name
        self.log_path = os.path.join(work, f"{name}.log")
        self.log = open(self.log_path, "w+")
        cmd = [kiln, "serve", "--host", "127.0.0.1", "--port", "0", "--models", models,
               "--store", f"redis://127.0.0.1:{redis_port}", "--results", results,
               "--node-id", name, "--claim-timeout", str(claim_timeout_s), "--threads", "1",
               "--data", os.path.join(work, f"data-{name}"), *extra_args]
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            with open(self.log_path) as f:
                m = LISTENING.search(f.read())
            if m:
                self.port = int(m.group(2))
                return
            time.sleep(0.05)
        sys.exit(f"FAIL: node {name} did not start:\n{self.tail()}")

    def alive(self):
        return self.process.poll() is None

    def tail(self, chars=4000):
        with open(self.log_path) as f:
            return f.read()[-chars:]

    def stop(self):
        """SIGTERM (a drain); returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


def new_session(port):
    answer = request(port, "POST", "/v1/sessions", b"")
    assert answer.status == 201, (answer.status, answer.body)
    return {"Authorization": "Bearer " + answer.json()["token"]}
