#!/usr/bin/env bash
# Checks that .sqlx/ (the offline data of every sqlx::query!/query_as!/query_file! in src/,
# which every ordinary build reads: .cargo/config.toml sets SQLX_OFFLINE) matches the code and
# the migrations:
#
#   1. creates a fresh database on DATABASE_URL's server (a throwaway cluster when it is unset)
#      and applies migrations/*.sql to it in order, each in one transaction;
#   2. builds the library online against it (SQLX_OFFLINE=false): sqlx's macros check every
#      statement against that schema and write their data (query-<hash>.json) into a temporary
#      SQLX_OFFLINE_DIR;
#   3. compares that directory with .sqlx/: the same files with the same contents, or it fails
#      naming the files added, removed and changed.
#
# The database is dropped afterwards. The migrations go in through psql rather than
# `sigmasight migrate`: building the binary compiles the macros, offline, from the very .sqlx/
# that may be stale or missing a new statement.
#
# Usage: scripts/check-sqlx.sh [--write] [SQLX_DIR]
#   --write    replace SQLX_DIR with what the build wrote (after changing a statement or a
#              migration), instead of comparing
#   SQLX_DIR   the directory compared or written (default .sqlx; the test of this script
#              passes an altered copy)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/pgurl.sh
source scripts/lib/pgurl.sh

write=false
if [ "${1:-}" = --write ]; then
  write=true
  shift
fi
sqlx_dir=${1:-.sqlx}

throwaway=false
if [ -z "${DATABASE_URL:-}" ]; then
  postgres_start_throwaway >/dev/null
  throwaway=true
fi
psql=$(pgurl_bin psql)
pgurl_split "$DATABASE_URL" SERVER || {
  echo "error: DATABASE_URL is not a postgres:// URL with a well-encoded password" >&2
  exit 1
}
psql_on() {
  local conn=$1
  shift
  PGPASSWORD=${SERVER_PASSWORD:-${PGPASSWORD:-}} "$psql" -X -q -At -v ON_ERROR_STOP=1 \
    --dbname="$conn" "$@"
}

# with_database URL NAME: the same server, database NAME (the path replaced, parameters kept).
with_database() {
  local base=${1%%\?*} params=""
  [[ $1 != *\?* ]] || params="?${1#*\?}"
  if [[ ${base#*://} == */* ]]; then base=${base%/*}; fi
  printf '%s/%s%s' "$base" "$2" "$params"
}
database="sqlx_check_$$_$RANDOM"
check_conn=$(with_database "$SERVER_CONN" "$database")

work=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-sqlx.XXXXXX")
cleanup() {
  psql_on "$SERVER_CONN" -c "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
  rm -rf "$work"
  if $throwaway; then postgres_stop_throwaway; fi
}
trap cleanup EXIT

psql_on "$SERVER_CONN" -c "CREATE DATABASE $database" >/dev/null
for migration in migrations/*.sql; do
  psql_on "$check_conn" --single-transaction -f "$migration" >/dev/null
done

mkdir "$work/sqlx"
# The library holds every statement (tests keep runtime SQL). The touch makes cargo compile it
# again, so that each macro runs, online, now. The URL, password included, goes to cargo in its
# environment, which `ps` does not show.
touch src/lib.rs
if ! SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$work/sqlx" \
  DATABASE_URL=$(with_database "$DATABASE_URL" "$database") \
  cargo check --lib --locked --quiet; then
  echo "error: a statement does not compile against migrations/ (above)" >&2
  exit 1
fi
touch src/lib.rs

if $write; then
  rm -rf "$sqlx_dir"
  mkdir -p "$sqlx_dir"
  cp "$work/sqlx"/*.json "$sqlx_dir"/ 2>/dev/null || true
  echo "check-sqlx: wrote $(find "$sqlx_dir" -name '*.json' | wc -l) files to $sqlx_dir"
  exit 0
fi

stale=0
mkdir -p "$work/empty"
[ -d "$sqlx_dir" ] || sqlx_dir="$work/empty"
for file in "$work/sqlx"/*.json; do
  [ -e "$file" ] || continue
  name=${file##*/}
  if [ ! -e "$sqlx_dir/$name" ]; then
    echo "missing from $sqlx_dir/: $name" >&2
    grep -m1 '"query"' "$file" >&2 || true
    stale=1
  elif ! cmp -s "$file" "$sqlx_dir/$name"; then
    echo "changed: $sqlx_dir/$name" >&2
    diff -u "$sqlx_dir/$name" "$file" >&2 || true
    stale=1
  fi
done
for file in "$sqlx_dir"/*; do
  [ -e "$file" ] || continue
  name=${file##*/}
  if [ ! -e "$work/sqlx/$name" ]; then
    echo "no longer used, still in $sqlx_dir/: $name" >&2
    stale=1
  fi
done
if [ "$stale" = 1 ]; then
  echo "error: $sqlx_dir is stale; regenerate it with scripts/check-sqlx.sh --write and commit it" >&2
  exit 1
fi
echo "check-sqlx: .sqlx/ matches the code and the migrations ($(find "$work/sqlx" -name '*.json' | wc -l) statements)"
