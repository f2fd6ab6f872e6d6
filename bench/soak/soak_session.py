"""One soak client session: a thread doing a random mix of the API's job calls against a
server that is killed and restarted under it, keeping the books the final check needs."""

import base64
import hashlib
import json
import random
import threading
import time

import soak_png
from soak_http import Client, NoAnswer, error_code

FINAL = ("succeeded", "failed", "cancelled")
ACTIONS = {  # relative weights of the random mix
    "submit_json": 22, "submit_multipart": 14, "replay": 8, "poll": 18, "list": 8,
    "download": 14, "cancel": 6, "retry": 5, "delete": 5,
}
PRIORITIES = (None, "high", "normal", "low")
TILES = (None, 0, 16)  # whole image, or 4 tiles of a 32x32 input (progress, cancel mid-run)


class Submission:
    """One POST /v1/jobs request, kept byte for byte so it can be sent again."""

    def __init__(self, tag, key, encoding, png, body, content_type):
        self.tag, self.key, self.encoding, self.png = tag, key, encoding, png
        self.body, self.content_type = body, content_type
        self.job_id = None
        self.outcome = "unsent"  # accepted | refused | unknown (answer lost, no key) | pending
        self.lost_answers = 0
        self.refusal = None


class JobRecord:
    """What the client knows of a job the server accepted."""

    def __init__(self, job_id, origin, submission, accepted_phase, retry_of=None):
        self.id, self.origin, self.submission = job_id, origin, submission
        self.accepted_phase, self.retry_of = accepted_phase, retry_of
        self.status = None
        self.job = None
        self.final_status = None
        self.error_code = None
        self.deleted = None  # None | "confirmed" | "pending" (a DELETE whose answer was lost)
        self.etag = None  # the output's ETag once downloaded
        self.output_sha = None
        self.output_tried = False

    def live(self):
        return self.deleted is None


class Session(threading.Thread):
    def __init__(self, index, runner, crops, seed):
        super().__init__(daemon=True, name=f"session-{index}")
        self.index, self.runner, self.crops = index, runner, crops
        self.rng = random.Random(seed)
        self.client = Client(runner.server.host, runner.server.port)
        self.token = None
        self.records = {}  # job id -> JobRecord
        self.submissions = {}  # tag -> Submission
        self.counter = 0
        self.unknown_retries = []  # ids whose POST .../retry answer was lost
        self.replays_checked = 0
        self.error = None
        self.last_answer = None  # the last call's answer, also when it was not expected
        self.last_lost = False  # whether the last call got no answer at all

    # --- HTTP --------------------------------------------------------------------------------
    def auth(self, extra=None):
        headers = {"Authorization": f"Bearer {self.token}"}
        headers.update(extra or {})
        return headers

    def call(self, action, method, path, body=None, headers=None, expected=(200,)):
        """The Answer when its status is in `expected`, else None: an error answer (booked,
        and kept in `self.last_answer`) or no answer (`self.last_lost`). Every error answer
        must carry the documented JSON body, expected or not."""
        r = self.runner
        self.last_lost, self.last_answer = False, None
        try:
            answer = self.client.request(method, path, body,
                                         self.auth(headers) if self.token else headers)
        except NoAnswer as e:
            self.last_lost = True
            r.errors.no_answer(action, method, path, e)
            return None
        self.last_answer = answer
        r.count_request(action, answer.status)
        if answer.status >= 400 and answer.status in expected and error_code(answer.body) is None:
            r.errors.http_error(action, method, path, answer)  # books the missing JSON body
        if answer.status in expected:
            return answer
        r.errors.http_error(action, method, path, answer)
        if answer.status == 401:
            r.finding("token_rejected", {"session": self.index, "request": f"{method} {path}"})
        return None

    # --- the loop ----------------------------------------------------------------------------
    def run(self):
        try:
            self.create()
            while not self.runner.stop_load.is_set():
                self.step()
                time.sleep(self.rng.uniform(0.0, self.runner.args.think_max))
        except Exception as e:  # noqa: BLE001 - a runner bug must be visible, not a hang
            self.error = f"{type(e).__name__}: {e}"
            self.runner.finding("runner_exception", {"session": self.index, "error": self.error})

    def create(self):
        while not self.runner.stop_load.is_set():
            got = self.call("session_create", "POST", "/v1/sessions", b"", expected=(201,))
            if got:
                self.token = got.json()["token"]
                return
            time.sleep(0.5)

    def step(self):
        if self.token is None:
            return
        pending = [s for s in self.submissions.values() if s.outcome == "pending"]
        if pending:
            return self.send(pending[0])
        deleting = [j for j in self.records.values() if j.deleted == "pending"]
        if deleting:
            return self.delete(deleting[0])
        live = [j for j in self.records.values() if j.live()]
        if len(live) > self.runner.args.live_cap:
            # Keep the disk use bounded: the oldest jobs that finished go first.
            done = [j for j in live if j.status in FINAL]
            if done:
                oldest = done[0]
                if oldest.status == "succeeded" and not oldest.output_tried:
                    return self.check_output(oldest)  # every output is checked once at least
                return self.delete(oldest)
        action = self.rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        unfinished = [j for j in live if j.status not in FINAL]
        if action.startswith("submit") and len(unfinished) >= self.runner.args.max_inflight:
            action = "poll"
        getattr(self, "do_" + action)(live, unfinished)

    # --- submissions -------------------------------------------------------------------------
    def new_submission(self, encoding):
        self.counter += 1
        tag = f"{self.runner.run_id}-s{self.index}-n{self.counter}"
        png = soak_png.add_tag(self.rng.choice(self.crops), tag)
        key = f"soak-{tag}" if self.rng.random() < self.runner.args.key_ratio else None
        request = {"model": self.runner.model}
        priority, tile = self.rng.choice(PRIORITIES), self.rng.choice(TILES)
        if priority:
            request["priority"] = priority
        if tile is not None:
            request["params"] = {"tile": tile}
        if encoding == "json":
            body = json.dumps(dict(request, input={"image": base64.b64encode(png).decode()}))
            body, ctype = body.encode(), "application/json"
        else:
            boundary = f"soak{self.rng.getrandbits(64):016x}"
            body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"request\"\r\n"
                    f"Content-Type: application/json\r\n\r\n{json.dumps(request)}\r\n"
                    f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; "
                    f"filename=\"{tag}.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
            body += png + f"\r\n--{boundary}--\r\n".encode()
            ctype = f"multipart/form-data; boundary={boundary}"
        sub = Submission(tag, key, encoding, png, body, ctype)
        self.submissions[tag] = sub
        return sub

    def do_submit_json(self, live, unfinished):
        self.send(self.new_submission("json"))

    def do_submit_multipart(self, live, unfinished):
        self.send(self.new_submission("multipart"))

    def send(self, sub):
        """Sends (or, for a keyed submission whose answer was lost, sends again) `sub`."""
        headers = {"Content-Type": sub.content_type}
        if sub.key:
            headers["Idempotency-Key"] = sub.key
        got = self.call("submit", "POST", "/v1/jobs", sub.body, headers, expected=(200, 202))
        if got is None:
            if self.last_lost:
                sub.lost_answers += 1
                # With a key the same request is sent again until it is answered; without
                # one, whether the server took it shows only in the final listing.
                sub.outcome = "pending" if sub.key else "unknown"
                if sub.key:
                    time.sleep(0.2)
            else:
                answer = self.last_answer
                sub.outcome = "refused"
                sub.refusal = f"http_{answer.status}:{error_code(answer.body)}"
            return
        job = got.json()
        if got.status == 200:
            # Only a key whose earlier answer was lost may find an earlier job.
            if not sub.key:
                self.runner.idempotency_violation("200_without_key", self.index, sub, job)
            elif sub.lost_answers == 0:
                self.runner.idempotency_violation("200_for_unused_key", self.index, sub, job)
        sub.job_id, sub.outcome = job["id"], "accepted"
        self.accept(job["id"], sub.encoding, sub, got)
        self.observe(job)

    def accept(self, job_id, origin, sub, answer, retry_of=None):
        phase = self.runner.timeline.phase(answer.started, answer.ended)
        record = JobRecord(job_id, origin, sub, phase, retry_of)
        self.records[job_id] = record
        self.runner.own(job_id, self.index)
        return record

    def do_replay(self, live, unfinished):
        keyed = [j.submission for j in live if j.submission and j.submission.key
                 and j.origin != "retry" and j.submission.job_id == j.id]
        if not keyed:
            return self.do_submit_json(live, unfinished)
        sub = self.rng.choice(keyed)
        headers = {"Content-Type": sub.content_type, "Idempotency-Key": sub.key}
        got = self.call("replay", "POST", "/v1/jobs", sub.body, headers, expected=(200, 202))
        if got is None:
            if not self.last_lost and error_code(self.last_answer.body) == "idempotency_key_reused":
                self.runner.idempotency_violation("identical_replay_refused", self.index, sub,
                                                  None)
            return
        self.replays_checked += 1
        job = got.json()
        if job["id"] != sub.job_id:
            self.runner.idempotency_violation("two_ids_for_one_key", self.index, sub, job)
            self.accept(job["id"], sub.encoding, sub, got)
        elif got.status != 200:
            self.runner.idempotency_violation("replay_answered_202", self.index, sub, job)
        else:
            self.observe(job)

    def do_retry(self, live, unfinished):
        done = [j for j in live if j.status in ("failed", "cancelled")]
        if not done:
            return self.do_poll(live, unfinished)
        old = self.rng.choice(done)
        got = self.call("retry", "POST", f"/v1/jobs/{old.id}/retry", None, None,
                        expected=(202, 409))
        if got is None:
            if self.last_lost:
                self.unknown_retries.append(old.id)
            else:
                self.missing_if_404(old, "retry")
            return
        job = got.json()
        if got.status == 202:
            if job.get("retry_of") != old.id:
                self.runner.finding("retry_of_wrong", {"old": old.id, "answer": job})
            self.accept(job["id"], "retry", old.submission, got, retry_of=old.id)
            self.observe(job)

    # --- reading -----------------------------------------------------------------------------
    def observe(self, job):
        record = self.records.get(job.get("id"))
        if record is None:
            return
        if record.deleted == "confirmed":
            self.runner.finding("deleted_job_seen_again", {"job": job})
            return
        status = job.get("status")
        if record.final_status and status != record.final_status:
            self.runner.finding("final_state_changed", {
                "job": record.id, "was": record.final_status, "now": job})
        record.status, record.job = status, job
        if status in FINAL and record.final_status is None:
            record.final_status = status
            err = job.get("error")
            record.error_code = err.get("code") if isinstance(err, dict) else None
        if status == "succeeded":
            outputs = job.get("outputs") or []
            want = (32 * self.runner.scale, 32 * self.runner.scale)
            if len(outputs) != 1 or (outputs[0].get("width"), outputs[0].get("height")) != want:
                self.runner.finding("succeeded_job_outputs_wrong", {"job": job})

    def missing_if_404(self, record, action):
        """A 404 for a job the client has not deleted is a job the server lost."""
        answer = self.last_answer
        if answer is not None and answer.status == 404 and record.deleted is None:
            self.runner.finding("job_missing_during_run", {
                "job": record.id, "action": action, "last_status": record.status,
                "phase": self.runner.timeline.phase(answer.started, answer.ended)})

    def do_poll(self, live, unfinished):
        pool = unfinished if unfinished and self.rng.random() < 0.7 else live
        if not pool:
            return
        record = self.rng.choice(pool)
        got = self.call("poll", "GET", f"/v1/jobs/{record.id}")
        if got:
            self.observe(got.json())
        elif not self.last_lost:
            self.missing_if_404(record, "poll")

    def do_list(self, live, unfinished):
        status = self.rng.choice((None, None, "queued", "running", "succeeded", "failed",
                                  "cancelled"))
        query = f"limit={self.rng.randint(5, 50)}" + (f"&status={status}" if status else "")
        got = self.call("list", "GET", f"/v1/jobs?{query}")
        if not got:
            return
        for job in got.json().get("jobs", []):
            owner = self.runner.owner_of(job["id"])
            if owner is not None and owner != self.index:
                self.runner.finding("foreign_job_in_listing", {"session": self.index,
                                                               "job": job["id"]})
            if status and job.get("status") != status:
                self.runner.finding("listing_filter_mismatch", {"filter": status, "job": job})
            self.observe(job)

    def do_download(self, live, unfinished):
        done = [j for j in live if j.status == "succeeded" and j.job.get("outputs")]
        if not done:
            return self.do_poll(live, unfinished)
        record = self.rng.choice(done)
        if record.etag and self.rng.random() < 0.15:
            return self.check_thumbnail(record)
        self.check_output(record, conditional=record.etag is not None and self.rng.random() < 0.3)

    def check_output(self, record, conditional=False):
        record.output_tried = True
        outputs = (record.job or {}).get("outputs")
        if not outputs:
            return  # observe() has booked the succeeded job without its output
        url = outputs[0]["url"]
        headers = {"If-None-Match": record.etag} if conditional else None
        got = self.call("download", "GET", url, None, headers, expected=(200, 304))
        if got is None:
            if not self.last_lost:
                answer = self.last_answer
                if answer is not None and answer.status == 404 and record.live():
                    self.runner.finding("output_missing", {"job": record.id, "url": url})
            return
        etag = got.headers.get("etag")
        if got.status == 304:
            self.runner.count_output(not_modified=True)
            if not conditional:
                self.runner.finding("unasked_304", {"job": record.id})
            elif etag != record.etag:
                self.runner.finding("etag_changed", {"job": record.id, "was": record.etag,
                                                     "now": etag})
            return
        self.runner.count_output()
        problem = None
        sha = hashlib.sha256(got.body).hexdigest()
        try:
            size = soak_png.check_png(got.body)
            want = (32 * self.runner.scale, 32 * self.runner.scale)
            if size != want:
                problem = f"{size[0]}x{size[1]}, expected {want[0]}x{want[1]}"
        except ValueError as e:
            problem = str(e)
        if problem is None and etag != f'"{sha[:32]}"':
            problem = f"ETag {etag} is not the first 32 hex digits of the bytes' sha256 {sha}"
        if problem:
            self.runner.partial_output({
                "job": record.id, "url": url, "bytes": len(got.body), "problem": problem,
                "etag": etag, "phase": self.runner.timeline.phase(got.started, got.ended),
                "head_hex": got.body[:64].hex()})
            return
        if record.etag and etag != record.etag:
            self.runner.finding("etag_changed", {"job": record.id, "was": record.etag,
                                                 "now": etag})
        record.etag, record.output_sha = etag, sha

    def check_thumbnail(self, record):
        url = record.job["outputs"][0]["url"] + "/thumbnail"
        got = self.call("thumbnail", "GET", url)
        if got is None:
            return
        self.runner.count_output(thumbnail=True)
        want_etag = f'"t-{record.output_sha[:32]}"'
        problem = None
        try:
            w, h = soak_png.check_png(got.body)
            side = 32 * self.runner.scale
            if w > side or h > side or max(w, h) > 256:
                problem = f"thumbnail {w}x{h} for a {side}x{side} output"
        except ValueError as e:
            problem = str(e)
        if problem is None and got.headers.get("etag") != want_etag:
            problem = f"thumbnail ETag {got.headers.get('etag')}, expected {want_etag}"
        if problem:
            self.runner.partial_output({
                "job": record.id, "url": url, "bytes": len(got.body), "problem": problem,
                "phase": self.runner.timeline.phase(got.started, got.ended)})

    # --- changing ----------------------------------------------------------------------------
    def do_cancel(self, live, unfinished):
        if not unfinished:
            return self.do_poll(live, unfinished)
        record = self.rng.choice(unfinished)
        got = self.call("cancel", "POST", f"/v1/jobs/{record.id}/cancel", None, None,
                        expected=(200, 202, 409))
        if got is None:
            if not self.last_lost:
                self.missing_if_404(record, "cancel")
            return
        if got.status == 200:
            job = got.json()
            if job.get("status") != "cancelled":
                self.runner.finding("cancel_200_not_cancelled", {"job": job})
            self.observe(job)
        elif got.status == 202:
            self.observe(got.json())

    def do_delete(self, live, unfinished):
        if live:
            self.delete(self.rng.choice(live))

    def delete(self, record):
        was_pending = record.deleted == "pending"
        got = self.call("delete", "DELETE", f"/v1/jobs/{record.id}", None, None,
                        expected=(204, 404))
        if got is None:
            if self.last_lost:
                record.deleted = "pending"
                time.sleep(0.2)
            return
        if got.status == 404 and not was_pending:
            self.runner.finding("job_missing_during_run", {
                "job": record.id, "action": "delete", "last_status": record.status,
                "phase": self.runner.timeline.phase(got.started, got.ended)})
            return
        # 204, or 404 after a DELETE whose answer was lost: the first one went through.
        record.deleted = "confirmed"

    def settle(self, deadline):
        """After the load: sends again every keyed submission and DELETE whose answer was
        lost, until answered or `deadline`."""
        while time.monotonic() < deadline:
            pending = [s for s in self.submissions.values() if s.outcome == "pending"]
            deleting = [j for j in self.records.values() if j.deleted == "pending"]
            if not pending and not deleting:
                return True
            for sub in pending:
                self.send(sub)
            for record in deleting:
                self.delete(record)
        return False
