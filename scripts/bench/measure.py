"""The measurements: start-up, HTTP against its ceilings, the ETL, the container's health."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

from common import (ROOT, BenchError, Process, RssSampler, free_port, note, proc_status, request,
                    run, status_of, wait_for)
from report import mib

LUA = Path(__file__).with_name("wrk-report.lua")
# The prices endpoint's own SQL (src/http/prices/mod.rs includes the same file).
BARS_SQL = ROOT / "src" / "db" / "prices" / "bars.sql"
SECRET_KEY = "benchmark-only-secret-key-of-at-least-32-bytes"
USER_EMAIL = "bench@example.com"
USER_PASSWORD = "benchmark-password-0123"
PRICES_SYMBOL = "S0001"


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

    def durability(self) -> dict[str, str]:
        """The settings that decide what a commit costs: a production server has them all on."""
        return {name: self.psql(f"SHOW {name}").strip() for name in ("fsync", "synchronous_commit", "full_page_writes")}

    def checkpoint(self) -> None:
        """Starts the next timed write on an equal footing: every page flushed, so each run pays
        the same full-page images in the WAL. Needs a superuser (or pg_checkpoint); without one,
        runs start wherever the server's own checkpoints are."""
        try:
            self.psql("CHECKPOINT")
        except BenchError:
            pass

    def copy_ceiling(self, where: str, work: Path) -> dict:
        """A raw COPY of the rows of `daily_prices` that `where` selects into an empty table of the
        same shape, constraints and indexes: what this server can take per second at best, the
        ceiling for any loader. Rows leave and enter through psql, as a loader's would."""
        path = work / "ceiling.copy"
        columns = "symbol, date, open, high, low, close, adj_close, volume, source"
        try:
            self.psql(f"\\copy (SELECT {columns} FROM daily_prices WHERE {where} ORDER BY symbol, date) TO '{path}'")
            self.psql("DROP TABLE IF EXISTS bench_copy_ceiling")
            self.psql("CREATE TABLE bench_copy_ceiling (LIKE daily_prices INCLUDING ALL)")
            self.checkpoint()
            started = time.perf_counter()
            self.psql(f"\\copy bench_copy_ceiling ({columns}) FROM '{path}'")
            seconds = time.perf_counter() - started
            rows = int(self.psql("SELECT count(*) FROM bench_copy_ceiling"))
        finally:
            path.unlink(missing_ok=True)
            self.psql("DROP TABLE IF EXISTS bench_copy_ceiling")
        return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds)}


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


def wrk(url: str, connections: int, seconds: float, token: str | None = None, accept_encoding: str | None = None) -> dict:
    """One wrk run; requests/s, latency percentiles in ms, bytes read per response, and every
    kind of error. `accept_encoding` is sent as `Accept-Encoding` (wrk sends none by default)."""
    env = dict(os.environ, BENCH_TOKEN=token or "")
    cmd = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "-s", str(LUA), url]
    if accept_encoding:
        cmd[1:1] = ["-H", f"Accept-Encoding: {accept_encoding}"]
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
        "bytes_per_response": round(raw["bytes"] / raw["requests"]) if raw["requests"] else 0,
        "p50_ms": round(lat["p50"] / 1000, 2),
        "p99_ms": round(lat["p99"] / 1000, 2),
        "max_ms": round(lat["max"] / 1000, 2),
        "errors": sum(raw["errors"].values()),
        "error_kinds": {k: v for k, v in raw["errors"].items() if v},
    }


# pgbench's clock includes opening its connections, one thread's share after another: 256 of them
# take more than a second on a loaded 2-core machine, and a shorter run then completes nothing.
# Its tps excludes that time, so a longer floor changes no figure.
PGBENCH_MIN_SECONDS = 5


def pgbench(db: Database, script: str, clients: int, seconds: float, work: Path, name: str) -> dict:
    """pgbench running `script` (prepared statements), with latency percentiles from its log."""
    logs = work / f"pgbench-{name}-{clients}"
    logs.mkdir()
    script_file = logs / "script.sql"
    script_file.write_text(script)
    cmd = [
        "pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(2, clients)),
        "-T", str(max(PGBENCH_MIN_SECONDS, round(seconds))), "-f", str(script_file),
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
        figures = {"symbols": symbols, "from": first, "to": last}
        for key, log, counted in (("backfill", "etl-1.log", "rows_inserted"), ("rerun", "etl-2.log", "rows_unchanged")):
            db.checkpoint()
            figures[key] = load_run(cmd, env, work / log, counted)
    finally:
        provider.stop()
    figures["copy_ceiling"] = db.copy_ceiling("source = 'fmp'", work)
    return figures


def load_run(cmd: list[str], env: dict[str, str], log: Path, counted: str, unit: str = "bars") -> dict:
    """One `sigmasight etl` run (a provider's or a file's), timed end to end: how many `unit`
    its `counted` field of "etl run finished" says, per second, and the process's peak RSS."""
    started = time.perf_counter()
    with open(log, "wb") as out:
        # stderr is not a terminal: a CSV import's progress comes as log lines, not a bar.
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    lines = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    finished = [line for line in lines if line.get("message") == "etl run finished"]
    if code != 0 or not finished:
        raise BenchError(f"{' '.join(cmd[1:4])} exited {code}; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
    line = finished[-1]
    n = int(line[counted])
    return {
        "seconds": round(seconds, 2),
        unit: n,
        f"{unit}_per_s": round(n / seconds),
        "peak_rss_kb": usage.ru_maxrss,
        # The loader's own CPU time: the rest of the seconds is the database's (and waiting).
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "inserted": int(line["rows_inserted"]),
        "updated": int(line["rows_updated"]),
        "unchanged": int(line["rows_unchanged"]),
        "rejected": int(line["rows_rejected"]),
        "progress_lines": sum(1 for line in lines if line.get("message") == "csv import progress"),
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
        figures["compression"] = measure_compression(port, token, seconds)
        figures["prices_turns"] = measure_prices_turns(port, token, db, seconds, work)
        figures["rss_256_kb"] = max(r["peak_rss_kb"] for name in routes for r in figures[name] if "peak_rss_kb" in r)
        figures["hwm_kb"] = proc_status(process.pid, "VmHWM")
        note(f"peak RSS under 256 connections: {mib(figures['rss_256_kb'])}")
    finally:
        process.stop()

    figures["health_turns"] = measure_health_turns(service, bare, db, seconds, work)

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


def rounds_and_turn(seconds: float, rounds: int, turn_seconds: float) -> tuple[int, float]:
    """How many rounds and how long each turn: `rounds` of `turn_seconds`, or three rounds of the
    run's length when that is shorter (a quick run)."""
    return (rounds, turn_seconds) if seconds >= turn_seconds else (3, seconds)


def spread(ratios: list[float]) -> dict:
    """The rounds' ratios summed up: their median (what a target is judged on) and quartiles."""
    return {"median": statistics.median(ratios), "quartiles": statistics.quantiles(ratios, n=4)[::2]}


# Rounds of the prices route and pgbench in measure_prices_turns, and each turn's length.
PRICES_ROUNDS = 8
PRICES_TURN_SECONDS = 5.0


def measure_prices_turns(port: int, token: str, db: Database, seconds: float, work: Path) -> dict:
    """The prices route (wrk) and pgbench running its SQL, both at 64 connections, in rounds of
    one turn each (route then pgbench; the next round pgbench then route; the service idles
    through pgbench's turns). The prices targets are judged on these rounds: the ratio is the
    median of the rounds' ratios, the p99 the median of the route's turns. The route and its
    ceiling measured minutes apart compared two states of a shared machine (pgbench alone moved
    from 4,090 to 5,808 transactions/s between two runs of one day), and the best of three
    turns still moved with it."""
    rounds, turn = rounds_and_turn(seconds, PRICES_ROUNDS, PRICES_TURN_SECONDS)
    script = pgbench_script(BARS_SQL.read_text())
    url = f"http://127.0.0.1:{port}/api/v1/prices/{PRICES_SYMBOL}"
    runs: dict[str, list[dict]] = {"route": [], "pgbench": []}
    for number in range(rounds):
        order = ("route", "pgbench") if number % 2 == 0 else ("pgbench", "route")
        for name in order:
            if name == "route":
                runs["route"].append(wrk(url, 64, turn, token))
            else:
                runs["pgbench"].append(pgbench(db, script, 64, turn, work, "prices-turn"))
    best = {
        "route": max(runs["route"], key=lambda r: r["rps"]),
        "pgbench": max(runs["pgbench"], key=lambda r: r["tps"]),
    }
    ratios = [r["rps"] / p["tps"] for r, p in zip(runs["route"], runs["pgbench"])]
    summary = {**spread(ratios), "p99_ms": round(statistics.median(r["p99_ms"] for r in runs["route"]), 2)}
    note(f"prices c=64 in {rounds} rounds of {turn:g} s: route/pgbench median {summary['median']:.3f} "
         f"(quartiles {summary['quartiles'][0]:.3f}-{summary['quartiles'][1]:.3f}), route p99 median "
         f"{summary['p99_ms']} ms (turns: {[r['rps'] for r in runs['route']]} / {[r['tps'] for r in runs['pgbench']]})")
    return {**best, "turns": runs, "ratios": ratios, "summary": summary, "turn_seconds": turn}


# What each encoding is asked with, and the encodings compared (`identity`: no Accept-Encoding).
ENCODINGS = ("identity", "gzip", "br", "zstd")


def wire_bytes(port: int, path: str, token: str, encoding: str) -> dict:
    """One GET of `path` on its own connection, `Accept-Encoding: encoding` unless identity: the
    bytes the service sent (status line, headers, body and any chunk framing), and the body's
    share of them (chunk framing included). BenchError unless it answered in `encoding`."""
    head = f"GET {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n"
    if encoding != "identity":
        head += f"Accept-Encoding: {encoding}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall((head + "\r\n").encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    raw = b"".join(chunks)
    headers, _, body = raw.partition(b"\r\n\r\n")
    if not headers.startswith(b"HTTP/1.1 200"):
        raise BenchError(f"{path} ({encoding}) answered {headers[:40]!r}")
    sent = re.search(rb"(?im)^content-encoding: *(\S+)", headers)
    sent = sent.group(1).decode() if sent else "identity"
    if sent != encoding:
        raise BenchError(f"{path}: asked for {encoding}, got {sent}")
    return {"bytes": len(raw), "body_bytes": len(body)}


def measure_compression(port: int, token: str, seconds: float) -> dict:
    """Bytes on the wire for the OpenAPI document and two bar lists in each encoding, and the
    prices route's throughput at 64 connections in each, the runs back to back."""
    status, body = request(port, "GET", f"/api/v1/prices/{PRICES_SYMBOL}?limit=5000", None, token)
    if status != 200:
        raise BenchError(f"the longest bar list answered {status}")
    longest = len(json.loads(body)["bars"])
    documents = {
        "openapi": "/api/v1/openapi.json",
        "prices": f"/api/v1/prices/{PRICES_SYMBOL}",
        "prices_longest": f"/api/v1/prices/{PRICES_SYMBOL}?limit=5000",
    }
    figures: dict = {"longest_bars": longest, "bytes": {}, "prices_64": []}
    for name, path in documents.items():
        figures["bytes"][name] = {encoding: wire_bytes(port, path, token, encoding) for encoding in ENCODINGS}
        sizes = ", ".join(f"{e} {figures['bytes'][name][e]['bytes']:,}" for e in ENCODINGS)
        note(f"bytes on the wire, {name}: {sizes}")
    url = f"http://127.0.0.1:{port}{documents['prices']}"
    for encoding in ENCODINGS:
        result = wrk(url, 64, seconds, token, None if encoding == "identity" else encoding)
        result["encoding"] = encoding
        figures["prices_64"].append(result)
        note(f"prices    c=64 {encoding:8} {result['rps']:>8} req/s  p99 {result['p99_ms']:>7} ms  "
             f"{result['bytes_per_response']:,} bytes/response  errors {result['errors']}")
    return figures
# Rounds of /health in measure_health_turns, and each turn's length: a round runs the three
# servers one after another, and each ratio is the median of its rounds' ratios.
HEALTH_ROUNDS = 12
HEALTH_TURN_SECONDS = 3.0


def measure_health_turns(service: Path, bare: Path, db: Database, seconds: float, work: Path) -> dict:
    """/health at 64 connections on three servers side by side: the service without METRICS_PORT,
    the service with it, and the bare axum ceiling, measured in rounds of one turn each (off, on,
    bare; the next round bare, on, off) so that all three see the same machine. The two ratios
    with a target (metrics on against off, /health against bare axum) are the medians of the
    rounds' ratios: a turn's throughput moves by a fifth from one turn to the next on a shared
    machine, so single turns, or the best of a few, cannot tell 0.95 from 1. The server with
    metrics must also answer a scrape counting /health."""
    rounds, turn = rounds_and_turn(seconds, HEALTH_ROUNDS, HEALTH_TURN_SECONDS)
    off_port, on_port, metrics_port = free_port(), free_port(), free_port()
    off = Process([str(service), "serve"], service_env(db, off_port), work / "serve-metrics-off.log")
    on = Process([str(service), "serve"], service_env(db, on_port, METRICS_PORT=str(metrics_port)),
                 work / "serve-metrics-on.log")
    ceiling = Process([str(bare), "0"], {"PATH": os.environ.get("PATH", "")}, work / "bare-turns.log")
    try:

        def both_live() -> bool:
            """a 200 on /health from both servers"""
            return all(status_of(port, "/health") == 200 for port in (off_port, on_port))

        wait_for(both_live, 30)
        urls = {
            "off": f"http://127.0.0.1:{off_port}/health",
            "on": f"http://127.0.0.1:{on_port}/health",
            "bare": f"http://{ceiling.announced_address()}/health",
        }
        for url in urls.values():
            wrk(url, 64, min(seconds, 2))  # warm-up
        runs: dict[str, list[dict]] = {name: [] for name in urls}
        for number in range(rounds):
            order = list(urls.items()) if number % 2 == 0 else list(reversed(urls.items()))
            for name, url in order:
                runs[name].append(wrk(url, 64, turn))
        status, body = request(metrics_port, "GET", "/metrics", None)
        counted = 'sigmasight_http_requests_total{route="/health",method="GET",status="200"}'
        if status != 200 or counted not in body.decode():
            raise BenchError(f"/metrics answered {status} without {counted}")
    finally:
        ceiling.stop()
        on.stop()
        off.stop()
    best = {name: max(rows, key=lambda r: r["rps"]) for name, rows in runs.items()}
    ratios = {
        "metrics": [b["rps"] / a["rps"] for a, b in zip(runs["off"], runs["on"])],
        "bare": [a["rps"] / b["rps"] for a, b in zip(runs["off"], runs["bare"])],
    }
    summary = {name: spread(values) for name, values in ratios.items()}
    note(f"/health c=64 in {rounds} rounds of {turn:g} s: metrics on/off median {summary['metrics']['median']:.3f} "
         f"(quartiles {summary['metrics']['quartiles'][0]:.3f}-{summary['metrics']['quartiles'][1]:.3f}), "
         f"off/bare median {summary['bare']['median']:.3f} "
         f"(quartiles {summary['bare']['quartiles'][0]:.3f}-{summary['bare']['quartiles'][1]:.3f}); "
         f"best turns: off {best['off']['rps']} req/s, on {best['on']['rps']} req/s, bare {best['bare']['rps']} req/s")
    return {**best, "turns": runs, "ratios": ratios, "summary": summary, "turn_seconds": turn}


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
