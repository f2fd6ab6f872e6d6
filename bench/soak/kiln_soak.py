#!/usr/bin/python3
"""kiln soak test: client sessions doing a random mix of job calls for a long time against a
`kiln serve` that is SIGKILLed and restarted every few minutes and whose disk is filled to
the last byte now and then; then a check that nothing it accepted was lost, duplicated,
served half-written or left stuck.

Python 3 standard library only. Mounts a small tmpfs (root; otherwise the full-disk phase is
skipped and reported so) for the server's --data folder, starts a private copy of the kiln
binary on loopback with a small SRVGGNetCompact model, and runs --sessions client threads
for --duration seconds. Each session submits jobs (JSON and multipart, some with an
Idempotency-Key that it replays later), polls, lists, downloads outputs (some with
If-None-Match) and checks each as a complete PNG of 4x (the scale) the input's size whose
ETag is the first 32 hex digits of its sha256, cancels, retries and deletes. Every
--kill-every seconds the server gets SIGKILL and is started again on the same folder and
port; every --fill-every seconds a ballast file fills the tmpfs for --fill-hold seconds.
The server's RSS is sampled per incarnation.

At the end: the load stops, the disk is freed, the server is restarted once more and its
queue drained, and every job the server accepted must be in a final state or deleted by its
client (else LOST, or STUCK), one job per Idempotency-Key (else DUPLICATED), every served
output complete and matching its ETag (else PARTIAL). Prints a table, writes JSON and a
markdown summary (default bench/results/<UTC date>-soak.{json,md}). Exit status 0 only
when none of these and no other finding (a crash, a hang, an error without its JSON body, a
500, a connection error outside a restart, ...) occurred; 1 otherwise; 2 for bad arguments
or a server that never started.
"""

import argparse
import collections
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.realpath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "bench", "load"))
import kiln_load  # noqa: E402 (its 32x32 crops of the reference photographs)
import soak_png  # noqa: E402
from soak_disk import DiskFiller, mount_tmpfs, unmount  # noqa: E402
from soak_http import Client, ErrorBook, NoAnswer, Timeline  # noqa: E402
from soak_server import ServerProcess  # noqa: E402
from soak_session import FINAL, Session  # noqa: E402

# The fetched SRVGGNetCompact x4 model (ncnn pair) and the tiny committed one.
FETCHED_MODEL = ("realesr-animevideov3-x4", ("realesr-animevideov3-x4.param",
                                              "realesr-animevideov3-x4.bin"))
COMMITTED_MODEL = ("srvgg_x4", ("srvgg_x4.pth",))
CI_PRESET = {"duration": 60, "kill_every": 20, "fill_every": 30, "fill_hold": 12,
             "sessions": 3, "drain_timeout": 20}


class Interrupted(Exception):
    pass


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


class Runner:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.run_id = f"{self.rng.getrandbits(24):06x}"
        self.timeline = Timeline()
        self.errors = ErrorBook(self.timeline)
        self.stop_load = threading.Event()
        self.stop_chaos = threading.Event()
        self.lock = threading.Lock()
        self.owners = {}  # job id -> session index
        self.requests = collections.Counter()
        self.outputs = collections.Counter()
        self.partials = []
        self.idempotency = []
        self.sessions = []
        self.kills = []
        self.server = None
        self.filler = None
        self.disk_skipped = None
        self.mounted = None
        self.work = None
        self.data_dir = None
        self.verification = {}
        self.orphan_tags = set()
        self.clean_stop = None

    # --- callbacks for sessions ------------------------------------------------------------
    def finding(self, kind, example):
        self.errors.finding(kind, example)

    def idempotency_violation(self, kind, session, sub, job):
        with self.lock:
            self.idempotency.append({"kind": kind, "session": session, "key": sub.key,
                                     "tag": sub.tag, "first_id": sub.job_id,
                                     "answer": job})

    def partial_output(self, detail):
        with self.lock:
            self.partials.append(detail)

    def own(self, job_id, session):
        with self.lock:
            self.owners[job_id] = session

    def owner_of(self, job_id):
        with self.lock:
            return self.owners.get(job_id)

    def count_request(self, action, status):
        with self.lock:
            self.requests[f"{action} {status}"] += 1

    def count_output(self, not_modified=False, thumbnail=False):
        with self.lock:
            self.outputs["thumbnail" if thumbnail else "304" if not_modified else "200"] += 1

    # --- set-up ----------------------------------------------------------------------------
    def prepare(self):
        a = self.args
        self.work = tempfile.mkdtemp(prefix="kiln-soak-")
        # A private copy: a rebuild of build/app/kiln must not swap the binary under the run.
        binary = os.path.join(self.work, "kiln")
        shutil.copy2(a.kiln, binary)
        with open(binary, "rb") as f:
            self.binary_sha256 = hashlib.sha256(f.read()).hexdigest()
        models = os.path.join(self.work, "models")
        os.makedirs(models)
        self.model, files, folder = self.pick_model()
        for name in files:
            os.symlink(os.path.join(folder, name), os.path.join(models, name))
        mount_dir = os.path.join(self.work, "disk")
        os.makedirs(mount_dir)
        if a.no_disk_fill:
            self.disk_skipped = "--no-disk-fill"
        else:
            self.disk_skipped = mount_tmpfs(mount_dir, a.disk_mb)
            self.mounted = None if self.disk_skipped else mount_dir
        if self.disk_skipped:
            print(f"full-disk phase skipped: {self.disk_skipped}", file=sys.stderr)
        self.data_dir = os.path.join(mount_dir, "data")
        logs = os.path.join(self.work, "logs")
        os.makedirs(logs)
        serve_args = ["--data", self.data_dir, "--models", models, "--workers", str(a.workers),
                      "--threads", str(a.threads), "--http-threads", str(a.http_threads),
                      "--drain-grace", "10"] + a.serve_arg
        self.server = ServerProcess(binary, serve_args, logs, self.timeline, a.rss_interval)

    def pick_model(self):
        """(name, files, folder): --model from --models, or the fetched SRVGGNetCompact x4
        when --models has it, else the tiny committed one."""
        a = self.args
        if a.model != "auto":
            names = [n for n in os.listdir(a.models) if os.path.splitext(n)[0] == a.model]
            if not names:
                raise RuntimeError(f"no model {a.model} in {a.models}")
            return a.model, names, os.path.abspath(a.models)
        name, files = FETCHED_MODEL
        if all(os.path.isfile(os.path.join(a.models, f)) for f in files):
            return name, files, os.path.abspath(a.models)
        name, files = COMMITTED_MODEL
        return name, files, os.path.join(REPO, "tests", "data", "weights")

    # --- the run ---------------------------------------------------------------------------
    def run(self):
        a = self.args
        self.server.start()
        self.server.start_monitor()
        client = Client(self.server.host, self.server.port)
        models = {m["name"]: m for m in client.request("GET", "/v1/models").json()}
        client.close()
        if self.model not in models:
            raise RuntimeError(f"model {self.model} not served; have {', '.join(models)}")
        self.scale = int(models[self.model]["scale"])
        crops = [item["png"] for item in kiln_load.make_inputs(8 * a.sessions)]
        self.t0 = time.monotonic()
        self.sessions = [Session(i, self, crops[8 * i:8 * i + 8], self.rng.getrandbits(32))
                         for i in range(a.sessions)]
        for s in self.sessions:
            s.start()
        if self.mounted and a.fill_every > 0:
            self.filler = DiskFiller(self.mounted, self.timeline, a.fill_every, a.fill_hold,
                                     a.first_fill, random.Random(self.rng.getrandbits(32)),
                                     self.stop_chaos)
            self.filler.start()
        killer = None
        if a.kill_every > 0:
            killer = threading.Thread(target=self.kill_loop, daemon=True, name="killer")
            killer.start()
        end = self.t0 + a.duration
        every = 10 if a.duration <= 120 else 60
        next_progress = self.t0 + every
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            if time.monotonic() >= next_progress:
                next_progress += every
                fills = len(self.filler.fills) if self.filler else 0
                print(f"{time.monotonic() - self.t0:5.0f} s: {len(self.owners)} jobs accepted, "
                      f"{len(self.kills)} kills, {fills} disk fills, "
                      f"{len(self.server.crashes)} crashes", file=sys.stderr, flush=True)
        self.stop_load.set()
        self.stop_chaos.set()
        for s in self.sessions:
            s.join(60)
        if killer:
            killer.join(120)
        if self.filler:
            self.filler.join(60)
        self.wall_s = time.monotonic() - self.t0
        self.verify()

    def kill_loop(self):
        a = self.args
        while not self.stop_chaos.wait(a.kill_every * self.rng.uniform(0.75, 1.25)):
            # Not while the disk is full unless asked: a start on a full disk is another test.
            holding = (self.filler.holding if self.filler and not a.kill_while_full
                       else threading.Lock())
            with holding:
                if self.stop_chaos.is_set():
                    return
                started = time.monotonic()
                inc = self.server.restart()
                self.kills.append({"at_s": round(started - self.t0, 2),
                                   "down_s": round(inc.ready - started, 2)})

    # --- the final check ---------------------------------------------------------------------
    def verify(self):
        a = self.args
        v = self.verification
        if self.filler:
            self.filler.free()
        for s in self.sessions:
            if s.token and not s.settle(time.monotonic() + 30):
                self.finding("unsettled_after_load", {"session": s.index})
        # First with the incarnation that lived through the load: a job that stays queued or
        # running with the disk free and nothing else to do is stuck until a restart.
        drained, seconds, left = self.drain(min(a.drain_timeout, 30))
        if not drained:
            self.finding("stuck_until_restart", {"left_in_store": left,
                                                 "jobs": self.unfinished_jobs()[:20]})
        self.server.restart()
        v["drained"], v["drain_s"], v["left_in_store"] = self.drain(a.drain_timeout)
        lost, stuck, resurrected, orphans = [], [], [], []
        input_mismatch = []
        for s in self.sessions:
            if s.token is None:
                continue
            listing = self.list_all(s)
            for record in list(s.records.values()):
                self.check_record(s, record, lost, stuck, resurrected, input_mismatch)
            for job_id, job in listing.items():
                if job_id not in s.records:
                    orphans.append(self.explain_orphan(s, job, stuck))
        v.update(lost=lost, stuck=stuck, resurrected=resurrected, orphans=orphans,
                 input_mismatch=input_mismatch)
        self.clean_stop = self.server.stop()

    def unfinished_jobs(self):
        """Every session's queued and running jobs, as the server lists them."""
        jobs = []
        for s in self.sessions:
            for status in ("queued", "running"):
                got = s.call("final_list", "GET", f"/v1/jobs?status={status}&limit=100")
                if got:
                    jobs += [dict(job, session=s.index) for job in got.json()["jobs"]]
        return jobs

    def drain(self, timeout):
        """Waits until the store holds no queued or running job: (done, seconds, counts)."""
        client = Client(self.server.host, self.server.port)
        started = time.monotonic()
        counts = {}
        while True:
            try:
                answer = client.request("GET", "/metrics")
                m = parse_metrics(answer.body.decode())
                counts = {s: int(m.get(f'kiln_jobs{{status="{s}"}}', 0))
                          for s in ("queued", "running")}
                if not any(counts.values()):
                    return True, round(time.monotonic() - started, 2), counts
            except NoAnswer:
                pass
            if time.monotonic() - started > timeout:
                return False, round(time.monotonic() - started, 2), counts
            time.sleep(0.5)

    def list_all(self, session):
        jobs, cursor = {}, None
        while True:
            query = "limit=100" + (f"&cursor={cursor}" if cursor else "")
            got = session.call("final_list", "GET", f"/v1/jobs?{query}")
            if not got:
                self.finding("final_listing_failed", {"session": session.index})
                return jobs
            page = got.json()
            for job in page["jobs"]:
                jobs[job["id"]] = job
            cursor = page.get("next_cursor")
            if not cursor:
                return jobs

    def check_record(self, s, record, lost, stuck, resurrected, input_mismatch):
        got = s.call("final_get", "GET", f"/v1/jobs/{record.id}", expected=(200, 404))
        if got is None:
            self.finding("final_get_failed", {"job": record.id})
            return
        history = {"job": record.id, "session": s.index, "origin": record.origin,
                   "accepted_phase": record.accepted_phase, "last_seen": record.job,
                   "tag": record.submission.tag if record.submission else None}
        if record.deleted == "confirmed":
            if got.status == 200:
                resurrected.append(dict(history, now=got.json()))
            return
        if got.status == 404:
            if record.deleted is None:  # "pending": a DELETE may have gone through
                lost.append(history)
            return
        job = got.json()
        s.observe(job)
        if job["status"] not in FINAL:
            stuck.append(dict(history, now=job))
            return
        if job["status"] == "succeeded" and record.etag is None:
            s.check_output(record)
        stored = s.call("final_input", "GET", f"/v1/jobs/{record.id}/input")
        if stored and record.submission and stored.body != record.submission.png:
            input_mismatch.append(dict(history, stored_bytes=len(stored.body),
                                       submitted_bytes=len(record.submission.png)))

    def explain_orphan(self, s, job, stuck):
        """A job the server has that its client never learned the id of: from a request
        whose answer was lost (fine) or not (a finding)."""
        detail = {"job": job["id"], "session": s.index, "status": job["status"],
                  "retry_of": job.get("retry_of")}
        if job["status"] not in FINAL:
            stuck.append(dict(detail, now=job))
        if job.get("retry_of"):
            detail["why"] = ("retry_answer_lost" if job["retry_of"] in s.unknown_retries
                             else "unexplained_retry")
            return detail
        stored = s.call("final_input", "GET", f"/v1/jobs/{job['id']}/input")
        tag = soak_png.read_tag(stored.body) if stored else None
        sub = s.submissions.get(tag)
        detail["tag"] = tag
        seen_before = tag in self.orphan_tags
        self.orphan_tags.add(tag)
        if sub is None:
            detail["why"] = "unexplained"
        elif sub.job_id is not None or seen_before:
            # The request's answer named another job: one request, two jobs.
            detail["why"] = "second_job_for_one_request"
            detail["key"], detail["first_id"] = sub.key, sub.job_id
            self.idempotency.append({"kind": "two_ids_for_one_key" if sub.key
                                     else "two_jobs_for_one_request",
                                     "session": s.index, "key": sub.key, "tag": tag,
                                     "first_id": sub.job_id, "answer": job})
        elif sub.outcome == "refused":
            detail["why"] = "accepted_after_refusal"
            detail["refusal"] = sub.refusal
        else:
            detail["why"] = "submit_answer_lost"
        return detail

    # --- cleanup ---------------------------------------------------------------------------
    def cleanup(self, failed):
        self.stop_load.set()
        self.stop_chaos.set()
        if self.server:
            self.server.kill_now()
        if self.filler:
            self.filler.free()
        kept_data = None
        if failed and self.data_dir and os.path.isdir(self.data_dir):
            kept_data = os.path.join(self.work, "data-at-end")
            shutil.copytree(self.data_dir, kept_data, ignore_dangling_symlinks=True,
                            dirs_exist_ok=True)
        if self.mounted:
            problem = unmount(self.mounted)
            if problem:
                print(problem, file=sys.stderr)
            self.mounted = None
        if self.work and (failed or self.args.keep):
            print(f"logs{' and data' if kept_data else ''} kept in {self.work}", file=sys.stderr)
        elif self.work:
            shutil.rmtree(self.work, ignore_errors=True)

    # --- report ----------------------------------------------------------------------------
    def report(self):
        a = self.args
        v = self.verification
        records = [r for s in self.sessions for r in s.records.values()]
        finished = collections.Counter()
        failed_by_code = collections.Counter()
        for r in records:
            if r.final_status:
                finished[r.final_status] += 1
                if r.final_status == "failed":
                    failed_by_code[r.error_code or "none"] += 1
            else:
                finished["deleted_before_final" if r.deleted else "not_final"] += 1
        orphan_why = collections.Counter(o["why"] for o in v.get("orphans", []))
        submissions = [sub for s in self.sessions for sub in s.submissions.values()]
        duplicated = [d for d in self.idempotency
                      if d["kind"] in ("two_ids_for_one_key", "two_jobs_for_one_request")]
        errors = self.errors.summary()
        findings = dict(errors["findings"])
        for why in ("accepted_after_refusal", "unexplained", "unexplained_retry"):
            if orphan_why[why]:
                findings["orphan_" + why] = {
                    "count": orphan_why[why],
                    "examples": [o for o in v["orphans"] if o["why"] == why][:5]}
        other_idem = [d for d in self.idempotency if d not in duplicated]
        if other_idem:
            findings["idempotency_other"] = {"count": len(other_idem), "examples": other_idem[:5]}
        for name in ("resurrected", "input_mismatch"):
            if v.get(name):
                findings[name] = {"count": len(v[name]), "examples": v[name][:5]}
        if self.server.health_failures:
            findings["health_check_failed"] = {"count": len(self.server.health_failures),
                                               "examples": self.server.health_failures[:5]}
        if self.server.start_failures:
            findings["start_failed"] = {"count": len(self.server.start_failures),
                                        "examples": self.server.start_failures[:3]}
        if self.filler and self.filler.error:
            findings["disk_filler_error"] = {"count": 1, "examples": [self.filler.error]}
        if not v.get("drained", True):
            findings["queue_not_drained"] = {"count": 1, "examples": [v.get("left_in_store")]}
        if self.clean_stop not in (0, None):
            findings["unclean_stop"] = {"count": 1, "examples": [
                {"exit_status": self.clean_stop,
                 "log_tail": self.server.incarnations[-1].log_path}]}
        incarnations = [inc.report(self.t0) for inc in self.server.incarnations]
        invariants = {
            "lost": len(v.get("lost", [])),
            "duplicated": len(duplicated),
            "partial": len(self.partials),
            "stuck": len(v.get("stuck", [])),
            "crashes": len(self.server.crashes),
        }
        ok = not any(invariants.values()) and not findings
        result = {
            "runner": "bench/soak/kiln_soak.py",
            "command": " ".join([os.path.relpath(os.path.realpath(sys.argv[0]), REPO)]
                                + sys.argv[1:]),
            "server_command": self.server.command(),
            "kiln_binary": {"path": os.path.abspath(a.kiln), "sha256": self.binary_sha256},
            "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine_facts(),
            "model": self.model,
            "scale": self.scale,
            "sessions": a.sessions,
            "duration_s": a.duration,
            "wall_s": round(self.wall_s, 1),
            "seed": a.seed,
            "disk": {"tmpfs_mb": None if self.disk_skipped else a.disk_mb,
                     "full_disk_phase": "skipped: " + self.disk_skipped if self.disk_skipped
                     else "on",
                     "fills": [dict(f, at_s=round(f.pop("started") - self.t0, 1))
                               for f in (self.filler.fills if self.filler else [])]},
            "kills": self.kills,
            "crashes": self.server.crashes,
            "invariants": invariants,
            "ok": ok,
            "jobs": {
                "accepted": len(records),
                "accepted_by_origin": dict(collections.Counter(r.origin for r in records)),
                "accepted_by_phase": dict(collections.Counter(r.accepted_phase for r in records)),
                "finished_by_status": dict(finished),
                "failed_by_error_code": dict(failed_by_code),
                "deleted_by_client": sum(1 for r in records if r.deleted == "confirmed"),
                "orphans_found": dict(orphan_why),
                "submissions": len(submissions),
                "submissions_refused": dict(collections.Counter(
                    sub.refusal for sub in submissions if sub.outcome == "refused")),
                "submissions_answer_lost": sum(1 for sub in submissions if sub.lost_answers),
                "keyed_submissions": sum(1 for sub in submissions if sub.key),
                "replays_checked": sum(s.replays_checked for s in self.sessions),
            },
            "final_check": {"drained": v.get("drained"), "drain_s": v.get("drain_s"),
                            "clean_stop_exit_status": self.clean_stop},
            "lost": v.get("lost", []),
            "duplicated": duplicated,
            "partial": self.partials[:20],
            "stuck": v.get("stuck", []),
            "orphans": v.get("orphans", []),
            "findings": findings,
            "outputs_checked": dict(self.outputs),
            "errors": errors["by_phase"],
            "errors_by_action": errors["by_action"],
            "requests": dict(sorted(self.requests.items())),
            "rss": {"incarnations": incarnations, "series_mib": self.rss_series()},
        }
        return result

    def rss_series(self):
        """[seconds, incarnation, MiB]: the largest sample in each of about 60 time buckets."""
        bucket = max(5.0, self.args.duration / 60)
        best = {}
        for inc in self.server.incarnations:
            for t, kib in inc.samples:
                k = int((t - self.t0) // bucket)
                if k not in best or kib > best[k][2]:
                    best[k] = (round(max(0.0, t - self.t0), 1), inc.index, kib)
        return [[t, i, round(kib / 1024, 1)] for t, i, kib in (best[k] for k in sorted(best))]


def machine_facts():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        pass
    commit = modified = None
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
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def counts(d):
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "0"


def summary_rows(r):
    j, inv = r["jobs"], r["invariants"]
    rows = [
        ("result", "OK" if r["ok"] else "FAILED"),
        ("model, sessions, wall time", f"{r['model']} (x{r['scale']}), {r['sessions']}, "
                                       f"{r['wall_s']} s"),
        ("SIGKILL restarts (down time s: mean / max)",
         f"{len(r['kills'])}" + (f" ({sum(k['down_s'] for k in r['kills']) / len(r['kills']):.2f}"
                                 f" / {max(k['down_s'] for k in r['kills']):.2f})"
                                 if r["kills"] else "")),
        ("full-disk phases", r["disk"]["full_disk_phase"] if r["disk"]["full_disk_phase"] != "on"
         else f"{len(r['disk']['fills'])} on a {r['disk']['tmpfs_mb']} MB tmpfs" + (
             f" (held {', '.join(str(f['held_s']) for f in r['disk']['fills'])} s)"
             if r["disk"]["fills"] else "")),
        ("jobs accepted (by origin)", f"{j['accepted']} ({counts(j['accepted_by_origin'])})"),
        ("jobs accepted by phase", counts(j["accepted_by_phase"])),
        ("finished by status", counts(j["finished_by_status"])),
        ("failed jobs by error code", counts(j["failed_by_error_code"])),
        ("deleted by their client", j["deleted_by_client"]),
        ("submissions refused", counts(j["submissions_refused"])),
        ("jobs no client got an id for (why)", counts(j["orphans_found"])),
        ("keyed submissions / replays checked", f"{j['keyed_submissions']} / "
                                                f"{j['replays_checked']}"),
        ("outputs checked", counts(r["outputs_checked"])),
        ("LOST", inv["lost"]),
        ("DUPLICATED", inv["duplicated"]),
        ("PARTIAL outputs served", inv["partial"]),
        ("STUCK", inv["stuck"]),
        ("server crashes", inv["crashes"]),
        ("other findings", counts({k: f["count"] for k, f in r["findings"].items()})),
    ]
    for phase, kinds in r["errors"].items():
        rows.append((f"errors while {phase.replace('_', ' ')}", counts(kinds)))
    for inc in r["rss"]["incarnations"]:
        if inc["rss_samples"]:
            rows.append((f"RSS MiB, incarnation {inc['index']} (first / last / max)",
                         f"{inc['rss_first_mib']} / {inc['rss_last_mib']} / {inc['rss_max_mib']}"
                         f" ({inc['end_cause']})"))
    return rows


def finding_lines(r):
    """The first examples of everything that failed the run (all of them are in the JSON)."""
    lines = []
    for name in ("lost", "duplicated", "partial", "stuck"):
        for ex in r[name][:3]:
            lines.append(f"- {name}: `{json.dumps(ex)[:600]}`")
    for name, f in r["findings"].items():
        lines.append(f"- {name} ({f['count']}): `{json.dumps(f['examples'][:2])[:600]}`")
    return lines


def print_table(r):
    print(f"kiln soak: {r['command']}")
    print("| figure | value |\n|---|---|")
    for k, v in summary_rows(r):
        print(f"| {k} | {v} |")
    # Also on stdout: a CI log may be all that is left of a failed run.
    for line in finding_lines(r):
        print(line)


def write_markdown(r, path):
    lines = [f"# kiln soak, {r['date_utc']}", "",
             f"`{r['command']}` on {r['machine']['cpu']} ({r['machine']['cores']} cores), kiln "
             f"{r['machine']['kiln_commit']}"
             f"{' (modified work tree)' if r['machine']['kiln_worktree_modified'] else ''}.", "",
             "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(r)]
    if r["crashes"]:
        lines += ["", "## Crashes", ""]
        for c in r["crashes"]:
            lines += [f"- incarnation {c['incarnation']} at {c['at_s']} s, exit status "
                      f"{c['exit_status']} {c['signal'] or ''}; log tail:", "", "```",
                      c["log_tail"].rstrip(), "```"]
    findings = finding_lines(r)
    if findings:
        lines += ["", "## Findings (first examples; all in the JSON)", ""] + findings
    series = r["rss"]["series_mib"]
    if series:
        lines += ["", "RSS (MiB) over time, `seconds:incarnation:MiB`: " +
                  " ".join(f"{t:.0f}:{i}:{m}" for t, i, m in series)]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kiln", default=os.path.join(REPO, "build", "app", "kiln"),
                   help="kiln binary (copied to a private path first; default build/app/kiln)")
    p.add_argument("--models", default=os.path.join(REPO, "models"),
                   help="folder of fetched models (default models/)")
    p.add_argument("--model", default="auto",
                   help="model name in --models (default: realesr-animevideov3-x4 when "
                        "--models has it, else the committed tests/data/weights/srvgg_x4.pth)")
    p.add_argument("--duration", type=float, default=1800, help="seconds of load")
    p.add_argument("--sessions", type=int, default=4, help="client threads, one session each")
    p.add_argument("--kill-every", type=float, default=180,
                   help="seconds between SIGKILL restarts, +-25%% (0: none)")
    p.add_argument("--disk-mb", type=int, default=64, help="size of the tmpfs")
    p.add_argument("--fill-every", type=float, default=300,
                   help="seconds between full-disk phases, +-25%% (0: none)")
    p.add_argument("--fill-hold", type=float, default=30,
                   help="seconds the disk is held full, +-33%%")
    p.add_argument("--first-fill", type=float, default=8,
                   help="seconds before the first fill (default 8: while the new database's "
                        "write-ahead log still grows, so SQLite itself meets the full disk)")
    p.add_argument("--kill-while-full", action="store_true",
                   help="let kills land while the disk is held full (the server then starts "
                        "on a full disk)")
    p.add_argument("--no-disk-fill", action="store_true",
                   help="no tmpfs, no full-disk phase (a plain temporary folder)")
    p.add_argument("--drain-timeout", type=float, default=120,
                   help="seconds the final restart's queue may take to empty")
    p.add_argument("--rss-interval", type=float, default=2, help="seconds between RSS samples")
    p.add_argument("--max-inflight", type=int, default=6,
                   help="unfinished jobs per session before it stops submitting")
    p.add_argument("--live-cap", type=int, default=30,
                   help="jobs a session keeps before deleting its oldest finished ones")
    p.add_argument("--key-ratio", type=float, default=0.5,
                   help="share of submissions with an Idempotency-Key")
    p.add_argument("--think-max", type=float, default=0.2,
                   help="most seconds a session waits between calls")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="threads per worker")
    p.add_argument("--http-threads", type=int, default=16)
    p.add_argument("--serve-arg", action="append", default=[],
                   help="extra argument for kiln serve (repeat)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    p.add_argument("--ci", action="store_true",
                   help="short preset for CI: " + ", ".join(f"--{k.replace('_', '-')} {v}"
                                                            for k, v in CI_PRESET.items()))
    p.add_argument("--keep", action="store_true", help="keep logs even when the run passes")
    p.add_argument("--out", help="JSON path, the markdown next to it with .md "
                                 "(default bench/results/<UTC date>-soak.json; '-': none)")
    if "--ci" in sys.argv[1:]:
        p.set_defaults(**CI_PRESET)  # defaults only: flags given with --ci still win
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().getrandbits(32)
    if a.sessions < 1 or a.duration <= 0:
        p.error("--sessions and --duration must be positive")
    if not os.access(a.kiln, os.X_OK):
        p.error(f"no kiln binary at {a.kiln}; build it or pass --kiln")

    runner = Runner(a)

    def interrupt(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    result = None
    try:
        runner.prepare()
        runner.run()
        result = runner.report()
    except Interrupted as e:
        print(f"\ninterrupted ({e}); server stopped, tmpfs unmounted", file=sys.stderr)
        runner.cleanup(failed=True)
        sys.exit(130)
    except RuntimeError as e:
        print(f"\n{e}", file=sys.stderr)
        runner.cleanup(failed=True)
        sys.exit(2)
    except BaseException:
        runner.cleanup(failed=True)
        raise
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    runner.cleanup(failed=not result["ok"])
    print_table(result)
    if a.out != "-":
        out = a.out or os.path.join(REPO, "bench", "results",
                                    f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}"
                                    "-soak.json")
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
        md = re.sub(r"\.json$", "", out) + ".md"
        write_markdown(result, md)
        print(f"wrote {out} and {md}")
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
