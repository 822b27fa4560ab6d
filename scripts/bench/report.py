"""The targets, judged against one run's figures, and the report in Markdown."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

from common import ROOT


def at(rows: list[dict], connections: int) -> dict:
    return next(r for r in rows if r.get("connections", r.get("clients")) == connections)


def evaluate(f: dict) -> list[dict]:
    """Each target with its measured figure, where the run measured it."""
    checks = []

    def check(name: str, figure: str, ok: bool) -> None:
        checks.append({"target": name, "measured": figure, "met": bool(ok)})

    http_f = f.get("http")
    if http_f:
        turns = http_f["health_turns"]
        for key, name, target in (
            ("bare", "/health >= 0.8 x bare axum at 64 connections", 0.8),
            ("metrics", "/health with metrics >= 0.95 x without, at 64 connections", 0.95),
        ):
            ratio = turns["summary"][key]
            low, high = ratio["quartiles"]
            check(f"{name} (median of {len(turns['ratios'][key])} rounds, side by side)",
                  f"{ratio['median']:.2f} (quartiles {low:.2f}-{high:.2f})", ratio["median"] >= target)
        prices = http_f["prices_turns"]
        ratio = prices["summary"]
        low, high = ratio["quartiles"]
        check(f"prices >= 0.7 x pgbench at 64 connections (median of {len(prices['ratios'])} rounds, alternated)",
              f"{ratio['median']:.2f} (quartiles {low:.2f}-{high:.2f})", ratio["median"] >= 0.7)
        check("prices p99 < 50 ms at 64 connections (median of its turns)", f"{ratio['p99_ms']} ms", ratio["p99_ms"] < 50)
        check("idle RSS <= 15 MiB", mib(http_f["idle_rss_kb"]), http_f["idle_rss_kb"] <= 15 * 1024)
        check("RSS under 256 connections <= 64 MiB", mib(http_f["rss_256_kb"]), http_f["rss_256_kb"] <= 64 * 1024)
        errors = sum(r["errors"] for key in ("health", "readiness", "prices", "bare_axum") for r in http_f[key])
        errors += sum(r["errors"] for r in http_f.get("compression", {}).get("prices_64", []))
        errors += sum(r["errors"] for rows in turns["turns"].values() for r in rows)
        errors += sum(r["errors"] for rows in http_f["prices_turns"]["turns"].values() for r in rows)
        check("no HTTP errors in any run", str(errors), errors == 0)
    startup = f.get("startup")
    if startup:
        median = startup["exec_to_health_ms"]["median"]
        check("exec to first 200 on /health <= 100 ms", f"{median} ms (median of {startup['runs']})", median <= 100)
    image = f.get("image")
    if image:
        size = image["uncompressed_bytes"]
        check("image <= 25 MB (aim: 15 MB)", mb(size), size <= 25e6)
    durable = durable_database(f)
    for section, runs, unit, rate_key in (("etl", (("backfill", "ETL backfill"), ("rerun", "ETL rerun")), "bars", "bars_per_s"),
                                          ("csv", (("first", "CSV import load"), ("rerun", "CSV import rerun")), "rows", "rows_per_s")):
        loads = f.get(section)
        if not loads:
            continue
        ceiling = loads["copy_ceiling"]["rows_per_s"]
        for key, name in runs:
            rate = loads[key][rate_key]
            where = "" if durable else " (the database is not durable: not met)"
            check(f"{name} >= 100,000 {unit}/s on a durable database", f"{rate:,} {unit}/s{where}", durable and rate >= 100_000)
            check(f"{name} >= 0.5 x COPY into the same table", f"{rate / ceiling:.2f} ({rate:,} / {ceiling:,} rows/s)",
                  durable and rate >= 0.5 * ceiling)
    csv = f.get("csv")
    if csv:
        rss = max(csv[key]["peak_rss_kb"] for key in ("first", "rerun"))
        check("CSV import peak RSS <= 100 MiB, whatever the file's size (it streams)", f"{mib(rss)} for a {mb(csv['file_bytes'])} file",
              rss <= 100 * 1024)
    docker = f.get("docker")
    if docker and "rebuild_s" in docker and "cold_build_s" in docker:
        ratio = docker["rebuild_s"] / docker["cold_build_s"]
        check("src/-only rebuild <= 30 % of a cold build", f"{ratio:.0%} ({docker['rebuild_s']:.0f} s / {docker['cold_build_s']:.0f} s)", ratio <= 0.3)
    return checks


def durable_database(f: dict) -> bool:
    """Whether the run's database commits durably, as a production server does."""
    settings = f.get("database", {})
    return settings.get("fsync") == "on" and settings.get("synchronous_commit") == "on"


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
        lines += turns_lines(http_f["health_turns"], http_f["prices_turns"])
        lines += ["", f"Memory: {mib(http_f['idle_rss_kb'])} RSS idle after start-up; "
                  f"{mib(http_f['rss_256_kb'])} at most under 256 connections (sampled every 50 ms); "
                  f"{mib(http_f['hwm_kb'])} high-water mark over the whole run (a login's argon2 included)."]
    compression = http_f.get("compression") if http_f else None
    if compression:
        lines += compression_lines(compression)
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
    settings = f.get("database")
    if settings:
        lines += ["", "Database: " + ", ".join(f"`{k}={v}`" for k, v in settings.items())
                  + (" (durable, as a production server)" if durable_database(f) else " (not durable: the load figures are not a production server's)")
                  + "; a CHECKPOINT before each timed load."]
    etl = f.get("etl")
    if etl:
        lines += ["", f"ETL, {etl['symbols']} symbols from {etl['from']} to {etl['to']} from the local provider double:", ""]
        lines += load_table(etl, "bars", "bars_per_s", (("backfill", "backfill (all inserted)"), ("rerun", "rerun (all unchanged)")))
    csv = f.get("csv")
    if csv:
        lines += ["", f"CSV import, {csv['rows']:,} rows ({mb(csv['file_bytes'])}, {csv['symbols']} symbols from {csv['from']} "
                  f"to {csv['to']}, long layout) from a generated file:", ""]
        lines += load_table(csv, "rows", "rows_per_s", (("first", "load (all inserted)"), ("rerun", "rerun (all unchanged)")))
    return "\n".join(lines) + "\n"


def load_table(loads: dict, unit: str, rate_key: str, runs: tuple) -> list[str]:
    """The runs of a load beside the COPY ceiling measured in the same run."""
    ceiling = loads["copy_ceiling"]
    lines = [f"| run | {unit} | seconds | {unit}/s | vs COPY | peak RSS |", "|---|---|---|---|---|---|"]
    for key, label in runs:
        r = loads[key]
        lines.append(f"| {label} | {r[unit]:,} | {r['seconds']} | {r[rate_key]:,} | {r[rate_key] / ceiling['rows_per_s']:.2f} "
                     f"| {mib(r['peak_rss_kb'])} |")
    lines.append(f"| ceiling: `COPY` of the same rows into an empty table of the same shape and indexes | {ceiling['rows']:,} "
                 f"| {ceiling['seconds']} | {ceiling['rows_per_s']:,} | 1.00 | |")
    return lines


def turns_lines(health: dict, prices: dict) -> list[str]:
    """The turns the `/health`, metrics and prices targets are judged on: each turn's figure and
    the best one, and the rounds' ratios with their median. The table above compares single runs
    taken minutes apart, so its "vs ceiling" column may differ from the targets' ratios."""
    def row(label: str, runs: list[dict], best: dict, field: str) -> str:
        return f"| {label} | {', '.join(f'{r[field]:,}' for r in runs)} | {best[field]:,} |"

    def ratios(label: str, values: list[float], summary: dict) -> str:
        low, high = summary["quartiles"]
        return (f"| {label} | {', '.join(f'{v:.2f}' for v in values)} | median {summary['median']:.2f} "
                f"(quartiles {low:.2f}-{high:.2f}) |")

    return [
        "", "The targets' turns at 64 connections, taken alternately in rounds (the table above compares single "
        "runs minutes apart, so its \"vs ceiling\" column may differ from the targets). A round is one turn per "
        f"server ({health['turn_seconds']:g} s for `/health`, {prices['turn_seconds']:g} s for prices); each ratio "
        "is judged by the median of its rounds:", "",
        "| server | each turn (requests/s; pgbench: transactions/s; ratios per round) | best, or median |",
        "|---|---|---|",
        row("`/health`, metrics off", health["turns"]["off"], health["off"], "rps"),
        row("`/health`, metrics on", health["turns"]["on"], health["on"], "rps"),
        row("bare axum `/health`", health["turns"]["bare"], health["bare"], "rps"),
        ratios("metrics on / off", health["ratios"]["metrics"], health["summary"]["metrics"]),
        ratios("off / bare axum", health["ratios"]["bare"], health["summary"]["bare"]),
        row("`/api/v1/prices/{symbol}`", prices["turns"]["route"], prices["route"], "rps"),
        row("pgbench, the prices SQL", prices["turns"]["pgbench"], prices["pgbench"], "tps"),
        ratios("prices / pgbench", prices["ratios"], prices["summary"]),
    ]


def compression_lines(c: dict) -> list[str]:
    """Bytes on the wire by encoding, and the prices route's throughput by encoding."""
    encodings = ("identity", "gzip", "br", "zstd")
    labels = {"openapi": "`/api/v1/openapi.json`", "prices": "`/api/v1/prices/{symbol}` (260 bars)",
              "prices_longest": f"`/api/v1/prices/{{symbol}}?limit=5000` ({c['longest_bars']:,} bars)"}
    lines = ["", "Compression: bytes on the wire for one response (status line, headers, body), each encoding asked for "
             "alone in `Accept-Encoding`; in brackets, the share of identity:", "",
             "| response | " + " | ".join(encodings) + " |", "|---|" + "---|" * len(encodings)]
    for name, label in labels.items():
        sizes = c["bytes"][name]
        plain = sizes["identity"]["bytes"]
        cells = [f"{sizes[e]['bytes']:,}" + ("" if e == "identity" else f" ({sizes[e]['bytes'] / plain:.0%})") for e in encodings]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    plain = next(r for r in c["prices_64"] if r["encoding"] == "identity")
    lines += ["", "The prices route (260 bars) at 64 connections by `Accept-Encoding` (wrk `-H`), run back to back:", "",
              "| Accept-Encoding | requests/s | vs none | p50 ms | p99 ms | bytes/response | errors |", "|---|---|---|---|---|---|---|"]
    for r in c["prices_64"]:
        asked = "none" if r["encoding"] == "identity" else f"`{r['encoding']}`"
        lines.append(f"| {asked} | {r['rps']:,} | {r['rps'] / plain['rps']:.2f} | {r['p50_ms']} | {r['p99_ms']} | "
                     f"{r['bytes_per_response']:,} | {r['errors']} |")
    return lines
