#!/usr/bin/env python3
"""One `kiln serve --store redis://` node while its Redis crashes and comes back:
  - before: a session, a finished job, a job queued in a paused session, an event stream;
  - Redis killed with SIGKILL: every route that needs the store answers 503 with Retry-After
    and code store_unavailable (its message names no internal address), /readyz too;
    /healthz and /v1/models answer 200; the process stays up, the event stream stays open;
  - Redis started again on the same port and directory (appendonly, appendfsync always): the
    same node serves again without a restart, the queued job is still there, runs once
    resumed and serves its output, the stream opened before the crash carries its events, a
    new job runs, the node logged the outage and the recovery, and it drains to exit 0.

Usage: redis_unavailable_test.py KILN MODELS_DIR (a folder holding srvgg_x4.pth)
Exits 77 (skip) without redis-server or the model, unless KILN_REQUIRE_REDIS=1."""
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

from kiln_cluster import Node, Redis, check_prerequisites, job_body, new_session, request

JSON = {"Content-Type": "application/json"}


def fail(why, node=None):
    sys.exit(f"FAIL: {why}" + (f"\n--- {node.name} log (tail)\n{node.tail()}" if node else ""))


def wait_job(node, auth, job_id, done, seconds=30):
    deadline = time.monotonic() + seconds
    job = None
    while time.monotonic() < deadline:
        answer = request(node.port, "GET", f"/v1/jobs/{job_id}", None, auth)
        if answer.status == 200:
            job = answer.json()
            if done(job):
                return job
        time.sleep(0.05)
    fail(f"job {job_id} is {job}", node)


class Stream:
    """GET /v1/events over a plain socket, read on a thread: the bytes, and whether the
    server ended the stream (chunk framing is left in: only job ids and statuses are looked
    for)."""

    def __init__(self, port, auth):
        self.text = ""
        self.ended = False
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        head = "".join(f"{k}: {v}\r\n" for k, v in auth.items())
        self.sock.sendall(f"GET /v1/events HTTP/1.1\r\nHost: kiln\r\n{head}\r\n".encode())
        deadline = time.monotonic() + 10
        while ": kiln events" not in self.text:  # open, its cursor taken
            data = self.sock.recv(65536)
            if not data or time.monotonic() > deadline:
                sys.exit(f"FAIL: the event stream did not open: {self.text!r}")
            self.text += data.decode(errors="replace")
        if not self.text.startswith("HTTP/1.1 200"):
            sys.exit(f"FAIL: the event stream: {self.text[:200]!r}")
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.text += data.decode(errors="replace")
        except OSError:
            pass
        self.ended = True

    def saw(self, job_id, status):
        return any(line.startswith("data:") and job_id in line and f'"status":"{status}"' in line
                   for line in self.text.splitlines())

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def check_outage(node, auth, redis_port, done_id, queued_id):
    """Every route that reads the store: 503 store_unavailable with Retry-After."""
    needs_store = [
        ("GET", f"/v1/jobs/{queued_id}", None, auth),
        ("GET", "/v1/jobs", None, auth),
        ("POST", "/v1/jobs", job_body(16, 2), dict(auth, **JSON, **{"Idempotency-Key": "k1"})),
        ("POST", f"/v1/jobs/{queued_id}/cancel", b"", auth),
        ("GET", f"/v1/jobs/{done_id}/outputs/0", None, auth),
        ("GET", "/v1/gallery", None, auth),
        ("GET", "/v1/queue", None, auth),
        ("POST", "/v1/queue/resume", b"", auth),
        ("GET", "/v1/events", None, auth),
        ("POST", "/v1/sessions", b"", {}),
        ("GET", "/readyz", None, {}),
        ("GET", "/metrics", None, {}),
    ]
    for method, path, body, headers in needs_store:
        answer = request(node.port, method, path, body, headers)
        retry_after = answer.headers.get("retry-after", "")
        if (answer.status != 503 or answer.error_code() != "store_unavailable"
                or not retry_after.isdigit() or int(retry_after) < 1):
            fail(f"{method} {path} with Redis down: {answer.status} {answer.headers} "
                 f"{answer.body[:300]!r}", node)
        if str(redis_port).encode() in answer.body:
            fail(f"{method} {path}: the answer names the store's address: {answer.body!r}")
    for path in ("/healthz", "/v1/models"):
        answer = request(node.port, "GET", path)
        if answer.status != 200:
            fail(f"GET {path} with Redis down: {answer.status}", node)
    print(f"ok: {len(needs_store)} routes answered 503 store_unavailable with Retry-After; "
          "/healthz and /v1/models 200")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    kiln, models = sys.argv[1], sys.argv[2]
    redis_server = check_prerequisites(models)
    work = tempfile.mkdtemp(prefix="kiln-redis-unavailable-")
    redis = Redis(redis_server, work)
    node = None
    stream = None
    try:
        node = Node(kiln, models, redis.port, os.path.join(work, "results"), work, "node-a")
        auth = new_session(node.port)
        answer = request(node.port, "POST", "/v1/jobs", job_body(16), dict(auth, **JSON))
        assert answer.status == 202, (answer.status, answer.body)
        done_id = answer.json()["id"]
        wait_job(node, auth, done_id, lambda j: j["status"] == "succeeded")
        # Paused, so the job stays queued through the outage.
        assert request(node.port, "POST", "/v1/queue/pause", b"", auth).status == 200
        answer = request(node.port, "POST", "/v1/jobs", job_body(16, 1), dict(auth, **JSON))
        assert answer.status == 202, (answer.status, answer.body)
        queued_id = answer.json()["id"]
        stream = Stream(node.port, auth)

        redis.kill()
        print(f"redis-server killed (SIGKILL) with job {queued_id} queued")
        check_outage(node, auth, redis.port, done_id, queued_id)
        time.sleep(1.5)  # the node's workers, pollers and the stream run into the outage
        if not node.alive():
            fail("the node exited while Redis was down", node)
        if stream.ended:
            fail("the event stream ended while Redis was down", node)

        redis.start()
        restarted = time.monotonic()
        while True:
            answer = request(node.port, "GET", f"/v1/jobs/{queued_id}", None, auth)
            if answer.status == 200:
                break
            if time.monotonic() - restarted > 10:
                fail(f"no recovery 10 s after Redis came back: {answer.status} {answer.body!r}",
                     node)
            time.sleep(0.02)
        recovered = time.monotonic() - restarted
        if answer.json()["status"] != "queued":
            fail(f"the queued job after the restart: {answer.body!r}", node)
        ready = request(node.port, "GET", "/readyz")
        if ready.status != 200:
            fail(f"/readyz after the restart: {ready.status} {ready.body!r}", node)
        assert request(node.port, "POST", "/v1/queue/resume", b"", auth).status == 200
        job = wait_job(node, auth, queued_id, lambda j: j["status"] in
                       ("succeeded", "failed", "cancelled"))
        if job["status"] != "succeeded" or job["attempts"] != 1:
            fail(f"the job queued through the outage ended as {job}", node)
        for job_id in (queued_id, done_id):
            output = request(node.port, "GET", f"/v1/jobs/{job_id}/outputs/0", None, auth)
            if output.status != 200 or not output.body.startswith(b"\x89PNG"):
                fail(f"output of {job_id}: {output.status}", node)
        # The key refused during the outage made nothing: it makes its job now.
        answer = request(node.port, "POST", "/v1/jobs", job_body(16, 2),
                         dict(auth, **JSON, **{"Idempotency-Key": "k1"}))
        if answer.status != 202:
            fail(f"a new job after the restart: {answer.status} {answer.body!r}", node)
        wait_job(node, auth, answer.json()["id"], lambda j: j["status"] == "succeeded")
        deadline = time.monotonic() + 10
        while not stream.saw(queued_id, "succeeded"):
            if stream.ended or time.monotonic() > deadline:
                fail(f"the stream opened before the crash (ended: {stream.ended}) did not "
                     f"carry job {queued_id} to succeeded: {stream.text[-600:]!r}", node)
            time.sleep(0.05)
        deadline = time.monotonic() + 5  # the node's change poll notices within 250 ms
        while not all(s in node.tail(1 << 20) for s in ("out of reach", "reachable again")):
            if time.monotonic() > deadline:
                fail("the node did not log the outage and the recovery", node)
            time.sleep(0.05)
        stream.close()
        stream = None
        status = node.stop()
        if status != 0:
            fail(f"kiln serve exited with {status} after SIGTERM", node)
        print(f"ok: served again {recovered:.2f} s after Redis came back, without a restart; "
              "the queued job survived and ran, the open stream carried it, the node drained")
    finally:
        if stream:
            stream.close()
        if node:
            node.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
