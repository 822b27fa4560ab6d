#!/usr/bin/env bash
# Backs up the database named by DATABASE_URL: pg_dump in custom format (compressed, restorable
# table by table with pg_restore), then checks that pg_restore can read the file's table of
# contents.
#
#   DATABASE_URL=postgres://... scripts/db/backup.sh [--output FILE]
#
# The default file is sigmasight-<UTC timestamp>.dump in BACKUP_DIR (default: the current
# directory). The password never appears on a command line or in the output: it reaches
# pg_dump through PGPASSWORD. Exit codes: 0 written and readable, 1 failed, 2 usage.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/pgurl.sh
source "$here/../lib/pgurl.sh"

usage() {
  sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}
die_usage() {
  echo "backup: $*" >&2
  echo "usage: DATABASE_URL=postgres://... scripts/db/backup.sh [--output FILE]" >&2
  exit 2
}

output=""
while [ $# -gt 0 ]; do
  case $1 in
    -o | --output)
      if [ $# -lt 2 ] || [ -z "$2" ]; then die_usage "--output needs a file name"; fi
      output=$2
      shift 2
      ;;
    --output=*)
      output=${1#--output=}
      [ -n "$output" ] || die_usage "--output needs a file name"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) die_usage "unknown argument: $1" ;;
  esac
done

[ -n "${DATABASE_URL:-}" ] || die_usage "DATABASE_URL is not set (the database to back up)"
pgurl_split "$DATABASE_URL" SRC ||
  die_usage "DATABASE_URL: expected a postgres:// or postgresql:// URL with a well percent-encoded password"
if [ -z "$output" ]; then
  output="${BACKUP_DIR:-.}/sigmasight-$(date -u +%Y%m%dT%H%M%SZ).dump"
fi
if [ -e "$output" ]; then
  echo "backup: $output already exists; refusing to overwrite it" >&2
  exit 1
fi
pg_dump=$(pgurl_bin pg_dump)
pg_restore=$(pgurl_bin pg_restore)

echo "backup: dumping $SRC_SHOWN"
start=$(date +%s)
# Written under a temporary name, renamed once complete: a failed dump leaves no file that
# looks like a backup.
partial="$output.partial"
trap 'rm -f "$partial"' EXIT
if ! PGPASSWORD=${SRC_PASSWORD:-${PGPASSWORD:-}} "$pg_dump" --format=custom --compress=6 \
  --file="$partial" --dbname="$SRC_CONN"; then
  echo "backup: FAILED: pg_dump of $SRC_SHOWN" >&2
  exit 1
fi
if ! toc=$("$pg_restore" --list "$partial"); then
  echo "backup: FAILED: pg_restore cannot read $partial" >&2
  exit 1
fi
entries=$(printf '%s\n' "$toc" | grep -cv '^;' || true)
mv "$partial" "$output"
trap - EXIT
echo "backup: wrote $output ($(wc -c <"$output") bytes, $entries entries, $(($(date +%s) - start)) s)"
