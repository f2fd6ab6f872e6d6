"""The soak runner's `kiln serve`: start, SIGKILL and restart on the same data folder and
port, notice an exit that was not ours (a crash), sample its RSS per incarnation."""

import os
import re
import signal
import subprocess
import threading
import time

from soak_http import Client, NoAnswer

READY_TIMEOUT_S = 60
LISTENING = re.compile(r"kiln serve on http://([0-9.]+):(\d+)")


def log_tail(path, lines=40):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError as e:
        return f"(log unreadable: {e})"


def read_rss_kib(pid):
    """(VmRSS, VmHWM) in KiB, or None once the process is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(value.split()[0])
    except (OSError, ValueError):
        return None
    if "VmRSS" not in values:
        return None  # a zombie has no memory lines
    return values["VmRSS"], values.get("VmHWM", 0)


class Incarnation:
    """One run of the server process, from start to its exit."""

    def __init__(self, index, process, log_path, started):
        self.index, self.process, self.log_path = index, process, log_path
        self.started = started
        self.ready = None
        self.ended = None
        self.end_cause = None  # "sigkill" (ours), "sigterm" (ours, the final stop), "crash"
        self.exit_status = None
        self.samples = []  # (monotonic time, VmRSS KiB)
        self.peak_hwm_kib = 0

    def report(self, t0):
        rss = [kib for _, kib in self.samples]
        mib = lambda kib: round(kib / 1024, 1)  # noqa: E731
        return {
            "index": self.index,
            "pid": self.process.pid,
            "started_s": round(self.started - t0, 2),
            "ready_after_s": None if self.ready is None else round(self.ready - self.started, 2),
            "ended_s": None if self.ended is None else round(self.ended - t0, 2),
            "end_cause": self.end_cause,
            "exit_status": self.exit_status,
            "rss_samples": len(rss),
            "rss_first_mib": mib(rss[0]) if rss else None,
            "rss_last_mib": mib(rss[-1]) if rss else None,
            "rss_max_mib": mib(max(rss)) if rss else None,
            "vm_hwm_mib": mib(self.peak_hwm_kib) if self.peak_hwm_kib else None,
            "log": self.log_path,
        }


class ServerProcess:
    """`kiln serve` under the runner's control. All starts and stops go through `lock`, so
    the killer, the crash handler and the final restart never race one another."""

    def __init__(self, binary, args, log_dir, timeline, rss_interval):
        self.binary, self.args, self.log_dir = binary, args, log_dir
        self.timeline, self.rss_interval = timeline, rss_interval
        self.lock = threading.RLock()
        self.host, self.port = "127.0.0.1", 0
        self.incarnations = []
        self.crashes = []
        self.start_failures = []
        self.health_failures = []
        self.current = None
        self.stopping = False
        self.monitor = None
        self.t0 = time.monotonic()

    def command(self):
        return [self.binary, "serve", "--host", self.host, "--port", str(self.port)] + self.args

    # --- starting and stopping ----------------------------------------------------------------
    def _spawn(self):
        index = len(self.incarnations)
        log_path = os.path.join(self.log_dir, f"serve-{index}.log")
        log = open(log_path, "w")
        try:
            process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
        finally:
            log.close()
        inc = Incarnation(index, process, log_path, time.monotonic())
        self.incarnations.append(inc)
        return inc

    def _wait_listening(self, inc):
        """The port from the start line (first start, --port 0), then 200 on /readyz."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while self.port == 0 and time.monotonic() < deadline and inc.process.poll() is None:
            with open(inc.log_path, errors="replace") as f:
                m = LISTENING.search(f.read())
            if m:
                self.host, self.port = m.group(1), int(m.group(2))
                break
            time.sleep(0.05)
        client = Client(self.host, self.port, timeout=5)
        while time.monotonic() < deadline and inc.process.poll() is None and self.port:
            try:
                if client.request("GET", "/readyz").status == 200:
                    inc.ready = time.monotonic()
                    return True
            except NoAnswer:
                pass
            time.sleep(0.1)
        client.close()
        return False

    def start(self, attempts=10):
        """Starts an incarnation and waits until it is ready; a start that fails (exits or
        never becomes ready) is recorded with its log and tried again."""
        with self.lock:
            for _ in range(attempts):
                inc = self._spawn()
                if self._wait_listening(inc):
                    self.current = inc
                    return inc
                if inc.process.poll() is None:
                    inc.process.kill()
                inc.process.wait()
                inc.ended, inc.end_cause = time.monotonic(), "start_failed"
                inc.exit_status = inc.process.returncode
                self.start_failures.append({
                    "incarnation": inc.index, "at_s": round(inc.ended - self.t0, 2),
                    "exit_status": inc.exit_status,
                    "disk_full": self.timeline.disk_full_now(),
                    "log_tail": log_tail(inc.log_path)})
                time.sleep(1)
            raise RuntimeError(f"kiln serve did not start {attempts} times; see "
                               f"{self.incarnations[-1].log_path}")

    def _end(self, inc, cause, sig):
        inc.end_cause = cause
        if inc.process.poll() is None:
            inc.process.send_signal(sig)
        try:
            inc.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            inc.end_cause = cause + "_timeout_then_sigkill"
            inc.process.kill()
            inc.process.wait()
        inc.ended = time.monotonic()
        inc.exit_status = inc.process.returncode
        self.current = None

    def restart(self):
        """SIGKILL, then a start on the same data folder and port; the restart window runs
        from just before the kill until the new incarnation is ready."""
        with self.lock:
            window = self.timeline.restart_begins()
            try:
                if self.current:
                    self._end(self.current, "sigkill", signal.SIGKILL)
                return self.start()
            finally:
                self.timeline.restart_ends(window)

    def stop(self):
        """SIGTERM (a drain); the exit status says whether it stopped cleanly."""
        with self.lock:
            self.stopping = True
            if self.current:
                inc = self.current
                self._end(inc, "sigterm", signal.SIGTERM)
                return inc.exit_status
        return None

    def kill_now(self):
        """For cleanup after an interruption: no questions, no waiting for a drain."""
        self.stopping = True
        for inc in self.incarnations:
            if inc.process.poll() is None:
                inc.process.kill()
                inc.process.wait()

    # --- watching ----------------------------------------------------------------------------
    def start_monitor(self):
        self.monitor = threading.Thread(target=self._monitor_loop, daemon=True,
                                        name="server-monitor")
        self.monitor.start()

    def _monitor_loop(self):
        next_sample = next_health = 0.0
        health = Client(self.host, self.port, timeout=10)
        while not self.stopping:
            now = time.monotonic()
            with self.lock:
                inc = self.current
                if inc and inc.process.poll() is not None and not self.stopping:
                    # Handled under the lock, so no other start can slip in between.
                    self._on_crash(inc, now)
                    continue
                if inc and now >= next_sample:
                    rss = read_rss_kib(inc.process.pid)
                    if rss:
                        inc.samples.append((now, rss[0]))
                        inc.peak_hwm_kib = max(inc.peak_hwm_kib, rss[1])
                    next_sample = now + self.rss_interval
            if inc and now >= next_health:
                next_health = now + 5
                self._check_health(health)
            time.sleep(0.25)
        health.close()

    def _on_crash(self, inc, now):
        """Records an exit that was not ours with its log, and starts the server again."""
        window = self.timeline.restart_begins()
        inc.ended, inc.end_cause = now, "crash"
        inc.exit_status = status = inc.process.returncode
        self.current = None
        self.crashes.append({
            "incarnation": inc.index, "at_s": round(now - self.t0, 2),
            "exit_status": status,
            "signal": signal.Signals(-status).name if status < 0 else None,
            "disk_full": self.timeline.disk_full_now(),
            "log_tail": log_tail(inc.log_path)})
        try:
            self.start()
        except RuntimeError as e:
            self.start_failures.append({"incarnation": None, "error": str(e)})
        finally:
            self.timeline.restart_ends(window)

    def _check_health(self, client):
        """GET /healthz; a failure while no restart is under way means a hung or deaf server."""
        try:
            answer = client.request("GET", "/healthz")
            if answer.status == 200:
                return
            problem, t_start, t_end = f"status {answer.status}", answer.started, answer.ended
        except NoAnswer as e:
            problem, t_start, t_end = str(e), e.started, e.ended
        if self.timeline.phase(t_start, t_end) != "restart" and not self.stopping:
            self.health_failures.append({"at_s": round(t_end - self.t0, 2), "problem": problem,
                                         "disk_full": self.timeline.disk_full_now()})
