"""What the benchmark's modules share: errors, progress lines, processes and HTTP probes."""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

# The checkout the benchmark belongs to.
ROOT = Path(__file__).resolve().parents[2]


class BenchError(Exception):
    """A step that could not be measured; the run stops and says which."""


# --- processes and HTTP -------------------------------------------------------------------------


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def note(text: str) -> None:
    print(f"   {text}", flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs `cmd`, raising BenchError with its output's tail when it fails."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.STDOUT)
    kwargs.setdefault("text", True)
    done = subprocess.run(cmd, check=False, **kwargs)
    if done.returncode != 0:
        tail = "\n".join((done.stdout or "").splitlines()[-40:])
        raise BenchError(f"{' '.join(cmd[:4])} ... exited {done.returncode}:\n{tail}")
    return done


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_of(port: int, path: str) -> int | None:
    """The status of one GET on a fresh connection, or None if nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            head = s.recv(16)
    except OSError:
        return None
    match = re.match(rb"HTTP/1\.1 (\d{3})", head)
    return int(match.group(1)) if match else None


def wait_for(predicate, timeout: float, poll: float = 0.0005) -> float:
    """Seconds until `predicate()` holds, polling; BenchError after `timeout`."""
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise BenchError(f"gave up after {timeout:.0f} s waiting for {predicate.__doc__}")
        time.sleep(poll)
    return time.perf_counter() - started


def request(port: int, method: str, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def proc_status(pid: int, field: str) -> int:
    """A /proc/PID/status field in kB (VmRSS, VmHWM)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise BenchError(f"/proc/{pid}/status has no {field}")


class Process:
    """A long-running process of the benchmark, stopped with SIGTERM."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._out = open(log, "wb")
        self.popen = subprocess.Popen(argv, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def announced_address(self, timeout: float = 10) -> str:
        """The `listening on ADDR` line a helper server prints."""

        def announced() -> bool:
            """a `listening on` line"""
            return "listening on" in self.log.read_text(errors="replace") or self.popen.poll() is not None

        wait_for(announced, timeout, poll=0.01)
        match = re.search(r"listening on (\S+)", self.log.read_text(errors="replace"))
        if not match:
            raise BenchError(f"{self.popen.args[0]} exited: {self.log.read_text(errors='replace')[-2000:]}")
        return match.group(1)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._out.close()
        return self.popen.returncode


class RssSampler:
    """Samples a process's VmRSS every 50 ms in a thread; `peak_kb` is the highest seen."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, proc_status(self.pid, "VmRSS"))
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
