#!/usr/bin/env python3
"""Three `kiln serve` nodes on one redis-server and one results folder:
  - events: a job submitted on node A (its session paused, so no node runs it) reaches an
    event stream open on node B before B's first heartbeat (B polls the shared store for
    other nodes' changes; without that it would see the job only at the 15 s heartbeat);
  - kill -9: a job running on node A when A is killed with SIGKILL is taken over by node B
    or C once A's claim expires and finished there (succeeded, attempts 2: it ran once more,
    and ended once); both survivors serve its output.

Usage: kill_node_test.py KILN MODELS_DIR (a folder holding srvgg_x4.pth)
Exits 77 (skip) without redis-server or the model, unless KILN_REQUIRE_REDIS=1."""
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
import tempfile
import time
import zlib

SKIP = 77
LISTENING = re.compile(r"kiln serve on http://([0-9.]+):(\d+)")
CLAIM_TIMEOUT_S = 2


def skip(why):
    if os.environ.get("KILN_REQUIRE_REDIS") == "1":
        sys.exit(f"FAIL: {why} (KILN_REQUIRE_REDIS=1 makes this a failure)")
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png(width, height):
    """An RGB PNG with varied samples (so the upscale does real work on every pixel)."""
    rows = b"".join(b"\0" + bytes((x * 7 + y * 13) % 256 for x in range(width * 3))
                    for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def request(port, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Node:
    def __init__(self, kiln, models, redis_port, results, work, name):
        self.log_path = os.path.join(work, f"{name}.log")
        self.log = open(self.log_path, "w+")
        cmd = [kiln, "serve", "--host", "127.0.0.1", "--port", "0", "--models", models,
               "--store", f"redis://127.0.0.1:{redis_port}", "--results", results,
               "--node-id", name, "--claim-timeout", str(CLAIM_TIMEOUT_S), "--threads", "1",
               "--data", os.path.join(work, f"data-{name}")]
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

    def tail(self):
        with open(self.log_path) as f:
            return f.read()[-4000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def submit(port, auth, side):
    payload = json.dumps({"model": "srvgg_x4",
                          "input": {"image": base64.b64encode(png(side, side)).decode()}})
    status, body = request(port, "POST", "/v1/jobs", payload.encode(),
                           dict(auth, **{"Content-Type": "application/json"}))
    assert status in (200, 202), (status, body)
    return json.loads(body)["id"]


def wait_final(port, auth, job_id, seconds):
    deadline = time.monotonic() + seconds
    job = None
    while time.monotonic() < deadline:
        status, body = request(port, "GET", f"/v1/jobs/{job_id}", None, auth)
        job = json.loads(body)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.1)
    return job


def check_events_across_nodes(a, b, auth):
    """A job created on A shows in B's event stream before B's first heartbeat."""
    status, body = request(a.port, "POST", "/v1/queue/pause", b"", auth)
    assert status == 200, (status, body)
    conn = http.client.HTTPConnection("127.0.0.1", b.port, timeout=60)
    try:
        conn.request("GET", "/v1/events", headers=auth)
        resp = conn.getresponse()
        assert resp.status == 200, resp.status
        # The opening comment: the stream is open and its cursor taken. (Reading on to the
        # opening's blank line would wait for the next chunk: http.client reads the next
        # chunk's size line when a chunk ends.)
        first = resp.readline()
        assert first.startswith(b":"), first
        job_id = submit(a.port, auth, 64)
        while True:
            line = resp.readline()
            if not line:
                sys.exit("FAIL: node B's event stream ended")
            if line.startswith(b": heartbeat"):
                sys.exit("FAIL: node A's new job reached node B's stream only at a heartbeat\n" + b.tail())
            if line.startswith(b"data:") and job_id.encode() in line:
                break
    finally:
        conn.close()
    status, body = request(a.port, "POST", "/v1/queue/resume", b"", auth)
    assert status == 200, (status, body)
    job = wait_final(b.port, auth, job_id, 120)
    if not job or job["status"] != "succeeded":
        sys.exit(f"FAIL: the small job after resume is {job}")
    print(f"ok: node A's job {job_id} reached node B's event stream before a heartbeat")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    kiln, models = sys.argv[1], sys.argv[2]
    redis_server = shutil.which("redis-server")
    if not redis_server:
        skip("redis-server is not on PATH; scripts/install-deps.sh installs it")
    if not os.path.isfile(os.path.join(models, "srvgg_x4.pth")):
        skip(f"no srvgg_x4.pth in {models}")

    work = tempfile.mkdtemp(prefix="kiln-kill-node-")
    redis_port = free_port()
    redis = subprocess.Popen(
        [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", work],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nodes = []
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", redis_port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or redis.poll() is not None:
                    sys.exit("FAIL: redis-server did not start")
                time.sleep(0.05)
        results = os.path.join(work, "results")
        a = Node(kiln, models, redis_port, results, work, "node-a")
        nodes.append(a)
        b = Node(kiln, models, redis_port, results, work, "node-b")
        nodes.append(b)
        c = Node(kiln, models, redis_port, results, work, "node-c")
        nodes.append(c)

        status, body = request(a.port, "POST", "/v1/sessions", b"")
        assert status in (200, 201), (status, body)
        auth = {"Authorization": "Bearer " + json.loads(body)["token"]}
        check_events_across_nodes(a, b, auth)
        # 1536 x 1536 on one thread runs for several seconds, well over the kill's delay.
        # Both nodes poll the shared queue: submit until node A is the one running a job.
        job_id = None
        deadline = time.monotonic() + 120
        while job_id is None and time.monotonic() < deadline:
            candidate = submit(a.port, auth, 1536)
            while time.monotonic() < deadline:
                status, body = request(a.port, "GET", f"/v1/jobs/{candidate}", None, auth)
                job = json.loads(body)
                if job["status"] == "running":
                    break
                time.sleep(0.02)
            # A job starting on A shows in A's own running count.
            status, body = request(a.port, "GET", "/v1/queue", None, auth)
            if status == 200 and json.loads(body).get("running", 0) > 0:
                job_id = candidate
        if job_id is None:
            sys.exit("FAIL: no job ran on node A")

        a.process.send_signal(signal.SIGKILL)
        a.process.wait()
        killed = time.monotonic()
        print(f"killed node A running {job_id}")

        job = wait_final(b.port, auth, job_id, 120)
        if not job or job["status"] != "succeeded" or job.get("attempts") != 2:
            sys.exit(f"FAIL: after the kill the job is {job}\nnode B:\n{b.tail()}\n"
                     f"node C:\n{c.tail()}")
        outputs = []
        for name, node in (("B", b), ("C", c)):
            status, body = request(node.port, "GET", job["outputs"][0]["url"], None, auth)
            if status != 200 or not body.startswith(b"\x89PNG"):
                sys.exit(f"FAIL: output from node {name}: {status}, {len(body)} bytes")
            outputs.append(body)
        if outputs[0] != outputs[1]:
            sys.exit("FAIL: nodes B and C serve different bytes for one output")
        print(f"ok: {job_id} finished on a survivor (attempts 2) "
              f"{time.monotonic() - killed:.1f} s after the kill; output {len(body)} bytes "
              "from both")
    finally:
        for node in nodes:
            node.stop()
        redis.terminate()
        redis.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
