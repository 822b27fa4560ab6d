#!/usr/bin/env bash
# Promotes data from one database to another: dumps SOURCE_DATABASE_URL (pg_dump, custom
# format) and restores it into TARGET_DATABASE_URL in one transaction, which compares the exact
# row count of every table of the source with the target's and commits only if all match.
#
#   SOURCE_DATABASE_URL=postgres://... TARGET_DATABASE_URL=postgres://... \
#     scripts/db/promote.sh [--dry-run] [--force]
#
#   --dry-run  connect to both, list the source's tables and row counts and what would happen;
#              change nothing
#   --force    restore into a target that already has tables: objects in the dump are dropped
#              and recreated (pg_restore --clean); tables only the target has are left alone
#
# The counts are taken in the snapshot pg_dump dumps from, so writes to the source during the
# promotion do not make them disagree. Objects are restored owned by the target URL's user
# (--no-owner) and without the source's grants (--no-acl). A source table whose name holds a
# tab, a line break or another control character is refused. URLs are taken from the
# environment, not the command line, and passwords never appear in the output.
# Exit codes: 0 promoted and counts match (or dry run), 1 failed or refused, 2 usage.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/pgurl.sh
source "$here/../lib/pgurl.sh"

usage_line="usage: SOURCE_DATABASE_URL=... TARGET_DATABASE_URL=... scripts/db/promote.sh [--dry-run] [--force]"
die_usage() {
  echo "promote: $*" >&2
  echo "$usage_line" >&2
  exit 2
}
fail() {
  echo "promote: FAILED: $*" >&2
  exit 1
}

dry_run=false
force=false
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=true ;;
    --force) force=true ;;
    -h | --help)
      sed -n '2,20s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) die_usage "unknown argument: $1" ;;
  esac
  shift
done

for var in SOURCE_DATABASE_URL TARGET_DATABASE_URL; do
  [ -n "${!var:-}" ] || die_usage "$var is not set"
done
pgurl_split "$SOURCE_DATABASE_URL" SRC ||
  die_usage "SOURCE_DATABASE_URL: expected a postgres:// or postgresql:// URL with a well percent-encoded password"
pgurl_split "$TARGET_DATABASE_URL" DST ||
  die_usage "TARGET_DATABASE_URL: expected a postgres:// or postgresql:// URL with a well percent-encoded password"
[ "$SRC_CONN" != "$DST_CONN" ] || die_usage "SOURCE_DATABASE_URL and TARGET_DATABASE_URL name the same database"
psql=$(pgurl_bin psql)
pg_dump=$(pgurl_bin pg_dump)
pg_restore=$(pgurl_bin pg_restore)

# Every ordinary or partitioned table outside the system schemas, as schema.table.
tables_sql="from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p') and n.nspname <> 'information_schema'
    and n.nspname not like 'pg\\_%'"
count_sql="select format('%I.%I', n.nspname, c.relname) || E'\\t' ||
  (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I',
    n.nspname, c.relname), false, true, '')))[1]::text
  $tables_sql order by 1;"
# The same counts as one line of JSON, [["schema.table", rows], ...], which reaches the target
# as a psql variable (:'expected'), never spliced into SQL.
counts_json_sql="select jsonb_array_length(counted.j) || E'\\t' || counted.j::text from (
  select coalesce(jsonb_agg(jsonb_build_array(format('%I.%I', n.nspname, c.relname),
    (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I',
      n.nspname, c.relname), false, true, '')))[1]::text::bigint)
    order by format('%I.%I', n.nspname, c.relname)), '[]'::jsonb) as j
  $tables_sql) counted;"
# Tables whose names hold a tab or a line break, each shown with ? in their place.
odd_names_sql="select regexp_replace(format('%I.%I', n.nspname, c.relname), '[[:cntrl:]]', '?', 'g')
  $tables_sql and format('%I.%I', n.nspname, c.relname) ~ '[[:cntrl:]]' order by 1;"

psql_src() { PGPASSWORD=${SRC_PASSWORD:-${PGPASSWORD:-}} "$psql" -X -q -At -v ON_ERROR_STOP=1 --dbname="$SRC_CONN" "$@"; }
psql_dst() { PGPASSWORD=${DST_PASSWORD:-${PGPASSWORD:-}} "$psql" -X -q -At -v ON_ERROR_STOP=1 --dbname="$DST_CONN" "$@"; }

echo "promote: source $SRC_SHOWN"
echo "promote: target $DST_SHOWN"
psql_src -c 'select 1' >/dev/null || fail "cannot connect to the source"
psql_dst -c 'select 1' >/dev/null || fail "cannot connect to the target"

# A name with a tab or a line break would garble the line-by-line report of counts; nothing
# legitimate needs one, so such a source is refused before anything is written.
odd_names=$(psql_src -c "$odd_names_sql") || fail "cannot list the source's tables"
if [ -n "$odd_names" ]; then
  fail "the source has tables whose names hold a tab, a line break or another control character (shown as ?): ${odd_names//$'\n'/, }; rename them before promoting"
fi

target_tables=$(psql_dst -c "select count(*) $tables_sql") || fail "cannot list the target's tables"
[[ $target_tables =~ ^[0-9]{1,9}$ ]] || fail "the target's table count is not a number: $target_tables"
if [ "$target_tables" -gt 0 ] && ! $force; then
  if $dry_run; then
    echo "promote: dry run, nothing changed: the target is not empty ($target_tables tables), so the promotion would be refused without --force" >&2
    exit 1
  fi
  fail "the target is not empty ($target_tables tables); pass --force to replace what the dump holds"
fi

if $dry_run; then
  source_counts=$(psql_src -c "$count_sql") || fail "cannot count the source's rows"
  echo "promote: dry run, nothing changed. The source's tables:"
  printf '%s\n' "$source_counts" | awk -F '\t' 'NF { printf "  %-40s %12s rows\n", $1, $2 }'
  if [ "$target_tables" -gt 0 ]; then
    echo "promote: would replace the objects of the dump in the target ($target_tables tables there now, --force)"
  else
    echo "promote: would restore into the empty target"
  fi
  echo "promote: would then compare the row counts of every table above"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-promote.XXXXXX")
snapshot_pid=""
cleanup() {
  [ -n "$snapshot_pid" ] && kill "$snapshot_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# One read-only transaction on the source exports its snapshot; pg_dump dumps from that
# snapshot and the counts are taken in it, so both see the same rows.
coproc SNAPSHOT { psql_src 2>"$work/snapshot.err"; }
# shellcheck disable=SC2153 # SNAPSHOT_PID is set by coproc
snapshot_pid=$SNAPSHOT_PID
printf '%s\n' "begin isolation level repeatable read, read only;" \
  "select pg_export_snapshot();" >&"${SNAPSHOT[1]}"
read -r -t 60 snapshot <&"${SNAPSHOT[0]}" || fail "cannot export a snapshot of the source: $(cat "$work/snapshot.err")"
printf '%s\n' "$counts_json_sql" >&"${SNAPSHOT[1]}"
IFS=$'\t' read -r -t 600 source_tables counts_json <&"${SNAPSHOT[0]}" ||
  fail "cannot count the source's rows: $(cat "$work/snapshot.err")"
[[ $source_tables =~ ^[0-9]{1,9}$ && $counts_json == \[* ]] ||
  fail "cannot count the source's rows: unexpected answer $(printf '%q' "${source_tables:0:80}")"
printf '%s\n' "$counts_json" >"$work/source.counts.json"

echo "promote: dumping the source ($source_tables tables)"
PGPASSWORD=${SRC_PASSWORD:-${PGPASSWORD:-}} "$pg_dump" --format=custom --no-owner --no-acl \
  --snapshot="$snapshot" --file="$work/source.dump" --dbname="$SRC_CONN" \
  || fail "pg_dump of the source"
printf '%s\n' "commit;" '\q' >&"${SNAPSHOT[1]}"
wait "$snapshot_pid" 2>/dev/null || true
snapshot_pid=""

restore_flags=(--no-owner --no-acl)
if [ "$target_tables" -gt 0 ]; then
  restore_flags+=(--clean --if-exists)
  echo "promote: restoring into the target, replacing the dump's objects (--force)"
else
  echo "promote: restoring into the empty target"
fi

# The restore and the comparison run in one transaction on the target, which commits only if
# every count matches: a failed restore or a mismatch leaves the target as it was. The expected
# counts come from the file named by PROMOTE_COUNTS (psql reads it into :'expected', which it
# quotes as a literal); each must be a whole number of rows, within bigint.
{
  echo 'begin;'
  "$pg_restore" "${restore_flags[@]}" --file=- "$work/source.dump"
  cat <<'SQL'
create temp table promote_expected (tbl text primary key, n bigint not null check (n >= 0))
  on commit drop;
\set expected `cat "$PROMOTE_COUNTS"`
insert into promote_expected
  select e ->> 0, (e ->> 1)::bigint from jsonb_array_elements(:'expected'::jsonb) as e;
SQL
  cat <<SQL
create temp view promote_actual as select format('%I.%I', n.nspname, c.relname) as tbl,
  (xpath('/row/c/text()', query_to_xml(format('select count(*) as c from %I.%I',
    n.nspname, c.relname), false, true, '')))[1]::text::bigint as n
  $tables_sql;
select 'count' || E'\t' || e.tbl || E'\t' || e.n || E'\t' || coalesce(a.n::text, 'none')
  from promote_expected e left join promote_actual a using (tbl) order by e.tbl;
select 'left' || E'\t' || a.tbl || E'\t' || a.n
  from promote_actual a where a.tbl not in (select tbl from promote_expected) order by a.tbl;
do \$\$ begin
  if exists (select from promote_expected e left join promote_actual a using (tbl)
             where a.n is distinct from e.n) then
    raise exception 'row counts differ: the restore is rolled back';
  end if;
end \$\$;
commit;
SQL
} >"$work/restore.sql" || fail "pg_restore cannot read the dump"

restore_rc=0
PROMOTE_COUNTS="$work/source.counts.json" psql_dst --file="$work/restore.sql" \
  >"$work/restore.out" 2>"$work/restore.err" || restore_rc=$?
mismatches=0
tables=0
while IFS=$'\t' read -r kind table expected actual; do
  case $kind in
    count)
      tables=$((tables + 1))
      if [ "$expected" = "$actual" ]; then
        printf '  ok        %-40s %12s rows\n' "$table" "$expected"
      else
        mismatches=$((mismatches + 1))
        printf '  MISMATCH  %-40s source %s rows, target %s\n' "$table" "$expected" "$actual"
      fi
      ;;
    left) printf '  left      %-40s %12s rows (only in the target)\n' "$table" "$expected" ;;
  esac
done <"$work/restore.out"
if [ "$mismatches" -gt 0 ]; then
  fail "row counts differ in $mismatches of $tables tables; the restore was rolled back, the target is unchanged"
fi
if [ "$restore_rc" -ne 0 ]; then
  sed 's/^/  /' "$work/restore.err" >&2
  fail "the restore into the target failed; it was rolled back, the target is unchanged"
fi
echo "promote: done: $tables tables, every row count matches the source"
