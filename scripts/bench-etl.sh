#!/usr/bin/env bash
# The ETL benchmark (benches/etl.rs) in release mode against a throwaway PostgreSQL: a 10-year
# backfill of 500 symbols from a local provider double, its idempotent rerun, and the upsert
# alone. Prints bars/s and peak memory. With DATABASE_URL set, that server is used instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh

if [ -z "${DATABASE_URL:-}" ]; then
  postgres_start_throwaway
fi
cargo bench --locked --bench etl
