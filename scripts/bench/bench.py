#!/usr/bin/env python3
"""SigmaSight's benchmark: one run measures the image, start-up, memory, HTTP throughput against
ceilings measured alongside, the ETL's load rate and the Docker rebuild; prints the figures,
checks them against the targets, and writes DIR/results.json and DIR/report.md.

Run it through scripts/bench.sh, which starts a throwaway PostgreSQL (or takes DATABASE_URL).
The service binary measured is the one inside the image when Docker is used, else a release build
for the same static target. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MUSL = "x86_64-unknown-linux-musl"
LUA = Path(__file__).with_name("wrk-report.lua")
# The prices endpoint's own SQL (src/http/prices.rs includes the same file).
BARS_SQL = ROOT / "src" / "http" / "prices" / "bars.sql"
SECRET_KEY = "benchmark-only-secret-key-of-at-least-32-bytes"
USER_EMAIL = "bench@example.com"
USER_PASSWORD = "benchmark-password-0123"
PRICES_SYMBOL = "S0001"
RUST_BUILDER_LOCAL = "sigmasight/rust-builder:1.95.0"
RUNTIME_LOCAL = "sigmasight/distroless-static:nonroot"


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


def request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
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


# --- builds and the image -----------------------------------------------------------------------


def docker_available() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    ).returncode == 0


def copy_context(dest: Path) -> None:
    """The checkout's files (tracked and untracked, not ignored), as `docker build` sees them."""
    dest.mkdir(parents=True)
    files = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    for name in filter(None, files.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def docker_build(context: Path, tag: str, build_args: list[str], no_cache: bool, log: Path) -> float:
    cmd = ["docker", "build", "--progress=plain", *build_args, "-t", tag, str(context)]
    if no_cache:
        cmd.insert(2, "--no-cache")
    started = time.perf_counter()
    with open(log, "wb") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        raise BenchError(f"docker build failed; see {log}:\n{log.read_text(errors='replace')[-3000:]}")
    return time.perf_counter() - started


def compressed_layers_bytes(tag: str, work: Path) -> int:
    """The image's layers gzip-compressed one by one, as a registry stores them."""
    archive = work / "image.tar"
    with open(archive, "wb") as out:
        subprocess.run(["docker", "save", tag], stdout=out, check=True)
    total = 0
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        for layer in manifest[0]["Layers"]:
            data = tar.extractfile(layer).read()
            total += len(gzip.compress(data, compresslevel=6))
    archive.unlink()
    return total


def image_figures(tag: str, work: Path) -> tuple[dict, Path]:
    """Sizes of the image and its binary, and the binary copied out for the host measurements."""
    size = int(run(["docker", "image", "inspect", "-f", "{{.Size}}", tag]).stdout)
    container = run(["docker", "create", tag]).stdout.strip()
    binary = work / "sigmasight"
    try:
        run(["docker", "cp", f"{container}:/usr/local/bin/sigmasight", str(binary)])
    finally:
        run(["docker", "rm", container])
    return {
        "uncompressed_bytes": size,
        "compressed_layers_bytes": compressed_layers_bytes(tag, work),
        "binary_bytes": binary.stat().st_size,
        "binary_file": run(["file", "-b", str(binary)]).stdout.strip(),
    }, binary


def cargo_build(profile: str, args: list[str]) -> Path:
    """Builds with cargo; the directory the artifacts land in."""
    cmd = ["cargo", "build", "--locked", *args]
    if profile == "release":
        cmd += ["--release", "--target", MUSL]
        out = ROOT / "target" / MUSL / "release"
    else:
        out = ROOT / "target" / "debug"
    started = time.perf_counter()
    run(cmd, cwd=ROOT)
    note(f"cargo build {' '.join(args)} ({profile}): {time.perf_counter() - started:.0f} s")
    return out


# --- the database -------------------------------------------------------------------------------


class Database:
    """A fresh database on the server of `admin_url`, dropped at the end."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.name = f"sigmasight_bench_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{self.name}"', url=admin_url)
        parts = urllib.parse.urlsplit(admin_url)
        self.url = urllib.parse.urlunsplit(parts._replace(path="/" + self.name))
        # pgbench takes libpq's variables rather than a URL for -h/-p/-U.
        self.libpq = {
            "PGHOST": parts.hostname or "127.0.0.1",
            "PGPORT": str(parts.port or 5432),
            "PGUSER": urllib.parse.unquote(parts.username or "postgres"),
            "PGDATABASE": self.name,
        }
        if parts.password:
            self.libpq["PGPASSWORD"] = urllib.parse.unquote(parts.password)

    def psql(self, sql: str, url: str | None = None) -> str:
        return run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", url or self.url, "-c", sql]).stdout

    def drop(self) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)', url=self.admin_url)


# --- measurements -------------------------------------------------------------------------------


def service_env(db: Database, port: int, **extra: str) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABASE_URL": db.url,
        "SECRET_KEY": SECRET_KEY,
        "PORT": str(port),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }
    env.update(extra)
    return env


def measure_startup(service: Path, db: Database, runs: int, work: Path) -> dict:
    """Exec to the first 200 on /health, and to a 200 on /api/v1/health, migrations applied."""
    to_live, to_ready = [], []
    for i in range(runs):
        port = free_port()
        started = time.perf_counter()
        process = Process([str(service), "serve"], service_env(db, port), work / f"startup-{i}.log")

        def live() -> bool:
            """a 200 on /health"""
            return status_of(port, "/health") == 200

        def ready() -> bool:
            """a 200 on /api/v1/health"""
            return status_of(port, "/api/v1/health") == 200

        try:
            wait_for(live, 10)
            to_live.append(time.perf_counter() - started)
            wait_for(ready, 10)
            to_ready.append(time.perf_counter() - started)
        finally:
            process.stop()
    return {
        "runs": runs,
        "exec_to_health_ms": summary_ms(to_live),
        "exec_to_ready_ms": summary_ms(to_ready),
    }


def summary_ms(seconds: list[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"median": round(statistics.median(ms), 1), "min": round(ms[0], 1), "max": round(ms[-1], 1)}


def wrk(url: str, connections: int, seconds: float, token: str | None = None) -> dict:
    """One wrk run; requests/s, latency percentiles in ms, and every kind of error."""
    env = dict(os.environ, BENCH_TOKEN=token or "")
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(LUA), url]
    out = run(cmd, env=env).stdout
    line = next((l for l in out.splitlines() if l.startswith('{"requests"')), None)
    if line is None:
        raise BenchError(f"wrk printed no result line:\n{out}")
    raw = json.loads(line)
    seconds_run = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    return {
        "connections": connections,
        "requests": raw["requests"],
        "rps": round(raw["requests"] / seconds_run),
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "errors": sum(raw["errors"].values()),
        "error_kinds": {k: v for k, v in raw["errors"].items() if v},
    }


def pgbench(db: Database, script: str, clients: int, seconds: float, work: Path, name: str) -> dict:
    """pgbench running `script` (prepared statements), with latency percentiles from its log."""
    logs = work / f"pgbench-{name}-{clients}"
    logs.mkdir()
    script_file = logs / "script.sql"
    script_file.write_text(script)
    cmd = [
        "pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(2, clients)),
        "-T", str(max(1, round(seconds))), "-f", str(script_file),
        "-l", f"--log-prefix={logs}/log",
        "-D", f"symbol={PRICES_SYMBOL}", "-D", "start=1900-01-01", "-D", "end=9999-12-31", "-D", "limit=260",
    ]
    out = run(cmd, env=dict(os.environ, **db.libpq), cwd=logs).stdout
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if not tps:
        raise BenchError(f"pgbench printed no tps:\n{out}")
    latencies = sorted(
        int(line.split()[2])
        for log in logs.glob("log*")
        for line in log.read_text().splitlines()
        if line.strip()
    )
    shutil.rmtree(logs)
    return {
        "clients": clients,
        "tps": round(float(tps.group(1))),
        "p50_ms": round(percentile(latencies, 50) / 1000, 2),
        "p99_ms": round(percentile(latencies, 99) / 1000, 2),
        "errors": int(failed.group(1)) if failed else 0,
    }


def percentile(sorted_values: list[int], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def pgbench_script(sql: str) -> str:
    """The endpoint's SQL with pgbench variables in place of its bind parameters."""
    sql = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    for number, name in ((1, "symbol"), (2, "start"), (3, "end"), (4, "limit")):
        sql = re.sub(rf"\${number}\b", f":{name}", sql)
    return sql.strip().rstrip(";") + ";\n"


def measure_etl(service: Path, double: Path, db: Database, symbols: int, first: str, last: str, work: Path) -> dict:
    """Two backfills of `symbols` symbols from `first` to `last` from the provider double: the
    first inserts every bar, the second (idempotent) finds every one unchanged."""
    db.psql(
        "INSERT INTO symbols (symbol) SELECT 'S' || lpad(g::text, 4, '0') "
        f"FROM generate_series(0, {symbols - 1}) g"
    )
    provider = Process([str(double), "0"], {"PATH": os.environ.get("PATH", "")}, work / "provider.log")
    try:
        address = provider.announced_address()
        env = service_env(
            db,
            free_port(),
            FMP_API_KEY="benchmark-key",
            FMP_BASE_URL=f"http://{address}",
            FMP_REQUESTS_PER_MINUTE="1000000",
            ETL_BENCHMARK_SYMBOLS="",
            ETL_DEADLINE_SECONDS="3600",
        )
        cmd = [str(service), "etl", "--from", first, "--to", last, "--provider", "fmp"]
        return {
            "symbols": symbols,
            "from": first,
            "to": last,
            "backfill": etl_run(cmd, env, work / "etl-1.log", "rows_inserted"),
            "rerun": etl_run(cmd, env, work / "etl-2.log", "rows_unchanged"),
        }
    finally:
        provider.stop()


def etl_run(cmd: list[str], env: dict[str, str], log: Path, counted: str) -> dict:
    started = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    finished = [
        json.loads(line)
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("{") and '"etl run finished"' in line
    ]
    if code != 0 or not finished:
        raise BenchError(f"sigmasight etl exited {code}; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
    line = finished[-1]
    bars = int(line[counted])
    return {
        "seconds": round(seconds, 2),
        "bars": bars,
        "bars_per_s": round(bars / seconds),
        "peak_rss_kb": usage.ru_maxrss,
        "inserted": int(line["rows_inserted"]),
        "updated": int(line["rows_updated"]),
        "unchanged": int(line["rows_unchanged"]),
        "rejected": int(line["rows_rejected"]),
        "status": line["status"],
    }


def measure_http(service: Path, bare: Path, db: Database, seconds: float, work: Path) -> dict:
    """The service's routes at 1, 64 and 256 connections, its memory idle and under load, and
    the two ceilings: a bare axum server and pgbench running the prices endpoint's SQL."""
    figures: dict = {"seconds_per_run": seconds}
    port = free_port()
    process = Process([str(service), "serve"], service_env(db, port), work / "serve.log")
    try:

        def ready() -> bool:
            """the service's readiness"""
            return status_of(port, "/api/v1/health") == 200

        wait_for(ready, 30)
        time.sleep(1)
        figures["idle_rss_kb"] = proc_status(process.pid, "VmRSS")
        note(f"idle RSS: {mib(figures['idle_rss_kb'])}")

        status, body = request(port, "POST", "/api/v1/auth/login", {"email": USER_EMAIL, "password": USER_PASSWORD})
        if status != 200:
            raise BenchError(f"login answered {status}: {body[:200]!r}")
        token = json.loads(body)["access_token"]
        prices = f"/api/v1/prices/{PRICES_SYMBOL}"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", prices, headers={"Authorization": f"Bearer {token}"})
        answer = conn.getresponse()
        bars = len(json.loads(answer.read())["bars"]) if answer.status == 200 else 0
        conn.close()
        if bars != 260:
            raise BenchError(f"{prices} answered {answer.status} with {bars} bars, expected 260")
        figures["prices_bars"] = bars

        routes = {"health": ("/health", None), "readiness": ("/api/v1/health", None), "prices": (prices, token)}
        for name, (path, auth) in routes.items():
            url = f"http://127.0.0.1:{port}{path}"
            wrk(url, 64, min(seconds, 2), auth)  # warm-up: pool connections, caches
            figures[name] = []
            for connections in (1, 64, 256):
                if connections == 256:
                    with RssSampler(process.pid) as sampler:
                        result = wrk(url, connections, seconds, auth)
                    result["peak_rss_kb"] = sampler.peak_kb
                else:
                    result = wrk(url, connections, seconds, auth)
                figures[name].append(result)
                note(f"{name:9} c={connections:<3} {result['rps']:>8} req/s  p50 {result['p50_ms']:>7} ms  "
                     f"p99 {result['p99_ms']:>7} ms  errors {result['errors']}")
        figures["rss_256_kb"] = max(r["peak_rss_kb"] for name in routes for r in figures[name] if "peak_rss_kb" in r)
        figures["hwm_kb"] = proc_status(process.pid, "VmHWM")
        note(f"peak RSS under 256 connections: {mib(figures['rss_256_kb'])}")
    finally:
        process.stop()

    ceiling = Process([str(bare), "0"], {"PATH": os.environ.get("PATH", "")}, work / "bare.log")
    try:
        address = ceiling.announced_address()
        wrk(f"http://{address}/health", 64, min(seconds, 2))
        figures["bare_axum"] = []
        for connections in (1, 64, 256):
            result = wrk(f"http://{address}/health", connections, seconds)
            figures["bare_axum"].append(result)
            note(f"bare axum c={connections:<3} {result['rps']:>8} req/s  p50 {result['p50_ms']:>7} ms  "
                 f"p99 {result['p99_ms']:>7} ms  errors {result['errors']}")
    finally:
        ceiling.stop()

    script = pgbench_script(BARS_SQL.read_text())
    figures["pgbench_prices"] = []
    for clients in (1, 64, 256):
        result = pgbench(db, script, clients, seconds, work, "prices")
        figures["pgbench_prices"].append(result)
        note(f"pgbench   c={clients:<3} {result['tps']:>8} tx/s   p50 {result['p50_ms']:>7} ms  "
             f"p99 {result['p99_ms']:>7} ms  errors {result['errors']}")
    return figures


def measure_container(tag: str, db: Database, interval: str | None) -> float:
    """Seconds from `docker run` to the container's `healthy`, with the image's HEALTHCHECK or
    with its interval shortened to `interval` (what the process itself takes)."""
    name = f"sigmasight-bench-{uuid.uuid4().hex[:8]}"
    port = free_port()
    cmd = ["docker", "run", "-d", "--name", name, "--network", "host", "--read-only",
           "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    if interval:
        cmd += ["--health-interval", interval, "--health-start-period", "0s"]
    for key, value in service_env(db, port).items():
        if key != "PATH":
            cmd += ["-e", f"{key}={value}"]
    started = time.perf_counter()
    run([*cmd, tag])
    try:

        def healthy() -> bool:
            """the container's health status `healthy`"""
            state = run(["docker", "inspect", "-f", "{{.State.Health.Status}}", name]).stdout.strip()
            return state == "healthy"

        wait_for(healthy, 60, poll=0.02)
        return time.perf_counter() - started
    finally:
        subprocess.run(["docker", "rm", "-f", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


# --- targets and the report ---------------------------------------------------------------------


def at(rows: list[dict], connections: int) -> dict:
    return next(r for r in rows if r.get("connections", r.get("clients")) == connections)


def evaluate(f: dict) -> list[dict]:
    """Each target with its measured figure, where the run measured it."""
    checks = []

    def check(name: str, figure: str, ok: bool) -> None:
        checks.append({"target": name, "measured": figure, "met": bool(ok)})

    http_f = f.get("http")
    if http_f:
        health, bare = at(http_f["health"], 64), at(http_f["bare_axum"], 64)
        ratio = health["rps"] / bare["rps"]
        check("/health >= 0.8 x bare axum at 64 connections", f"{ratio:.2f} ({health['rps']:,} / {bare['rps']:,} req/s)", ratio >= 0.8)
        prices, ceiling = at(http_f["prices"], 64), at(http_f["pgbench_prices"], 64)
        ratio = prices["rps"] / ceiling["tps"]
        check("prices >= 0.7 x pgbench at 64 connections", f"{ratio:.2f} ({prices['rps']:,} req/s / {ceiling['tps']:,} tx/s)", ratio >= 0.7)
        check("prices p99 < 50 ms at 64 connections", f"{prices['p99_ms']} ms", prices["p99_ms"] < 50)
        check("idle RSS <= 15 MiB", mib(http_f["idle_rss_kb"]), http_f["idle_rss_kb"] <= 15 * 1024)
        check("RSS under 256 connections <= 64 MiB", mib(http_f["rss_256_kb"]), http_f["rss_256_kb"] <= 64 * 1024)
        errors = sum(r["errors"] for key in ("health", "readiness", "prices", "bare_axum") for r in http_f[key])
        check("no HTTP errors in any run", str(errors), errors == 0)
    startup = f.get("startup")
    if startup:
        median = startup["exec_to_health_ms"]["median"]
        check("exec to first 200 on /health <= 100 ms", f"{median} ms (median of {startup['runs']})", median <= 100)
    image = f.get("image")
    if image:
        size = image["uncompressed_bytes"]
        check("image <= 25 MB (aim: 15 MB)", mb(size), size <= 25e6)
    etl = f.get("etl")
    if etl:
        for key in ("backfill", "rerun"):
            rate = etl[key]["bars_per_s"]
            check(f"ETL {key} >= 100,000 bars/s", f"{rate:,} bars/s", rate >= 100_000)
    docker = f.get("docker")
    if docker and "rebuild_s" in docker and "cold_build_s" in docker:
        ratio = docker["rebuild_s"] / docker["cold_build_s"]
        check("src/-only rebuild <= 30 % of a cold build", f"{ratio:.0%} ({docker['rebuild_s']:.0f} s / {docker['cold_build_s']:.0f} s)", ratio <= 0.3)
    return checks


def mb(n_bytes: float) -> str:
    """Sizes on disk and on the wire, in decimal megabytes (as registries and `docker` count)."""
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:.0f} kB"


def mib(kib: float) -> str:
    """Memory, from /proc's kB (which are KiB), in MiB."""
    return f"{kib / 1024:.1f} MiB"


def machine() -> dict:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    mem_kb = int(next(l.split()[1] for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")))

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.splitlines()[0].strip()
        except (OSError, IndexError):
            return "not installed"

    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "rustc": version(["rustc", "--version"]),
        "postgres": version(["pgbench", "--version"]),
        "wrk": version(["wrk", "--version"]) or "wrk",
        "docker": version(["docker", "--version"]),
        "commit": version(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"]),
    }


def report(f: dict, checks: list[dict]) -> str:
    m = f["machine"]
    lines = [
        f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, Linux {m['kernel']}; "
        f"{m['rustc']}; {m['postgres']}; commit {m['commit']}; the service: {f['service']}; "
        f"helper servers: `{f['profile']}` builds{' (quick run)' if f['quick'] else ''}.",
        "",
        "| target | measured | met |",
        "|---|---|---|",
    ]
    lines += [f"| {c['target']} | {c['measured']} | {'yes' if c['met'] else '**no**'} |" for c in checks]
    http_f = f.get("http")
    if http_f:
        lines += ["", f"HTTP, wrk {http_f['seconds_per_run']} s per run (2 threads; 1 for one connection):", "",
                  "| route | connections | requests/s | p50 ms | p99 ms | errors | vs ceiling |", "|---|---|---|---|---|---|---|"]
        ceilings = {"health": ("bare_axum", "rps"), "prices": ("pgbench_prices", "tps")}
        for name, label in (("health", "`/health`"), ("readiness", "`/api/v1/health`"), ("prices", "`/api/v1/prices/{symbol}` (260 bars)"),
                            ("bare_axum", "ceiling: bare axum `/health`"), ("pgbench_prices", "ceiling: pgbench, the prices SQL")):
            for row in http_f[name]:
                n = row.get("connections", row.get("clients"))
                rate = row.get("rps", row.get("tps"))
                versus = ""
                if name in ceilings:
                    key, field = ceilings[name]
                    versus = f"{rate / at(http_f[key], n)[field]:.2f}"
                lines.append(f"| {label} | {n} | {rate:,} | {row['p50_ms']} | {row['p99_ms']} | {row['errors']} | {versus} |")
        lines += ["", f"Memory: {mib(http_f['idle_rss_kb'])} RSS idle after start-up; "
                  f"{mib(http_f['rss_256_kb'])} at most under 256 connections (sampled every 50 ms); "
                  f"{mib(http_f['hwm_kb'])} high-water mark over the whole run (a login's argon2 included)."]
    startup = f.get("startup")
    if startup:
        h, r = startup["exec_to_health_ms"], startup["exec_to_ready_ms"]
        lines += ["", f"Start-up over {startup['runs']} runs, migrations already applied: exec to the first 200 on `/health` "
                  f"{h['median']} ms median ({h['min']}-{h['max']}); to a 200 on `/api/v1/health` {r['median']} ms ({r['min']}-{r['max']})."]
    image = f.get("image")
    if image:
        lines += ["", f"Image: {mb(image['uncompressed_bytes'])} uncompressed, {mb(image['compressed_layers_bytes'])} as gzip-compressed layers; "
                  f"the binary {mb(image['binary_bytes'])} ({image['binary_file']})."]
    docker = f.get("docker")
    if docker:
        parts = []
        if "cold_build_s" in docker:
            parts.append(f"cold build (no cache) {docker['cold_build_s']:.0f} s")
        if "rebuild_s" in docker:
            parts.append(f"rebuild after a `src/`-only change {docker['rebuild_s']:.0f} s")
        if "healthy_s" in docker:
            parts.append(f"`docker run` to `healthy` {docker['healthy_s']:.1f} s with the image's HEALTHCHECK, "
                         f"{docker['healthy_fast_s']:.2f} s probing every 100 ms")
        lines += ["", "Docker: " + "; ".join(parts) + "."]
    etl = f.get("etl")
    if etl:
        lines += ["", f"ETL, {etl['symbols']} symbols from {etl['from']} to {etl['to']} from the local provider double:", "",
                  "| run | bars | seconds | bars/s | peak RSS |", "|---|---|---|---|---|"]
        for key, label in (("backfill", "backfill (all inserted)"), ("rerun", "rerun (all unchanged)")):
            r = etl[key]
            lines.append(f"| {label} | {r['bars']:,} | {r['seconds']} | {r['bars_per_s']:,} | {mib(r['peak_rss_kb'])} |")
    return "\n".join(lines) + "\n"


# --- the run ------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1-second load runs, 20 symbols over one year, 3 start-ups; targets are reported, not judged")
    parser.add_argument("--docker", choices=("auto", "skip", "required"), default="auto",
                        help="image figures and builds: when an engine answers (auto), never, or always")
    parser.add_argument("--profile", choices=("release", "dev"), default=None,
                        help="build profile of the helper servers, and of the service without Docker "
                             "(default: release; dev with --quick)")
    parser.add_argument("--seconds", type=int, default=None, help="length of each load run, in seconds (default 10; 1 with --quick)")
    parser.add_argument("--out", type=Path, default=ROOT / "target" / "bench", help="where results.json and report.md go")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    quick = args.quick
    profile = args.profile or ("dev" if quick else "release")
    seconds = args.seconds or (1 if quick else 10)
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        raise BenchError("DATABASE_URL must name a server where a database may be created (scripts/bench.sh starts one)")
    for tool, package in (("wrk", "wrk"), ("pgbench", "postgresql-client"), ("psql", "postgresql-client"), ("file", "file")):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian: apt-get install {package})")
    use_docker = args.docker == "required" or (args.docker == "auto" and docker_available())
    if args.docker == "required" and not docker_available():
        raise BenchError("--docker required, but no Docker engine answers")

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="sigmasight-bench."))
    figures: dict = {"machine": machine(), "profile": profile, "quick": quick,
                     "service": "the image's binary" if use_docker else f"a `{profile}` build"}
    db = tag = None
    try:
        step("builds")
        helpers = cargo_build(profile, ["--example", "bare-axum", "--example", "provider-double"]
                              + ([] if use_docker else ["--bin", "sigmasight"]))
        bare, double = helpers / "examples" / "bare-axum", helpers / "examples" / "provider-double"
        service = helpers / "sigmasight"
        if use_docker:
            tag, service = docker_figures(figures, work, quick)

        db = Database(admin_url)
        step("migrations and a user")
        run([str(service), "migrate"], env=service_env(db, free_port()))
        run([str(service), "user", "create", "--email", USER_EMAIL], env=service_env(db, free_port()), input=USER_PASSWORD)

        step("ETL: backfill and rerun from the provider double")
        symbols, first = (20, "2024-01-02") if quick else (500, "2016-01-04")
        figures["etl"] = measure_etl(service, double, db, symbols, first, "2025-12-31", work)
        for key in ("backfill", "rerun"):
            r = figures["etl"][key]
            note(f"{key}: {r['bars']:,} bars in {r['seconds']} s = {r['bars_per_s']:,} bars/s, peak RSS {mib(r['peak_rss_kb'])}")
        backfill, rerun = figures["etl"]["backfill"], figures["etl"]["rerun"]
        if backfill["inserted"] != rerun["unchanged"] or rerun["inserted"] or rerun["updated"]:
            raise BenchError(f"the rerun was not idempotent: {rerun}")
        # What autovacuum would do after a bulk load: statistics and the visibility map.
        db.psql("VACUUM (ANALYZE) daily_prices")

        step("start-up")
        figures["startup"] = measure_startup(service, db, 3 if quick else 20, work)
        note(f"exec to 200 on /health: {figures['startup']['exec_to_health_ms']}")
        note(f"exec to 200 on /api/v1/health: {figures['startup']['exec_to_ready_ms']}")

        step("HTTP")
        figures["http"] = measure_http(service, bare, db, seconds, work)

        if tag:
            step("container start to healthy")
            figures["docker"]["healthy_s"] = measure_container(tag, db, None)
            figures["docker"]["healthy_fast_s"] = measure_container(tag, db, "100ms")
            note(f"{figures['docker']['healthy_s']:.1f} s (image HEALTHCHECK), {figures['docker']['healthy_fast_s']:.2f} s (every 100 ms)")
    finally:
        if db:
            db.drop()
        if tag:
            subprocess.run(["docker", "image", "rm", tag], stdout=subprocess.DEVNULL, check=False)
        shutil.rmtree(work, ignore_errors=True)

    checks = evaluate(figures)
    figures["targets"] = checks
    text = report(figures, checks)
    (args.out / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    (args.out / "report.md").write_text(text)
    step(f"report (also in {args.out}/report.md and results.json)")
    print(text)
    missed = [c for c in checks if not c["met"]]
    errors = [c for c in checks if c["target"] == "no HTTP errors in any run" and not c["met"]]
    print(f"bench: {len(checks) - len(missed)} of {len(checks)} targets met" + (" (quick run: not judged)" if quick else ""))
    if errors:
        return 1
    return 1 if args.check and missed and not quick else 0


def docker_figures(figures: dict, work: Path, quick: bool) -> tuple[str, Path]:
    """Builds the image (cold, then again after a src/-only change; a quick run takes whatever
    the cache has and skips the rebuild) and measures its sizes."""
    step("image: cold build, sizes, rebuild after a src/-only change")
    build_args = ["--build-arg", f"GIT_COMMIT={run(['git', 'rev-parse', 'HEAD'], cwd=ROOT).stdout.strip()}"]
    if os.environ.get("BASE_IMAGES") == "local":
        build_args += ["--build-arg", f"RUST_IMAGE={RUST_BUILDER_LOCAL}", "--build-arg", f"RUNTIME_IMAGE={RUNTIME_LOCAL}"]
    tag = f"sigmasight-backend:bench-{uuid.uuid4().hex[:8]}"
    context = work / "context"
    copy_context(context)
    figures["docker"] = {}
    cold = docker_build(context, tag, build_args, no_cache=not quick, log=work / "build.log")
    if not quick:
        figures["docker"]["cold_build_s"] = round(cold, 1)
    note(f"build: {cold:.0f} s{'' if quick else ' (no cache)'}")
    figures["image"], binary = image_figures(tag, work)
    note(f"image {mb(figures['image']['uncompressed_bytes'])}, layers {mb(figures['image']['compressed_layers_bytes'])} gzip, "
         f"binary {mb(figures['image']['binary_bytes'])}")
    if quick:
        return tag, binary
    with open(context / "src" / "lib.rs", "a", encoding="utf-8") as lib:
        lib.write(f"\n// benchmark rebuild probe {tag}\n")
    rebuild = docker_build(context, f"{tag}-rebuild", build_args, no_cache=False, log=work / "rebuild.log")
    subprocess.run(["docker", "image", "rm", f"{tag}-rebuild"], stdout=subprocess.DEVNULL, check=False)
    figures["docker"]["rebuild_s"] = round(rebuild, 1)
    note(f"rebuild after a src/-only change: {rebuild:.0f} s")
    return tag, binary


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        sys.exit(1)
