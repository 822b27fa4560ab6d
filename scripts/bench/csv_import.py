"""The CSV import (`sigmasight etl --provider csv --file PATH`): a generated long-layout file of
several million rows loaded into an empty table, then loaded again (every row unchanged); rows
per second end to end (reading, parsing, validation, upsert) and the process's peak RSS, which
must stay flat however large the file is (the import streams)."""

from __future__ import annotations

from pathlib import Path

from common import BenchError, free_port, note, run
from measure import Database, load_run, service_env


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
            figures[key] = load_run(cmd, env, work / log, counted, unit="rows")
    finally:
        path.unlink(missing_ok=True)
    figures["copy_ceiling"] = db.copy_ceiling("source = 'csv'", work)
    first_run, rerun = figures["first"], figures["rerun"]
    if first_run["inserted"] != rows or rerun["unchanged"] != rows or rerun["inserted"] or rerun["updated"]:
        raise BenchError(f"the CSV import did not load every row once, then find each unchanged: {figures}")
    return figures
