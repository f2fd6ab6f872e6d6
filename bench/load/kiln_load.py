#!/usr/bin/python3
"""kiln load runner: N sessions x M jobs against a kiln server, polling or SSE.

Python 3 standard library only (http.client, threading, json). Starts `kiln serve` itself on
loopback (a temporary --data folder, the given binary and models folder) or targets an
existing --url. Each session runs in its own thread with its own keep-alive connection:
create a session, submit M jobs (each session a distinct 32x32 crop of a real photograph),
wait for them by polling GET /v1/jobs/{id} or by listening on /v1/events, then check that
its listing holds only its own job ids and that one downloaded output has 4x (the model's
scale) the input's size and matches its own input (box-downscaled output nearest to this
session's input among all sessions' inputs).

Once every session has submitted, a probe session submits one job (fairness): its queue
wait, how many other jobs started between its submission and its start, and how many other
sessions had queued jobs at that moment (round robin lets each of them start at most one job
ahead of it).

Reports errors by kind (HTTP status + error code, connection errors, deadline), p50/p99/max
latency of connect, session create, submit, poll and (sse) event delivery delay, jobs/s,
the server's peak RSS (VmHWM, when this runner started it) and the server's /metrics run
time and memory pool figures. Prints a table and writes JSON (default
bench/results/<UTC date>-load-<mode>.json). Exit status 0 when every job succeeded with no
error and every check passed, 1 otherwise, 2 for bad arguments or a server that never
became ready.
"""

import argparse
import base64
import collections
import datetime
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pngmini  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PHOTOS = ["astronaut-face-64.png", "chelsea-eye-64.png", "coffee-cup-64.png", "rocket-64.png"]
FINAL = ("succeeded", "failed", "cancelled")


def parse_time(text):
    """Seconds since the epoch of the API's ISO times ("2026-11-24T07:59:16.230Z")."""
    if not text:
        return None
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def percentile(values, q):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))
    return s[k]


class Stats:
    """Thread-safe counters and latency samples."""

    def __init__(self):
        self.lock = threading.Lock()
        self.errors = collections.Counter()
        self.retries = collections.Counter()
        self.samples = collections.defaultdict(list)
        self.requests = 0

    def error(self, kind):
        with self.lock:
            self.errors[kind] += 1

    def retry(self, kind):
        with self.lock:
            self.retries[kind] += 1

    def sample(self, name, seconds):
        with self.lock:
            self.samples[name].append(seconds)

    def summary(self, name):
        v = self.samples.get(name, [])
        return {
            "count": len(v),
            "p50_ms": None if not v else round(percentile(v, 50) * 1000, 2),
            "p99_ms": None if not v else round(percentile(v, 99) * 1000, 2),
            "max_ms": None if not v else round(max(v) * 1000, 2),
        }


class NoAnswer(Exception):
    """A request that got no HTTP answer; `kind` names why."""

    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class Client:
    """One keep-alive HTTP/1.1 connection. A request on a reused connection that the server
    had already closed (keep-alive limit or idle timeout) is sent again once on a fresh one
    and counted as a retry, as browsers do; every other failure is an error."""

    def __init__(self, host, port, stats, timeout=60):
        self.host, self.port, self.stats, self.timeout = host, port, stats, timeout
        self.conn = None
        self.used = 0

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def _connect(self):
        self.close()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        t0 = time.monotonic()
        try:
            conn.connect()
        except socket.timeout as e:
            raise NoAnswer("connect_timeout", e)
        except OSError as e:
            raise NoAnswer("connect_" + type(e).__name__, e)
        self.stats.sample("connect", time.monotonic() - t0)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn, self.used = conn, 0

    def request(self, method, path, body=None, headers=None):
        """(status, headers dict lower-case, body bytes). Raises NoAnswer."""
        headers = dict(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self._connect()
            reused = self.used > 0
            try:
                with self.stats.lock:
                    self.stats.requests += 1
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                self.used += 1
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if reused and attempt == 0:
                    self.stats.retry("stale_keepalive")
                    continue
                raise NoAnswer(type(e).__name__, e)
            except socket.timeout as e:
                self.close()
                raise NoAnswer("read_timeout", e)
            except (OSError, http.client.HTTPException) as e:
                self.close()
                raise NoAnswer(type(e).__name__, e)
        raise AssertionError("unreachable")


def error_kind(status, body):
    code = ""
    try:
        code = json.loads(body)["error"]["code"]
    except Exception:  # noqa: BLE001 - a non-JSON error body is itself worth reporting
        code = "non_json_body"
    return f"http_{status}:{code}"


def make_inputs(count):
    """`count` distinct 32x32 RGB PNG crops of the reference photographs."""
    photos = []
    for name in PHOTOS:
        with open(os.path.join(REPO, "tests", "data", "reference", name), "rb") as f:
            photos.append(pngmini.decode(f.read()))
    out = []
    for i in range(count):
        w, h, rgb = photos[i % len(photos)]
        k = i // len(photos)
        top, left = (k * 7) % (h - 32 + 1), (k * 13) % (w - 32 + 1)
        crop = pngmini.crop(w, rgb, top, left, 32)
        out.append({"png": pngmini.encode(32, 32, crop), "rgb": crop, "width": 32, "height": 32,
                    "source": f"{PHOTOS[i % len(PHOTOS)]}@{top},{left}"})
    return out


class Session(threading.Thread):
    def __init__(self, index, runner, image, jobs, probe=False):
        super().__init__(daemon=True, name=f"session-{index}")
        self.index, self.runner, self.image, self.jobs_wanted = index, runner, image, jobs
        self.probe = probe
        self.client = Client(runner.host, runner.port, runner.stats)
        self.token = None
        self.submitted = {}  # id -> submit wall time
        self.final = {}  # id -> final job JSON
        self.checks = {}
        self.output_check = None
        self.lock = threading.Lock()
        self.done_event = threading.Condition(self.lock)
        self.seen_status = set()  # (id, status) pairs already timed (sse)
        self.sse_ready = threading.Event()
        self.sse_stop = False
        self.sse_thread = None
        self.sse_conn = None
        self.signalled = False

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, name, method, path, body=None, headers=None, ok=(200,)):
        """An API call timed under `name`; None (error counted) unless its status is in ok."""
        t0 = time.monotonic()
        try:
            status, hdrs, data = self.client.request(method, path, body, headers)
        except NoAnswer as e:
            self.runner.stats.error(f"conn:{e.kind}")
            return None
        self.runner.stats.sample(name, time.monotonic() - t0)
        if status not in ok:
            self.runner.stats.error(error_kind(status, data))
            return None
        return status, hdrs, data

    def run(self):
        try:
            self.body()
        except Exception as e:  # noqa: BLE001 - a runner bug must be visible, not a hang
            self.runner.stats.error(f"runner:{type(e).__name__}:{e}")
        finally:
            self.signal_submitted()

    def signal_submitted(self):
        """Tells the runner this session is done submitting (once; the probe never)."""
        if not self.probe and not self.signalled:
            self.signalled = True
            self.runner.submitted_one()

    def body(self):
        r = self.runner
        got = self.call("session_create", "POST", "/v1/sessions", b"", self.runner.session_headers,
                        ok=(201,))
        if not got:
            return
        self.token = json.loads(got[2])["token"]
        if r.args.mode == "sse":
            self.sse_thread = threading.Thread(target=self.sse_loop, daemon=True)
            self.sse_thread.start()
            if not self.sse_ready.wait(30):
                r.stats.error("sse:no_stream")
        payload = json.dumps({"model": r.args.model,
                              "input": {"image": base64.b64encode(self.image["png"]).decode()}})
        for j in range(self.jobs_wanted):
            if time.monotonic() > r.deadline:
                break
            headers = dict(self.auth(), **{"Content-Type": "application/json",
                                           "Idempotency-Key": f"load-{self.index}-{j}"})
            got = self.call("submit", "POST", "/v1/jobs", payload.encode(), headers,
                            ok=(200, 202))
            if got and got[0] == 200:  # a resent submit the server had already taken
                r.stats.retry("idempotent_replay")
            if got:
                job = json.loads(got[2])
                with self.lock:
                    self.submitted[job["id"]] = time.time()
        self.signal_submitted()
        if r.args.mode == "poll":
            self.poll_until_done()
        else:
            self.wait_events()
        self.verify()
        if r.args.cleanup:
            self.call("session_delete", "DELETE", "/v1/sessions/current", None, self.auth(),
                      ok=(204,))
        self.client.close()

    def poll_until_done(self, ids=None):
        r = self.runner
        pending = list(self.submitted if ids is None else ids)
        while pending and time.monotonic() < r.deadline:
            still = []
            for jid in pending:
                got = self.call("poll", "GET", f"/v1/jobs/{jid}", None, self.auth())
                if got is None:
                    still.append(jid)
                    continue
                job = json.loads(got[2])
                if job["status"] in FINAL:
                    self.final[jid] = job
                else:
                    still.append(jid)
            pending = still
            if pending:
                time.sleep(r.args.poll_interval)

    def sse_loop(self):
        """Reads /v1/events on its own connection; keeps the first arrival of each
        (job, status) and its delay from the server's timestamp of that change."""
        r = self.runner
        conn = http.client.HTTPConnection(r.host, r.port, timeout=r.args.sse_timeout)
        self.sse_conn = conn
        try:
            conn.request("GET", "/v1/events", headers=self.auth())
            resp = conn.getresponse()
            if resp.status != 200:
                r.stats.error("sse:" + error_kind(resp.status, resp.read()))
                return
            self.sse_ready.set()
            event, data = None, []
            while not self.sse_stop:
                line = resp.readline()
                if not line:
                    if not self.sse_stop:
                        r.stats.error("sse:stream_closed")
                    return
                line = line.decode().rstrip("\r\n")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "":
                    if event == "job" and data:
                        self.on_job_event(json.loads("\n".join(data)), time.time())
                    elif event == "reset":
                        r.stats.error("sse:reset")
                    event, data = None, []
        except (OSError, http.client.HTTPException) as e:
            if not self.sse_stop:
                r.stats.error(f"sse:conn:{type(e).__name__}")
        finally:
            self.sse_ready.set()
            conn.close()

    def on_job_event(self, job, received):
        key = (job["id"], job["status"])
        stamp = {"queued": job.get("created_at"), "running": job.get("started_at")}.get(
            job["status"], job.get("finished_at"))
        with self.lock:
            if key not in self.seen_status:
                self.seen_status.add(key)
                t = parse_time(stamp)
                if t is not None:
                    # Server stamps are whole milliseconds; clamp the rounding below zero.
                    self.runner.stats.sample("event_delay", max(0.0, received - t))
            if job["status"] in FINAL:
                self.final[job["id"]] = job
            self.done_event.notify_all()

    def wait_events(self):
        r = self.runner
        with self.lock:
            while (not all(j in self.final for j in self.submitted)
                   and time.monotonic() < r.deadline and self.sse_thread.is_alive()):
                self.done_event.wait(0.5)
        self.sse_stop = True
        try:  # ends the stream now: the server frees its thread at its next write
            self.sse_conn.sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, OSError):
            pass
        missing = [j for j in self.submitted if j not in self.final]
        if missing:  # the stream failed to say; polling finds their states, as a page would
            r.stats.error("sse:final_event_missing")
            self.poll_until_done(missing)
        # Events say everything polling does: read the final states to compare.
        for jid in list(self.submitted):
            got = self.call("poll", "GET", f"/v1/jobs/{jid}", None, self.auth())
            if got:
                job = json.loads(got[2])
                if jid in self.final and job["status"] != self.final[jid]["status"]:
                    r.stats.error("sse:state_differs_from_poll")
                if job["status"] in FINAL:
                    self.final[jid] = job

    def verify(self):
        """Own ids only in the listing; one output 4x the input, nearest to its own input."""
        got = self.call("list", "GET", "/v1/jobs?limit=100", None, self.auth())
        if got:
            listed = {j["id"] for j in json.loads(got[2])["jobs"]}
            self.checks["foreign_ids_in_listing"] = len(listed - set(self.submitted))
            self.checks["own_ids_missing_from_listing"] = len(set(self.submitted) - listed)
            with self.runner.lock:
                self.runner.foreign_seen += self.checks["foreign_ids_in_listing"]
                for other in self.runner.sessions:
                    if other is not self:
                        self.runner.cross_hits += len(listed & set(other.submitted))
        ok = [j for j in self.final.values() if j["status"] == "succeeded"]
        if not ok:
            return
        job = ok[0]
        got = self.call("output", "GET", job["outputs"][0]["url"], None, self.auth())
        if not got:
            return
        scale = self.runner.scale
        w, h = pngmini.header(got[2])
        check = {"job": job["id"], "width": w, "height": h,
                 "size_ok": (w, h) == (self.image["width"] * scale, self.image["height"] * scale)}
        try:
            ow, oh, rgb = pngmini.decode(got[2])
            _, _, small = pngmini.box_down(ow, oh, rgb, scale)
            check["small"] = small
        except ValueError as e:
            check["decode_error"] = str(e)
        self.output_check = check


class Runner:
    def __init__(self, args):
        self.args = args
        self.stats = Stats()
        self.lock = threading.Lock()
        self.sessions = []
        self.foreign_seen = 0
        self.cross_hits = 0
        self.submitted_count = 0
        self.all_submitted = threading.Event()
        self.server = None
        self.server_log = None
        self.data_dir = None
        self.session_headers = {}
        if args.api_key:
            self.session_headers["Authorization"] = f"Bearer {args.api_key}"

    # --- server -------------------------------------------------------------------------
    def start_server(self):
        a = self.args
        self.data_dir = tempfile.mkdtemp(prefix="kiln-load-")
        # kiln lets event streams hold all HTTP threads but a quarter (at least 4); each
        # session here also keeps a keep-alive connection for its other requests.
        http_threads = a.http_threads or (2 * a.sessions + 16 if a.mode == "sse" else 16)
        self.http_threads = http_threads
        cmd = [a.kiln, "serve", "--host", "127.0.0.1", "--port", "0", "--data",
               os.path.join(self.data_dir, "data"), "--models", a.models,
               "--workers", str(a.workers), "--threads", str(a.threads),
               "--http-threads", str(http_threads)] + a.serve_arg
        self.server_cmd = cmd
        self.server_log = open(os.path.join(self.data_dir, "serve.log"), "w+")
        self.server = subprocess.Popen(cmd, stdout=self.server_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        pattern = re.compile(r"kiln serve on http://([0-9.]+):(\d+)")
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                break
            with open(self.server_log.name) as f:
                m = pattern.search(f.read())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                return
            time.sleep(0.05)
        with open(self.server_log.name) as f:
            sys.stderr.write(f.read())
        raise SystemExit(f"kiln serve did not start: {' '.join(cmd)}")

    def stop_server(self):
        if not self.server:
            return
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        self.server_log.close()
        if self.args.keep:
            print(f"server data and log kept in {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def server_memory(self):
        if not self.server:
            return {}
        out = {}
        try:
            with open(f"/proc/{self.server.pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("VmHWM", "VmRSS"):
                        out[key] = int(value.split()[0]) * 1024
        except OSError:
            pass
        return out

    def get(self, path):
        c = Client(self.host, self.port, self.stats)
        try:
            return c.request("GET", path)
        finally:
            c.close()

    # --- session callbacks --------------------------------------------------------------
    def submitted_one(self):
        with self.lock:
            self.submitted_count += 1
            if self.submitted_count >= self.args.sessions:
                self.all_submitted.set()

    # --- run ----------------------------------------------------------------------------
    def run(self):
        a = self.args
        if a.url:
            m = re.match(r"http://([^:/]+):(\d+)/?$", a.url)
            if not m:
                raise SystemExit("--url must look like http://HOST:PORT")
            self.host, self.port = m.group(1), int(m.group(2))
        else:
            self.start_server()
        try:
            return self.run_load()
        finally:
            self.stop_server()

    def wait_ready(self):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                status, _, _ = self.get("/readyz")
                if status == 200:
                    return True
            except NoAnswer:
                pass
            time.sleep(0.1)
        return False

    def run_load(self):
        a = self.args
        if not self.wait_ready():
            raise SystemExit("the server never answered 200 on /readyz")
        status, _, body = self.get("/v1/models")
        models = {m["name"]: m for m in json.loads(body)} if status == 200 else {}
        if a.model not in models:
            raise SystemExit(f"model {a.model} not served; have: {', '.join(sorted(models))}")
        self.scale = int(models[a.model]["scale"])
        inputs = make_inputs(a.sessions + 1)
        # Warm-up: one job on its own so the model load and first plan are not in the figures.
        self.deadline = time.monotonic() + a.duration
        if a.warmup:
            Session(-1, self, inputs[-1], 1, probe=True).run()
        self.warmup_errors = dict(self.stats.errors)
        load_before = os.getloadavg()
        metrics_before = self.scrape_metrics()
        self.stats = Stats()  # the warm-up's samples are not part of the figures
        self.deadline = time.monotonic() + a.duration
        t0 = time.time()
        self.sessions = [Session(i, self, inputs[i], a.jobs) for i in range(a.sessions)]
        for s in self.sessions:
            s.start()
        probe = None
        if a.fairness:
            self.all_submitted.wait(max(0.0, self.deadline - time.monotonic()))
            probe = Session(a.sessions, self, inputs[a.sessions], 1, probe=True)
            probe.start()
        for s in self.sessions:
            s.join(max(0.0, self.deadline - time.monotonic()) + 30)
        if probe:
            probe.join(max(0.0, self.deadline - time.monotonic()) + 30)
        t1 = time.time()
        memory = self.server_memory()
        metrics = self.scrape_metrics()
        load_after = os.getloadavg()
        return self.report(t0, t1, probe, memory, metrics, metrics_before, load_before,
                           load_after)

    def scrape_metrics(self):
        try:
            status, _, body = self.get("/metrics")
        except NoAnswer:
            return {}
        if status != 200:
            return {}
        out = {}
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            if name.startswith(("kiln_memory_pool", "kiln_run_seconds_sum",
                                "kiln_run_seconds_count", "kiln_queue_wait_seconds_sum",
                                "kiln_queue_wait_seconds_count", "kiln_model_cache",
                                "kiln_jobs_finished_total", "kiln_plan_cache")):
                try:
                    out[name] = float(value)
                except ValueError:
                    pass
        return out

    # --- report -------------------------------------------------------------------------
    def report(self, t0, t1, probe, memory, metrics, metrics_before, load_before, load_after):
        a = self.args
        sessions = self.sessions
        statuses = collections.Counter()
        finished = []
        for s in sessions:
            for jid in s.submitted:
                job = s.final.get(jid)
                statuses[job["status"] if job else "unfinished"] += 1
                if job and job["status"] == "succeeded":
                    finished.append(parse_time(job["finished_at"]))
        wanted = a.sessions * a.jobs
        submitted = sum(len(s.submitted) for s in sessions)
        if submitted < wanted:
            statuses["not_submitted"] += wanted - submitted
        if statuses["unfinished"]:
            self.stats.error("deadline:unfinished_jobs")

        # Own outputs: size and nearest input.
        inputs = [s.image["rgb"] for s in sessions]
        checks = {"outputs_checked": 0, "output_size_wrong": 0, "output_not_nearest_own": 0,
                  "output_undecodable": 0, "sessions_without_output": 0,
                  "foreign_ids_in_listings": self.foreign_seen,
                  "ids_of_other_sessions_in_listings": self.cross_hits,
                  "own_ids_missing_from_listings": sum(
                      s.checks.get("own_ids_missing_from_listing", 0) for s in sessions)}
        for s in sessions:
            c = s.output_check
            if c is None:
                checks["sessions_without_output"] += 1
                continue
            checks["outputs_checked"] += 1
            checks["output_size_wrong"] += 0 if c["size_ok"] else 1
            if "small" not in c:
                checks["output_undecodable"] += 1
                continue
            own = pngmini.mean_abs_diff(c["small"], s.image["rgb"])
            others = [pngmini.mean_abs_diff(c["small"], x) for k, x in enumerate(inputs)
                      if k != s.index and x != s.image["rgb"]]
            if others and own >= min(others):
                checks["output_not_nearest_own"] += 1
            s.own_mad = own
        failed_checks = sum(v for k, v in checks.items() if k != "outputs_checked")

        fairness = None
        if probe and probe.final:
            job = next(iter(probe.final.values()))
            created, started = parse_time(job["created_at"]), parse_time(job["started_at"])
            before, active = 0, 0
            for s in sessions:
                queued_then = False
                for other in s.final.values():
                    st, cr = parse_time(other.get("started_at")), parse_time(other["created_at"])
                    if st is not None and started is not None and created <= st < started:
                        before += 1
                    if cr <= created and (st is None or st > created):
                        queued_then = True
                active += 1 if queued_then else 0
            fairness = {
                "probe_queue_wait_s": None if started is None else round(started - created, 3),
                "jobs_started_before_probe": before,
                "sessions_with_queued_jobs_at_probe_submit": active,
                "workers": a.workers,
                "round_robin_bound": active + a.workers,
                "within_bound": started is not None and before <= active + a.workers,
            }
        elif a.fairness:
            self.stats.error("fairness:probe_did_not_finish")

        first_submit = min((min(s.submitted.values()) for s in sessions if s.submitted),
                           default=t0)
        last_finish = max(finished, default=t1)
        span = max(1e-9, last_finish - first_submit)
        run_sum = (metrics.get('kiln_run_seconds_sum{model="%s"}' % a.model, 0)
                   - metrics_before.get('kiln_run_seconds_sum{model="%s"}' % a.model, 0))
        run_count = (metrics.get('kiln_run_seconds_count{model="%s"}' % a.model, 0)
                     - metrics_before.get('kiln_run_seconds_count{model="%s"}' % a.model, 0))
        result = {
            "runner": "bench/load/kiln_load.py",
            "command": " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]),
            "server_command": getattr(self, "server_cmd", None),
            "date_utc": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": a.mode,
            "http_threads": getattr(self, "http_threads", None),
            "sessions": a.sessions,
            "jobs_per_session": a.jobs,
            "model": a.model,
            "input": "32x32 RGB PNG crops of tests/data/reference photos, distinct per session",
            "workers": a.workers,
            "threads_per_worker": a.threads,
            "machine": machine_facts(load_before, load_after),
            "wall_s": round(t1 - t0, 3),
            "jobs": dict(statuses),
            "jobs_succeeded": statuses["succeeded"],
            "jobs_expected": wanted,
            "jobs_per_s": round(statuses["succeeded"] / span, 3),
            "server_mean_run_s": None if not run_count else round(run_sum / run_count, 4),
            "errors": dict(self.stats.errors),
            "errors_total": sum(self.stats.errors.values()),
            "warmup_errors": self.warmup_errors,
            "retries": dict(self.stats.retries),
            "http_requests": self.stats.requests,
            "latency": {k: self.stats.summary(k) for k in
                        ("connect", "session_create", "submit", "poll", "event_delay", "list",
                         "output")},
            "fairness": fairness,
            "checks": checks,
            "server_peak_rss_bytes": memory.get("VmHWM"),
            "server_rss_bytes_at_end": memory.get("VmRSS"),
            "server_metrics": {k: v for k, v in metrics.items()
                               if k.startswith(("kiln_memory_pool", "kiln_model_cache",
                                                "kiln_plan_cache"))},
        }
        ok = (result["errors_total"] == 0 and not self.warmup_errors and statuses["succeeded"] == wanted
              and failed_checks == 0 and (fairness is None or fairness["within_bound"]))
        result["ok"] = ok
        print_table(result)
        if a.out != "-":
            out = a.out or os.path.join(
                REPO, "bench", "results",
                f"{datetime.datetime.utcnow():%Y-%m-%d}-load-{a.mode}{a.tag and '-' + a.tag}.json")
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with open(out, "w") as f:
                json.dump(result, f, indent=2)
                f.write("\n")
            print(f"wrote {os.path.relpath(out, os.getcwd())}")
        return 0 if ok else 1


def machine_facts(load_before, load_after):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    commit, modified = None, None
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        modified = bool(subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=30).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "kiln_commit": commit,
            "kiln_worktree_modified": modified,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after]}


def fmt_ms(v):
    return "-" if v is None else f"{v:.1f}"


def print_table(r):
    lines = [f"kiln load: {r['sessions']} sessions x {r['jobs_per_session']} jobs, "
             f"mode {r['mode']}, model {r['model']}, {r['workers']} worker(s), "
             f"{r['http_threads'] or '?'} HTTP threads",
             f"machine: {r['machine']['cpu']} ({r['machine']['cores']} cores), load average "
             f"before {r['machine']['loadavg_before'][0]}, after "
             f"{r['machine']['loadavg_after'][0]}", ""]
    lines.append("| latency | count | p50 ms | p99 ms | max ms |")
    lines.append("|---|---:|---:|---:|---:|")
    for k, v in r["latency"].items():
        if v["count"]:
            lines.append(f"| {k} | {v['count']} | {fmt_ms(v['p50_ms'])} | "
                         f"{fmt_ms(v['p99_ms'])} | {fmt_ms(v['max_ms'])} |")
    lines.append("")
    lines.append("| figure | value |")
    lines.append("|---|---|")
    rows = [
        ("jobs succeeded / expected", f"{r['jobs_succeeded']} / {r['jobs_expected']}"),
        ("job states", ", ".join(f"{k} {v}" for k, v in sorted(r["jobs"].items()))),
        ("jobs/s (first submit to last finish)", r["jobs_per_s"]),
        ("server mean run time per job (s)", r["server_mean_run_s"]),
        ("errors", r["errors_total"] and ", ".join(f"{k} {v}" for k, v in
                                                    sorted(r["errors"].items())) or "0"),
        ("retries (counted, not errors)", ", ".join(f"{k} {v}" for k, v in
                                                    sorted(r["retries"].items())) or "0"),
        ("HTTP requests", r["http_requests"]),
        ("wall time (s)", r["wall_s"]),
    ]
    f = r["fairness"]
    if f:
        rows += [
            ("fairness: 1-job session's queue wait (s)", f["probe_queue_wait_s"]),
            ("fairness: jobs started before it / sessions queued then / workers",
             f"{f['jobs_started_before_probe']} / "
             f"{f['sessions_with_queued_jobs_at_probe_submit']} / {f['workers']}"),
        ]
    c = r["checks"]
    rows += [
        ("outputs checked (size = scale x input, nearest own input)",
         f"{c['outputs_checked']} ({c['output_size_wrong']} wrong size, "
         f"{c['output_not_nearest_own']} not nearest own)"),
        ("foreign job ids in listings", c["foreign_ids_in_listings"]),
    ]
    if r["server_peak_rss_bytes"]:
        rows.append(("server peak RSS (VmHWM, MiB)",
                     round(r["server_peak_rss_bytes"] / 2**20, 1)))
    peak = r["server_metrics"].get('kiln_memory_pool_bytes{state="peak"}')
    if peak is not None:
        rows.append(("server memory pool peak (MiB)", round(peak / 2**20, 1)))
    rows.append(("result", "OK" if r["ok"] else "FAILED"))
    for k, v in rows:
        lines.append(f"| {k} | {v} |")
    print("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    target = p.add_mutually_exclusive_group()
    target.add_argument("--url", help="an existing server, http://HOST:PORT")
    target.add_argument("--kiln", default=os.path.join(REPO, "build", "app", "kiln"),
                        help="kiln binary to start on loopback (default build/app/kiln)")
    p.add_argument("--models", default=os.path.join(REPO, "models"),
                   help="models folder for the started server")
    p.add_argument("--model", default="realesr-animevideov3-x4")
    p.add_argument("--sessions", type=int, default=50)
    p.add_argument("--jobs", type=int, default=4, help="jobs per session")
    p.add_argument("--mode", choices=("poll", "sse"), default="poll")
    p.add_argument("--duration", type=float, default=600,
                   help="seconds after which unfinished jobs count as errors")
    p.add_argument("--poll-interval", type=float, default=0.25,
                   help="seconds between a session's polling rounds")
    p.add_argument("--sse-timeout", type=float, default=40,
                   help="seconds of silence (heartbeats are every 15 s) before an SSE error")
    p.add_argument("--workers", type=int, default=1, help="started server's --workers")
    p.add_argument("--threads", type=int, default=0, help="started server's --threads")
    p.add_argument("--http-threads", type=int, default=0,
                   help="started server's --http-threads (default: 16; sse: 2 x sessions + "
                        "16, since each open event stream holds one)")
    p.add_argument("--serve-arg", action="append", default=[],
                   help="extra argument for kiln serve (repeat)")
    p.add_argument("--api-key", default="", help="for POST /v1/sessions (--url)")
    p.add_argument("--no-fairness", dest="fairness", action="store_false",
                   help="skip the one-job probe session")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="skip the untimed first job (model load, first plan)")
    p.add_argument("--no-cleanup", dest="cleanup", action="store_false",
                   help="keep the sessions (default: DELETE /v1/sessions/current at the end)")
    p.add_argument("--keep", action="store_true", help="keep the started server's data + log")
    p.add_argument("--out", help="JSON path (default bench/results/<date>-load-<mode>.json; "
                                 "'-': none)")
    p.add_argument("--tag", default="", help="suffix of the default JSON name: "
                                             "<date>-load-<mode>-<tag>.json")
    a = p.parse_args()
    if a.sessions < 1 or a.jobs < 1:
        p.error("--sessions and --jobs must be at least 1")
    if not a.url and not os.access(a.kiln, os.X_OK):
        p.error(f"no kiln binary at {a.kiln}; build it or pass --kiln / --url")
    sys.exit(Runner(a).run())


if __name__ == "__main__":
    main()
