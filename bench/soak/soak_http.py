"""HTTP plumbing for the soak runner: a client that never resends a request the server may
have acted on, the timeline of restarts and full-disk phases, and the error book."""

import collections
import http.client
import json
import socket
import threading
import time


class NoAnswer(Exception):
    """A request that got no HTTP answer; `kind` names why."""

    def __init__(self, kind, detail):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class Answer:
    def __init__(self, status, headers, body, started, ended):
        self.status, self.headers, self.body = status, headers, body
        self.started, self.ended = started, ended

    def json(self):
        return json.loads(self.body)


class Client:
    """HTTP/1.1 to one host and port. GETs reuse a keep-alive connection and are sent again
    once on a fresh one when the reused connection turns out closed (the server's idle
    timeout, or a restart); every other method goes on a fresh connection and is never sent
    twice, so a lost answer can only mean "the server may or may not have done it"."""

    def __init__(self, host, port, timeout=30.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.conn = None
        self.used = 0

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None

    def _connect(self):
        self.close()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            conn.connect()
        except socket.timeout as e:
            raise NoAnswer("connect_timeout", e)
        except OSError as e:
            raise NoAnswer("connect_" + type(e).__name__, e)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn, self.used = conn, 0

    def request(self, method, path, body=None, headers=None):
        """An Answer; raises NoAnswer (with the time span in .started/.ended)."""
        headers = dict(headers or {})
        if method != "GET":
            self.close()
            if body is None:
                headers.setdefault("Content-Length", "0")
        started = time.monotonic()
        attempts = 2 if method == "GET" else 1
        for attempt in range(attempts):
            if self.conn is None:
                try:
                    self._connect()
                except NoAnswer as e:
                    e.started, e.ended = started, time.monotonic()
                    raise
            reused = self.used > 0
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                self.used += 1
                answer = Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data,
                                started, time.monotonic())
                if method != "GET" or resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return answer
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if reused and attempt + 1 < attempts:
                    continue
                error = NoAnswer(type(e).__name__, e)
            except socket.timeout as e:
                self.close()
                error = NoAnswer("read_timeout", e)
            except (OSError, http.client.HTTPException) as e:
                self.close()
                error = NoAnswer(type(e).__name__, e)
            error.started, error.ended = started, time.monotonic()
            raise error
        raise AssertionError("unreachable")


def error_code(body):
    """The API's error code from an error body, or None when the body is not the documented
    {"error": {"code": ..., "message": ...}}."""
    try:
        err = json.loads(body)["error"]
        if isinstance(err.get("code"), str) and err["code"] and isinstance(err.get("message"), str):
            return err["code"]
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


class Timeline:
    """When the server was being restarted and when its disk was full, on the monotonic
    clock. A request whose span touches a restart window is in phase "restart" (connection
    errors expected), else one touching a full-disk window is "disk_full", else "normal"."""

    RESTART_GRACE_S = 1.0  # clients' connections opened just before readiness
    FULL_GRACE_S = 2.0  # writes started while full that finish just after the ballast went

    def __init__(self):
        self.lock = threading.Lock()
        self.restarts = []  # [start, end or None]
        self.fills = []

    def _open(self, windows):
        with self.lock:
            windows.append([time.monotonic(), None])
            return len(windows) - 1

    def _close(self, windows, index):
        with self.lock:
            windows[index][1] = time.monotonic()

    def restart_begins(self):
        return self._open(self.restarts)

    def restart_ends(self, index):
        self._close(self.restarts, index)

    def fill_begins(self):
        return self._open(self.fills)

    def fill_ends(self, index):
        self._close(self.fills, index)

    @staticmethod
    def _touches(windows, started, ended, grace):
        for begin, end in windows:
            if begin <= ended and (end is None or started <= end + grace):
                return True
        return False

    def phase(self, started, ended):
        with self.lock:
            if self._touches(self.restarts, started, ended, self.RESTART_GRACE_S):
                return "restart"
            if self._touches(self.fills, started, ended, self.FULL_GRACE_S):
                return "disk_full"
        return "normal"

    def disk_full_now(self):
        with self.lock:
            return bool(self.fills) and self.fills[-1][1] is None


class ErrorBook:
    """Every answer that was not a success, by phase and kind ("http_507:storage_full",
    "conn:ConnectionRefusedError"), by action, and examples of the ones that are findings:
    error bodies that are not the documented JSON, 500s, connection errors outside restarts."""

    EXAMPLES_KEPT = 5
    # Error codes the API documents with a Retry-After header.
    RETRY_AFTER_CODES = ("queue_full", "session_queue_full", "draining", "storage_full")

    def __init__(self, timeline):
        self.timeline = timeline
        self.lock = threading.Lock()
        self.by_phase = collections.defaultdict(collections.Counter)
        self.by_action = collections.defaultdict(collections.Counter)
        self.findings = collections.defaultdict(list)
        self.finding_counts = collections.Counter()

    def finding(self, kind, example):
        with self.lock:
            self.finding_counts[kind] += 1
            if len(self.findings[kind]) < self.EXAMPLES_KEPT:
                self.findings[kind].append(example)

    def http_error(self, action, method, path, answer):
        code = error_code(answer.body)
        kind = f"http_{answer.status}:{code or 'non_json_body'}"
        phase = self.timeline.phase(answer.started, answer.ended)
        with self.lock:
            self.by_phase[phase][kind] += 1
            self.by_action[action][kind] += 1
        example = {"action": action, "request": f"{method} {path}", "status": answer.status,
                   "phase": phase, "body": answer.body[:300].decode("utf-8", "replace"),
                   "content_type": answer.headers.get("content-type")}
        if code is None:
            self.finding("error_without_json_body", example)
        if answer.status == 500:
            self.finding("http_500", example)
        if code in self.RETRY_AFTER_CODES and "retry-after" not in answer.headers:
            self.finding("retry_after_missing", example)
        return kind

    def no_answer(self, action, method, path, error):
        phase = self.timeline.phase(error.started, error.ended)
        kind = f"conn:{error.kind}"
        with self.lock:
            self.by_phase[phase][kind] += 1
            self.by_action[action][kind] += 1
        if phase != "restart":
            self.finding("connection_error_outside_restart" if error.kind != "read_timeout"
                         else "read_timeout_outside_restart",
                         {"action": action, "request": f"{method} {path}", "phase": phase,
                          "error": str(error),
                          "seconds": round(error.ended - error.started, 3)})
        return phase

    def summary(self):
        with self.lock:
            return {
                "by_phase": {p: dict(sorted(c.items())) for p, c in sorted(self.by_phase.items())},
                "by_action": {a: dict(sorted(c.items()))
                              for a, c in sorted(self.by_action.items())},
                "findings": {k: {"count": self.finding_counts[k], "examples": v}
                             for k, v in sorted(self.findings.items())},
            }
