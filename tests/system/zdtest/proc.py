"""Process and port helpers shared by every fixture."""

import os
import signal
import socket
import subprocess
import time


def free_port():
    """A port free for both TCP and UDP on 127.0.0.1 right now.

    The kernel picks it (bind to port 0), so parallel runs do not collide; a
    fixture that still loses the race restarts on "address in use"."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            u.close()
            t.close()
        return port
    raise RuntimeError("no free port found")


def wait_until(cond, deadline, what, interval=0.05):
    """Poll cond() until it returns a true value or deadline seconds pass.

    On timeout raise with the last value or exception seen, so a failing test
    says where it stopped."""
    end = time.monotonic() + deadline
    last = None
    while True:
        try:
            v = cond()
            if v:
                return v
            last = v
        except Exception as e:  # noqa: BLE001 - report whatever was last seen
            last = e
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {deadline}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def log_tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read().decode(errors="replace").splitlines()
    except OSError as e:
        return f"(no log {path}: {e})"
    return "\n".join(data[-lines:])


SANITIZER_MARKS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


def sanitizer_findings(path):
    """Lines of a log that report a sanitizer finding."""
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return [l for l in text.splitlines() if any(m in l for m in SANITIZER_MARKS)]


class Daemon:
    """A foreground child process with its output in a log file.

    stop() sends SIGTERM, waits, then SIGKILLs; it is safe to call twice."""

    def __init__(self, name, argv, log_path, env=None, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.proc = None

    def start(self):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env, cwd=self.cwd,
                                     start_new_session=True)
        logf.close()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout=10):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    def tail(self, lines=40):
        return f"--- {self.name} log {self.log_path} ---\n{log_tail(self.log_path, lines)}"


class Started:
    """A spawn function for scripts (the demo, benchmarks): start a server,
    remember it, stop everything started, newest first, at the end."""

    def __init__(self):
        self.started = []

    def __call__(self, server, **kw):
        self.started.append(server)
        return server.start(**kw)

    def stop(self):
        for s in reversed(self.started):
            s.stop()
