"""The CSV import (`sigmasight etl --provider csv --file PATH`): a generated long-layout file of
several million rows loaded into an empty table, then loaded again (every row unchanged); rows
per second end to end (reading, parsing, validation, upsert) and the process's peak RSS, which
must stay flat however large the file is (the import streams)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from common import BenchError, free_port, note, run
from measure import Database, service_env


def measure_csv_import(service: Path, generator: Path, db: Database, symbols: int, first: str, last: str,
                       work: Path) -> dict:
    path = work / "import.csv"
    rows = int(run([str(generator), str(symbols), first, last, str(path)]).stdout.strip())
    size = path.stat().st_size
    note(f"generated {rows:,} rows ({size / 1e6:.0f} MB) for {symbols} symbols from {first} to {last}")
    try:
        env = service_env(db, free_port())
        cmd = [str(service), "etl", "--provider", "csv", "--file", str(path)]
        figures = {
            "rows": rows,
            "file_bytes": size,
            "symbols": symbols,
            "from": first,
            "to": last,
        }
        for key, log, counted in (("first", "csv-1.log", "rows_inserted"), ("rerun", "csv-2.log", "rows_unchanged")):
            db.checkpoint()
            figures[key] = import_run(cmd, env, work / log, counted)
    finally:
        path.unlink(missing_ok=True)
    figures["copy_ceiling"] = db.copy_ceiling("source = 'csv'", work)
    first_run, rerun = figures["first"], figures["rerun"]
    if first_run["inserted"] != rows or rerun["unchanged"] != rows or rerun["inserted"] or rerun["updated"]:
        raise BenchError(f"the CSV import did not load every row once, then find each unchanged: {figures}")
    return figures


def import_run(cmd: list[str], env: dict[str, str], log: Path, counted: str) -> dict:
    started = time.perf_counter()
    with open(log, "wb") as out:
        # stderr is not a terminal: progress comes as log lines, not a bar.
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    lines = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    finished = [line for line in lines if line.get("message") == "etl run finished"]
    if code != 0 or not finished:
        raise BenchError(f"sigmasight etl --provider csv exited {code}; see {log}:\n{log.read_text(errors='replace')[-2000:]}")
    line = finished[-1]
    rows = int(line[counted])
    return {
        "seconds": round(seconds, 2),
        "rows": rows,
        "rows_per_s": round(rows / seconds),
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
