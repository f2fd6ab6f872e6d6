#!/usr/bin/env python3
"""docs/deploy/nginx.conf, run for real: one redis-server, two `kiln serve --store redis://`
nodes (n1, n2) sharing one results folder, and nginx with the page's configuration (only its
two upstream addresses and its listen port replaced, so the page stays what is tested).
Through nginx:
  - /healthz answers and /metrics is refused (the page keeps per-node metrics off the proxy);
  - a session submits jobs; an event stream opened through nginx carries every job's events
    while it is still open, each final event within a few seconds of the job's finished_at
    (a buffering proxy would hold them until the stream ended);
  - Last-Event-ID replay through nginx works on both nodes (events come from the shared store);
  - both nodes served requests (nginx's access log names the node of each), and each job's
    output downloads through nginx, 4x the input's size;
  - a second session sees none of the first's jobs, outputs or events;
  - the sessions-per-address limit counts the address nginx appends to X-Forwarded-For (the
    nodes run with --trust-forwarded-for): clients on other loopback addresses have their own
    counts, a forged X-Forwarded-For changes nothing, and the limit is per node (two nodes
    admit twice the limit from one address).

Usage: nginx_two_nodes_test.py KILN MODELS_DIR NGINX_CONF (a folder holding srvgg_x4.pth;
docs/deploy/nginx.conf). Exits 77 (skip) without redis-server or nginx, unless
KILN_REQUIRE_REDIS=1."""
import datetime
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

# The multi-node helpers the Redis tests use (tests/redis/kiln_cluster.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "redis"))
from kiln_cluster import Node as ClusterNode, Redis, free_port, job_body, request, skip  # noqa: E402

JOBS = 6
SIDE = 48  # tiny inputs: srvgg_x4 runs each in milliseconds on one thread
SESSIONS_PER_ADDRESS = 3  # --sessions-per-client-hour of both nodes
EVENT_DELAY_LIMIT_S = 3.0  # finished_at -> final event through nginx (other nodes: 250 ms poll)


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def find_program(name, fallback):
    found = shutil.which(name)
    if found:
        return found
    return fallback if os.access(fallback, os.X_OK) else None


def wait_for_port(port, process, what, seconds=10):
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise Failure(f"{what} did not start on port {port}")
            time.sleep(0.05)


def png_size(data):
    check(data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR", "not a PNG")
    return struct.unpack(">II", data[16:24])


def new_session(port, source="127.0.0.1", headers=None):
    answer = request(port, "POST", "/v1/sessions", b"", headers, source=source)
    check(answer.status == 201,
          f"POST /v1/sessions through nginx: {answer.status} {answer.body[:300]!r}")
    return {"Authorization": "Bearer " + answer.json()["token"]}


def submit(port, auth, side):
    answer = request(port, "POST", "/v1/jobs", job_body(side),
                     dict(auth, **{"Content-Type": "application/json"}))
    check(answer.status == 202,
          f"POST /v1/jobs through nginx: {answer.status} {answer.body[:300]!r}")
    return answer.json()["id"]


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class EventStream:
    """GET /v1/events on one connection, read line by line as it arrives."""

    def __init__(self, port, auth, last_event_id=None, timeout=30):
        headers = dict(auth)
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.conn.request("GET", "/v1/events", headers=headers)
        self.resp = self.conn.getresponse()
        check(self.resp.status == 200, f"GET /v1/events through nginx: {self.resp.status}")
        check(self.resp.getheader("Content-Type", "").startswith("text/event-stream"),
              f"events Content-Type {self.resp.getheader('Content-Type')}")
        # The opening comment: the stream is open and its cursor taken. (Reading on to its
        # blank line would wait for the next chunk: http.client reads the next chunk's size
        # line when a chunk ends.)
        first = self.resp.readline()
        check(first.startswith(b": kiln events"), f"the stream opened with {first!r}")

    def jobs(self):
        """Yields (event id, job JSON, arrival time) for each `event: job`; raises Failure at
        a heartbeat (events must come before one: they are not held back) or at the end."""
        event_id = None
        while True:
            line = self.resp.readline()
            check(line, "the event stream ended while it should be open")
            if line.startswith(b": heartbeat"):
                raise Failure("a heartbeat came before the expected events")
            if line.startswith(b"id: "):
                event_id = int(line[4:])
            elif line.startswith(b"data: "):
                yield event_id, json.loads(line[6:]), time.time()

    def close(self):
        self.conn.close()


class Node(ClusterNode):
    """A node behind nginx: it trusts the X-Forwarded-For entry nginx appends, and its
    session limit per address is small enough to reach."""

    def __init__(self, kiln, models, redis_port, results, work, name):
        super().__init__(kiln, models, redis_port, results, work, name, extra_args=(
            "--workers", "1", "--trust-forwarded-for",
            "--sessions-per-client-hour", str(SESSIONS_PER_ADDRESS), "--web", ""))

    def metric(self, name, labels):
        """The sum of a metric's samples whose labels include `labels`, read from this node
        directly (each node's /metrics is its own)."""
        answer = request(self.port, "GET", "/metrics")
        check(answer.status == 200, f"{self.name} /metrics: {answer.status}")
        total = 0.0
        for line in answer.body.decode().splitlines():
            if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def render_nginx_conf(doc_path, node_ports, listen_port):
    """The page's file with the upstream's two `server` addresses and `listen 80;` replaced;
    anything else in it is run as written. Fails when the file no longer has that shape, so
    the page and this test change together."""
    with open(doc_path) as f:
        text = f.read()
    upstream = re.search(r"upstream\s+kiln\s*\{(.*?)\}", text, re.S)
    check(upstream, f"{doc_path}: no `upstream kiln {{ ... }}` block")
    servers = re.findall(r"^\s*server\s+[^\s;{]+;", upstream.group(1), re.M)
    check(len(servers) == len(node_ports),
          f"{doc_path}: the upstream names {len(servers)} servers, the test runs {len(node_ports)}")
    body = upstream.group(1)
    for line, port in zip(servers, node_ports):
        body = body.replace(line, re.sub(r"server\s+\S+;", f"server 127.0.0.1:{port};", line), 1)
    text = text[:upstream.start(1)] + body + text[upstream.end(1):]
    text, listens = re.subn(r"^(\s*)listen\s+80;", rf"\g<1>listen 127.0.0.1:{listen_port};",
                            text, flags=re.M)
    check(listens == 1, f"{doc_path}: expected one `listen 80;`, found {listens}")
    return text


def start_nginx(nginx, doc_conf, node_ports, work):
    """nginx as an unprivileged proxy with everything under work/nginx: a small main
    configuration of the test's own that includes the rendered page file in its http block
    (the place the official image's conf.d/ files have)."""
    n = os.path.join(work, "nginx")
    os.makedirs(n)
    port = free_port()
    with open(os.path.join(n, "kiln.conf"), "w") as f:
        f.write(render_nginx_conf(doc_conf, node_ports, port))
    # As root, nginx's workers would run as nobody and could not read the 0700 work folder.
    user = "user root root;" if os.geteuid() == 0 else ""
    temps = "".join(f"    {kind}_temp_path {n}/{kind};\n"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    with open(os.path.join(n, "nginx.conf"), "w") as f:
        f.write(f"""{user}
worker_processes 1;
daemon off;
pid {n}/nginx.pid;
error_log {n}/error.log info;
events {{ worker_connections 256; }}
http {{
    # The node that answered each request: the test's evidence that both served.
    log_format upstream '$request_method $uri $status $upstream_addr';
    access_log {n}/access.log upstream;
{temps}    include {n}/kiln.conf;
}}
""")
    process = subprocess.Popen([nginx, "-e", f"{n}/error.log", "-p", n, "-c", f"{n}/nginx.conf"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return process, port, n


def check_events_and_outputs(proxy, auth):
    """Jobs submitted through nginx reach an event stream open through nginx while it is
    open; their outputs download through nginx. Returns the job ids."""
    stream = EventStream(proxy, auth)
    try:
        ids = [submit(proxy, auth, SIDE) for _ in range(JOBS)]
        final = {}
        for _, job, arrived in stream.jobs():
            check(job["id"] in ids, f"an event for a job this session did not submit: {job['id']}")
            if job["status"] in ("failed", "cancelled"):
                raise Failure(f"job {job['id']} {job['status']}: {job['error']}")
            if job["status"] == "succeeded":
                final[job["id"]] = arrived - parse_time(job["finished_at"])
                if len(final) == JOBS:
                    break
    finally:
        stream.close()
    delay = max(final.values())
    check(delay < EVENT_DELAY_LIMIT_S,
          f"a final event came {delay:.2f} s after its job finished "
          f"(limit {EVENT_DELAY_LIMIT_S} s)")
    print(f"ok: {JOBS} jobs' events arrived through nginx on an open stream, each final event "
          f"within {delay * 1000:.0f} ms of finished_at")

    for job_id in ids:
        job = request(proxy, "GET", f"/v1/jobs/{job_id}", None, auth)
        check(job.status == 200, f"GET /v1/jobs/{job_id}: {job.status}")
        url = job.json()["outputs"][0]["url"]
        output = request(proxy, "GET", url, None, auth)
        content_type = output.headers.get("content-type")
        check(output.status == 200 and content_type == "image/png",
              f"GET {url} through nginx: {output.status} {content_type}")
        check(png_size(output.body) == (4 * SIDE, 4 * SIDE), f"{url}: {png_size(output.body)}")
    print(f"ok: {JOBS} outputs downloaded through nginx, {4 * SIDE}x{4 * SIDE} each")
    return ids


def check_replay_on_both_nodes(proxy, auth, ids, nodes):
    """Last-Event-ID: 0 replays every job's latest state, whichever node nginx picks (the
    events are read from the shared store); repeated until each node has served a replay."""
    served = {node.name: 0 for node in nodes}
    for _ in range(4):
        before = {n.name: n.metric("kiln_http_requests_total", {"route": "/v1/events"})
                  for n in nodes}
        stream = EventStream(proxy, auth, last_event_id=0)
        try:
            replayed = set()
            for _, job, _ in stream.jobs():
                if job["status"] == "succeeded":
                    replayed.add(job["id"])
                if replayed == set(ids):
                    break
        finally:
            stream.close()
        for n in nodes:
            if n.metric("kiln_http_requests_total", {"route": "/v1/events"}) > before[n.name]:
                served[n.name] += 1
        if all(served.values()):
            break
    check(all(served.values()), f"Last-Event-ID replays through nginx served by {served}")
    print(f"ok: Last-Event-ID replay through nginx gave every job on both nodes {served}")


def check_isolation(proxy, other, ids):
    listed = request(proxy, "GET", "/v1/jobs?limit=100", None, other)
    check(listed.status == 200 and listed.json()["jobs"] == [],
          f"a second session lists {listed.status} {listed.body[:300]!r}")
    for job_id in ids:
        for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/outputs/0",
                     f"/v1/jobs/{job_id}/input"):
            status = request(proxy, "GET", path, None, other).status
            check(status == 404, f"a second session's GET {path}: {status}, not 404")
    # Its replay from the first event id ever holds nothing: no event within a second.
    stream = EventStream(proxy, other, last_event_id=0, timeout=1)
    try:
        try:
            for _, job, _ in stream.jobs():
                raise Failure(f"a second session's stream carried job {job['id']}")
        except (socket.timeout, TimeoutError):
            pass
    finally:
        stream.close()
    print("ok: a second session sees none of the first's jobs, outputs, inputs or events")


def check_forwarded_address_limit(proxy, nodes):
    """The nodes count sessions by the address nginx appends to X-Forwarded-For. nginx
    itself reaches both nodes from 127.0.0.1; clients come from 127.0.0.2 and 127.0.0.3."""
    attempts = 4 * SESSIONS_PER_ADDRESS
    answers = []
    for _ in range(attempts):
        answer = request(proxy, "POST", "/v1/sessions", b"", source="127.0.0.2")
        answers.append(answer.status)
        if answer.status == 429:
            check(answer.error_code() == "too_many_sessions" and
                  answer.headers.get("retry-after"),
                  f"429 without its code or Retry-After: {answer.body!r}")
    accepted = answers.count(201)
    # The limiter lives in each node's memory: two nodes admit the limit each.
    check(accepted == len(nodes) * SESSIONS_PER_ADDRESS and
          answers.count(429) == attempts - accepted,
          f"127.0.0.2 through nginx got {answers}; expected {len(nodes) * SESSIONS_PER_ADDRESS} "
          f"x 201 ({SESSIONS_PER_ADDRESS} per node) and 429 after")
    # Another client address has its own count, also when it names the exhausted one: nginx
    # appends the real address and kiln reads only that last entry.
    new_session(proxy, "127.0.0.3", {"X-Forwarded-For": "127.0.0.2"})
    print(f"ok: sessions per address count nginx's X-Forwarded-For entry, per node: "
          f"{accepted} of {attempts} from one address ({SESSIONS_PER_ADDRESS} per node), "
          f"another address (forging the first) still admitted")


def check_both_nodes_served(nginx_dir, nodes):
    per_node = {f"127.0.0.1:{n.port}": 0 for n in nodes}
    with open(os.path.join(nginx_dir, "access.log")) as f:
        for line in f:
            upstream = line.split()[-1]
            if upstream in per_node:
                per_node[upstream] += 1
    runs = {n.name: n.metric("kiln_run_seconds_count", {"model": "srvgg_x4"}) for n in nodes}
    check(all(per_node.values()), f"requests per node through nginx: {per_node}")
    check(sum(runs.values()) == JOBS, f"jobs run per node: {runs}, expected {JOBS} in all")
    names = {f"127.0.0.1:{n.port}": n.name for n in nodes}
    print("ok: both nodes answered through nginx: "
          + ", ".join(f"{names[a]} {c} requests" for a, c in per_node.items())
          + "; jobs run: " + ", ".join(f"{k} {v:.0f}" for k, v in runs.items()))


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    kiln, models, doc_conf = sys.argv[1:]
    redis_server = find_program("redis-server", "/usr/bin/redis-server")
    nginx = find_program("nginx", "/usr/sbin/nginx")
    if not redis_server:
        skip("no redis-server; scripts/install-deps.sh installs it")
    if not nginx:
        skip("no nginx; scripts/install-deps.sh installs nginx-light")
    if not os.path.isfile(os.path.join(models, "srvgg_x4.pth")):
        skip(f"no srvgg_x4.pth in {models}")

    started = time.monotonic()
    work = tempfile.mkdtemp(prefix="kiln-deploy-")
    redis = None
    nodes = []
    proxy_process = None
    nginx_dir = None
    failed = True
    try:
        redis = Redis(redis_server, work, aof=False)
        results = os.path.join(work, "results")  # the folder every node mounts
        for name in ("n1", "n2"):
            nodes.append(Node(kiln, models, redis.port, results, work, name))
        proxy_process, proxy, nginx_dir = start_nginx(nginx, doc_conf, [n.port for n in nodes],
                                                      work)
        wait_for_port(proxy, proxy_process, "nginx")

        health = request(proxy, "GET", "/healthz")
        check(health.status == 200,
              f"GET /healthz through nginx: {health.status} {health.body[:200]!r}")
        status = request(proxy, "GET", "/metrics").status
        check(status == 403, f"GET /metrics through nginx: {status}, the page denies it (403)")

        auth = new_session(proxy)
        ids = check_events_and_outputs(proxy, auth)
        check_replay_on_both_nodes(proxy, auth, ids, nodes)
        check_isolation(proxy, new_session(proxy), ids)
        check_forwarded_address_limit(proxy, nodes)
        check_both_nodes_served(nginx_dir, nodes)
        failed = False
        print(f"passed in {time.monotonic() - started:.1f} s")
    except Failure as e:
        print(f"FAIL: {e}")
    finally:
        if proxy_process and proxy_process.poll() is None:
            proxy_process.send_signal(signal.SIGQUIT)  # graceful: finish, then exit
            try:
                proxy_process.wait(10)
            except subprocess.TimeoutExpired:
                proxy_process.kill()
                proxy_process.wait()
        for node in nodes:
            node.stop()
        if failed:
            for node in nodes:
                print(f"--- {node.name} log (tail)\n{node.tail()}")
            if nginx_dir:
                for log in ("error.log", "access.log"):
                    path = os.path.join(nginx_dir, log)
                    if os.path.exists(path):
                        with open(path) as f:
                            print(f"--- nginx {log} (tail)\n{f.read()[-3000:]}")
        if redis:
            redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
