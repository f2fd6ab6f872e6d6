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
import http.client
import os
import shutil
import signal
import sys
import tempfile
import time

from kiln_cluster import Node, Redis, check_prerequisites, job_body, new_session, request

CLAIM_TIMEOUT_S = 2
JSON = {"Content-Type": "application/json"}


def submit(port, auth, side):
    answer = request(port, "POST", "/v1/jobs", job_body(side), dict(auth, **JSON))
    assert answer.status in (200, 202), (answer.status, answer.body)
    return answer.json()["id"]


def wait_final(port, auth, job_id, seconds):
    deadline = time.monotonic() + seconds
    job = None
    while time.monotonic() < deadline:
        job = request(port, "GET", f"/v1/jobs/{job_id}", None, auth).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.1)
    return job


def check_events_across_nodes(a, b, auth):
    """A job created on A shows in B's event stream before B's first heartbeat."""
    answer = request(a.port, "POST", "/v1/queue/pause", b"", auth)
    assert answer.status == 200, (answer.status, answer.body)
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
    answer = request(a.port, "POST", "/v1/queue/resume", b"", auth)
    assert answer.status == 200, (answer.status, answer.body)
    job = wait_final(b.port, auth, job_id, 120)
    if not job or job["status"] != "succeeded":
        sys.exit(f"FAIL: the small job after resume is {job}")
    print(f"ok: node A's job {job_id} reached node B's event stream before a heartbeat")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    kiln, models = sys.argv[1], sys.argv[2]
    redis_server = check_prerequisites(models)

    work = tempfile.mkdtemp(prefix="kiln-kill-node-")
    redis = Redis(redis_server, work, aof=False)
    nodes = []
    try:
        results = os.path.join(work, "results")
        for name in ("node-a", "node-b", "node-c"):
            nodes.append(Node(kiln, models, redis.port, results, work, name, CLAIM_TIMEOUT_S))
        a, b, c = nodes

        auth = new_session(a.port)
        check_events_across_nodes(a, b, auth)
        # 1536 x 1536 on one thread runs for several seconds, well over the kill's delay.
        # Both nodes poll the shared queue: submit until node A is the one running a job.
        job_id = None
        deadline = time.monotonic() + 120
        while job_id is None and time.monotonic() < deadline:
            candidate = submit(a.port, auth, 1536)
            while time.monotonic() < deadline:
                job = request(a.port, "GET", f"/v1/jobs/{candidate}", None, auth).json()
                if job["status"] == "running":
                    break
                time.sleep(0.02)
            # A job starting on A shows in A's own running count.
            queue = request(a.port, "GET", "/v1/queue", None, auth)
            if queue.status == 200 and queue.json().get("running", 0) > 0:
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
            output = request(node.port, "GET", job["outputs"][0]["url"], None, auth)
            if output.status != 200 or not output.body.startswith(b"\x89PNG"):
                sys.exit(f"FAIL: output from node {name}: {output.status}, "
                         f"{len(output.body)} bytes")
            outputs.append(output.body)
        if outputs[0] != outputs[1]:
            sys.exit("FAIL: nodes B and C serve different bytes for one output")
        print(f"ok: {job_id} finished on a survivor (attempts 2) "
              f"{time.monotonic() - killed:.1f} s after the kill; output {len(outputs[0])} bytes "
              "from both")
    finally:
        for node in nodes:
            node.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
