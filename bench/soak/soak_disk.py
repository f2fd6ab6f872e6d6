"""The soak runner's small disk: a tmpfs the server's data folder lives on, and a filler
that fills it to the last byte with a ballast file, holds it full, then frees it."""

import errno
import os
import subprocess
import threading
import time

CHUNK = 1 << 20


def mount_tmpfs(path, size_mb):
    """None when mounted, else why not (not root, no mount(8), ...)."""
    if os.geteuid() != 0:
        return "not root: cannot mount a tmpfs"
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700",
                               "tmpfs", path], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as e:
        return f"mount failed: {e}"
    if done.returncode != 0:
        return f"mount failed: {done.stderr.strip() or done.returncode}"
    return None


def unmount(path):
    """Unmounts; a lazy unmount when something still holds it. Returns an error or None."""
    for cmd in (["umount", path], ["umount", "-l", path]):
        try:
            if subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0:
                return None
        except (OSError, subprocess.SubprocessError):
            pass
    return f"could not unmount {path}"


def fill(path, limit=None):
    """Appends zeros to `path` until the disk says ENOSPC (1 MiB writes, then single pages,
    then single bytes, so the disk is full to the last block). Returns the bytes written."""
    written = 0
    with open(path, "ab", buffering=0) as f:
        for size in (CHUNK, 4096, 1):
            block = bytes(size)
            while limit is None or written < limit:
                try:
                    n = f.write(block)
                except OSError as e:
                    if e.errno in (errno.ENOSPC, errno.EDQUOT):
                        break
                    raise
                written += n or 0
    return written


TOP_UP_S = 0.2


class DiskFiller(threading.Thread):
    """Every `every` seconds (randomized +-25%), fills the tmpfs with a ballast file outside
    the server's data folder, keeps it full for `hold` seconds (+-33%) by topping the ballast
    up every TOP_UP_S (the server frees space when clients delete jobs), then deletes it."""

    def __init__(self, mount_dir, timeline, every, hold, first_after, rng, stop_event):
        super().__init__(daemon=True, name="disk-filler")
        self.ballast = os.path.join(mount_dir, "ballast")
        self.timeline, self.every, self.hold = timeline, every, hold
        self.first_after, self.rng, self.stop_event = first_after, rng, stop_event
        self.fills = []
        self.error = None
        self.holding = threading.Lock()  # held while full; the killer waits on it

    def run(self):
        wait = self.first_after
        try:
            while not self.stop_event.wait(wait):
                self.fill_once()
                wait = self.every * self.rng.uniform(0.75, 1.25)
        except OSError as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.free()

    def fill_once(self):
        hold = self.hold * self.rng.uniform(0.67, 1.33)
        with self.holding:
            window = self.timeline.fill_begins()
            started = time.monotonic()
            record = {"started": started, "hold_s": round(hold, 1), "ballast_bytes": 0,
                      "top_ups": 0}
            try:
                record["ballast_bytes"] = fill(self.ballast)
                while not self.stop_event.wait(TOP_UP_S) and time.monotonic() - started < hold:
                    more = fill(self.ballast)
                    if more:
                        record["top_ups"] += 1
                        record["ballast_bytes"] += more
            finally:
                self.free()
                self.timeline.fill_ends(window)
                record["held_s"] = round(time.monotonic() - started, 1)
                self.fills.append(record)
        return record

    def free(self):
        try:
            os.unlink(self.ballast)
        except FileNotFoundError:
            pass
