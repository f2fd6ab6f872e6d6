#!/usr/bin/env python3
"""Redis crashes under load and comes back: three `kiln serve --store redis://` nodes on one
redis-server (appendonly yes, appendfsync always) and one results folder; clients submit
small jobs spread over the nodes, each with its own Idempotency-Key, and retry a 503 or a
refused connection with the same key on the next node. Redis is killed with SIGKILL mid-load
and started again on the same port and directory about a second later. Then:
  - every job ever answered 202 or 200 exists on every node and ended `succeeded`;
  - each key made exactly one job: a key never answered two ids, a replay of every key on
    another node answers 200 with its id, and each session lists exactly the answered jobs;
  - every job's output is served by every node (so by nodes other than the one that ran it);
  - no node exited, and each drains to exit 0.
Prints the figures: jobs accepted, 503 answers, refused connections, how long the nodes took
to serve again after Redis was back, jobs run more than once.

Usage: redis_restart_test.py KILN MODELS_DIR (a folder holding srvgg_x4.pth)
Exits 77 (skip) without redis-server or the model, unless KILN_REQUIRE_REDIS=1."""
import http.client
import os
import shutil
import sys
import tempfile
import threading
import time

from kiln_cluster import Node, Redis, check_prerequisites, job_body, new_session, request

NODES = 3
CLIENTS = 3
LOAD_S = 6.0  # clients submit new keys this long
KILL_AT_S = 2.0  # Redis is killed this far into the load...
DOWN_S = 1.0  # ...and started again this much later
SIDE = 16  # 16 x 16 inputs: milliseconds a job on one thread
JSON = {"Content-Type": "application/json"}
FINAL = ("succeeded", "failed", "cancelled")


def fail(why, nodes=()):
    logs = "".join(f"\n--- {n.name} log (tail)\n{n.tail(3000)}" for n in nodes)
    sys.exit(f"FAIL: {why}{logs}")


class Figures:
    def __init__(self):
        self.lock = threading.Lock()
        self.accepted = 0  # 202
        self.replayed = 0  # 200 to a retry of a key whose earlier try was not answered
        self.unavailable = 0  # 503
        self.refused = 0  # connection errors
        self.other = []  # any other answer: a failure

    def add(self, field, n=1):
        with self.lock:
            setattr(self, field, getattr(self, field) + n)


class Client(threading.Thread):
    """One session; submits keys c<n>-<i> over the nodes until the load ends."""

    def __init__(self, number, nodes, auth, figures, stop_at):
        super().__init__(daemon=True)
        self.number = number
        self.nodes = nodes
        self.auth = auth
        self.figures = figures
        self.stop_at = stop_at
        self.ids = {}  # key -> job id
        self.bodies = {}  # key -> request body
        self.answers = {}  # key -> the statuses it was answered, in order

    def submit(self, key, body, start):
        """Tries the nodes in turn from `start` until one answers 202 or 200; the job id."""
        headers = dict(self.auth, **JSON, **{"Idempotency-Key": key})
        answers = self.answers.setdefault(key, [])
        for attempt in range(1000):
            node = self.nodes[(start + attempt) % len(self.nodes)]
            try:
                answer = request(node.port, "POST", "/v1/jobs", body, headers, timeout=10)
            except (OSError, http.client.HTTPException):
                answers.append(f"{node.name}: no answer")
                self.figures.add("refused")
                time.sleep(0.05)
                continue
            answers.append(f"{node.name}: {answer.status}")
            if answer.status in (200, 202):
                self.figures.add("accepted" if answer.status == 202 else "replayed")
                return answer.json()["id"]
            if answer.status == 503 and answer.error_code() == "store_unavailable":
                if not answer.headers.get("retry-after", "").isdigit():
                    self.figures.other.append(f"{key}: 503 without Retry-After")
                self.figures.add("unavailable")
                time.sleep(0.1)  # shorter than Retry-After: the test measures the recovery
                continue
            if answer.status == 429:  # a queue limit: the workers catch up
                time.sleep(0.1)
                continue
            self.figures.other.append(f"{key} on {node.name}: {answer.status} {answer.body[:200]!r}")
            return None
        self.figures.other.append(f"{key}: never answered")
        return None

    def run(self):
        i = 0
        while time.monotonic() < self.stop_at:
            key = f"c{self.number}-{i}"
            body = job_body(SIDE, self.number * 100000 + i)
            job_id = self.submit(key, body, self.number + i)
            if job_id:
                self.ids[key] = job_id
                self.bodies[key] = body
            i += 1
            time.sleep(0.01)


class Prober(threading.Thread):
    """Polls /readyz on every node: when each served again after Redis was started."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.restarted_at = None
        self.ready_after = {}  # node name -> seconds after the restart
        self.done = False

    def run(self):
        while not self.done:
            if self.restarted_at is not None:
                for node in self.nodes:
                    if node.name in self.ready_after:
                        continue
                    try:
                        if request(node.port, "GET", "/readyz", timeout=5).status == 200:
                            self.ready_after[node.name] = time.monotonic() - self.restarted_at
                    except (OSError, http.client.HTTPException):
                        pass
            time.sleep(0.02)


def list_jobs(node, auth):
    """Every job of the session as the node lists it, by id."""
    jobs, cursor = {}, None
    while True:
        path = "/v1/jobs?limit=100" + (f"&cursor={cursor}" if cursor else "")
        answer = request(node.port, "GET", path, None, auth)
        if answer.status != 200:
            fail(f"GET {path} on {node.name}: {answer.status} {answer.body[:200]!r}", [node])
        page = answer.json()
        jobs.update((j["id"], j) for j in page["jobs"])
        cursor = page["next_cursor"]
        if not cursor:
            return jobs


def check_end_state(nodes, clients):
    # Every answered job ends; the nodes' claims bring back any job a crash interrupted.
    deadline = time.monotonic() + 30
    while True:
        pending = [(c, job) for c in clients for job in list_jobs(nodes[0], c.auth).values()
                   if job["status"] not in FINAL]
        if not pending:
            break
        if time.monotonic() > deadline:
            c, job = pending[0]
            keys = [k for k, v in c.ids.items() if v == job["id"]]
            kept = request(nodes[0].port, "GET", f"/v1/jobs/{job['id']}/input", None, c.auth)
            fail(f"{len(pending)} jobs never ended, e.g. {job} (key {keys}, answered "
                 f"{c.answers.get(keys[0]) if keys else None}; its input: {kept.status})", nodes)
        time.sleep(0.2)
    rerun = 0
    for c in clients:
        answered = set(c.ids.values())
        if len(answered) != len(c.ids):
            fail(f"client {c.number}: two keys answered the same job id")
        for node in nodes:
            listed = list_jobs(node, c.auth)
            if set(listed) != answered:
                fail(f"client {c.number} on {node.name}: listed {len(listed)} jobs, answered "
                     f"{len(answered)}; not answered: {sorted(set(listed) - answered)[:3]}, "
                     f"not listed: {sorted(answered - set(listed))[:3]}", nodes)
            bad = [j for j in listed.values() if j["status"] != "succeeded"]
            if bad:
                fail(f"{len(bad)} jobs did not succeed on {node.name}, e.g. {bad[0]}", nodes)
        rerun += sum(1 for j in list_jobs(nodes[0], c.auth).values() if j["attempts"] > 1)
        for n, (key, job_id) in enumerate(sorted(c.ids.items())):
            node = nodes[(c.number + n + 1) % len(nodes)]
            answer = request(node.port, "POST", "/v1/jobs", c.bodies[key],
                             dict(c.auth, **JSON, **{"Idempotency-Key": key}))
            if answer.status != 200 or answer.json()["id"] != job_id:
                fail(f"replay of {key} on {node.name}: {answer.status} {answer.body[:200]!r} "
                     f"(answered {job_id})", nodes)
            for node in nodes:
                output = request(node.port, "GET", f"/v1/jobs/{job_id}/outputs/0", None, c.auth)
                if output.status != 200 or not output.body.startswith(b"\x89PNG"):
                    fail(f"output of {job_id} on {node.name}: {output.status}", nodes)
    return rerun


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    kiln, models = sys.argv[1], sys.argv[2]
    redis_server = check_prerequisites(models)
    began = time.monotonic()
    work = tempfile.mkdtemp(prefix="kiln-redis-restart-")
    redis = Redis(redis_server, work)
    nodes = []
    prober = None
    try:
        results = os.path.join(work, "results")
        for n in range(NODES):
            nodes.append(Node(kiln, models, redis.port, results, work, f"node-{n}"))
        figures = Figures()
        start = time.monotonic()
        clients = [Client(c, nodes, new_session(nodes[c % NODES].port), figures,
                          start + LOAD_S) for c in range(CLIENTS)]
        prober = Prober(nodes)
        prober.start()
        for c in clients:
            c.start()
        time.sleep(KILL_AT_S)
        redis.kill()
        before = figures.accepted
        time.sleep(DOWN_S)
        redis.start()
        prober.restarted_at = time.monotonic()
        for c in clients:
            c.join(LOAD_S + 60)
            if c.is_alive():
                fail(f"client {c.number} still submitting 60 s after the load", nodes)
        if figures.other:
            fail(f"{len(figures.other)} unexpected answers, e.g. {figures.other[:3]}", nodes)
        deadline = time.monotonic() + 10
        while len(prober.ready_after) < NODES and time.monotonic() < deadline:
            time.sleep(0.05)
        prober.done = True
        if len(prober.ready_after) < NODES:
            fail(f"not ready again 10 s after Redis came back: "
                 f"{sorted(set(n.name for n in nodes) - set(prober.ready_after))}", nodes)
        if figures.unavailable == 0:
            fail("no 503 while Redis was down: the crash missed the load", nodes)
        rerun = check_end_state(nodes, clients)
        for node in nodes:
            if not node.alive():
                fail(f"{node.name} exited", [node])
        jobs = sum(len(c.ids) for c in clients)
        print(f"jobs accepted: {jobs} ({figures.accepted} answered 202, {figures.replayed} "
              f"200 to a retried key; {before} before the crash), all succeeded once, each on "
              f"every node with its output")
        print(f"503 store_unavailable answers: {figures.unavailable}; refused connections: "
              f"{figures.refused}; Redis down {DOWN_S:.1f} s")
        print("ready again after Redis was back: " + ", ".join(
            f"{name} {s:.2f} s" for name, s in sorted(prober.ready_after.items())))
        print(f"jobs run more than once (a claim that expired in the outage): {rerun}")
        for node in nodes:
            status = node.stop()
            if status != 0:
                fail(f"{node.name} exited with {status} after SIGTERM", [node])
        print(f"ok: {time.monotonic() - began:.1f} s")
    finally:
        if prober:
            prober.done = True
        for node in nodes:
            node.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
