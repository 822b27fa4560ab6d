#!/usr/bin/env python3
"""SigmaSight's benchmark: one run measures the image, start-up, memory, HTTP throughput against
ceilings measured alongside, response compression, the ETL's load rate and the Docker rebuild; prints the figures,
checks them against the targets, and writes DIR/results.json and DIR/report.md.

Run it through scripts/bench.sh, which starts a throwaway PostgreSQL (or takes DATABASE_URL).
The service binary measured is the one inside the image when Docker is used, else a release build
for the same static target. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from builds import cargo_build, docker_available, docker_figures
from common import ROOT, BenchError, free_port, note, run, step
from csv_import import measure_csv_import
from measure import (USER_EMAIL, USER_PASSWORD, Database, measure_container, measure_etl,
                     measure_http, measure_startup, service_env)
from report import evaluate, machine, mib, report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1-second load runs, 20 symbols over one year (ETL and CSV import), 3 start-ups; "
                             "targets are reported, not judged")
    parser.add_argument("--docker", choices=("auto", "skip", "required"), default="auto",
                        help="image figures and builds: when an engine answers (auto), never, or always")
    parser.add_argument("--profile", choices=("release", "dev"), default=None,
                        help="build profile of the helper servers, and of the service without Docker "
                             "(default: release; dev with --quick)")
    parser.add_argument("--seconds", type=int, default=None, help="length of each load run, in seconds (default 10; 1 with --quick)")
    parser.add_argument("--out", type=Path, default=ROOT / "target" / "bench", help="where results.json and report.md go")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args()


def note_loads(loads: dict, unit: str, runs: tuple[str, str]) -> None:
    ceiling = loads["copy_ceiling"]
    for key in runs:
        r = loads[key]
        rate = r[f"{unit}_per_s"]
        note(f"{key}: {r[unit]:,} {unit} in {r['seconds']} s = {rate:,} {unit}/s ({rate / ceiling['rows_per_s']:.2f} of COPY), "
             f"peak RSS {mib(r['peak_rss_kb'])}")
    note(f"COPY ceiling: {ceiling['rows']:,} rows in {ceiling['seconds']} s = {ceiling['rows_per_s']:,} rows/s")


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
        helpers = cargo_build(profile, ["--example", "bare-axum", "--example", "provider-double", "--example", "csv-file"]
                              + ([] if use_docker else ["--bin", "sigmasight"]))
        bare, double = helpers / "examples" / "bare-axum", helpers / "examples" / "provider-double"
        csv_file = helpers / "examples" / "csv-file"
        service = helpers / "sigmasight"
        if use_docker:
            tag, service = docker_figures(figures, work, quick)

        db = Database(admin_url)
        figures["database"] = db.durability()
        note("database: " + ", ".join(f"{k}={v}" for k, v in figures["database"].items()))
        step("migrations and a user")
        run([str(service), "migrate"], env=service_env(db, free_port()))
        run([str(service), "user", "create", "--email", USER_EMAIL], env=service_env(db, free_port()), input=USER_PASSWORD)

        step("ETL: backfill and rerun from the provider double")
        symbols, first = (20, "2024-01-02") if quick else (500, "2016-01-04")
        figures["etl"] = measure_etl(service, double, db, symbols, first, "2025-12-31", work)
        note_loads(figures["etl"], "bars", ("backfill", "rerun"))
        backfill, rerun = figures["etl"]["backfill"], figures["etl"]["rerun"]
        if backfill["inserted"] != rerun["unchanged"] or rerun["inserted"] or rerun["updated"]:
            raise BenchError(f"the rerun was not idempotent: {rerun}")
        step("CSV import: a generated file, loaded, then loaded again")
        csv_symbols, csv_first = (20, "2024-01-02") if quick else (2000, "2016-01-04")
        figures["csv"] = measure_csv_import(service, csv_file, db, csv_symbols, csv_first, "2025-12-31", work)
        note_loads(figures["csv"], "rows", ("first", "rerun"))
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


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        sys.exit(1)
