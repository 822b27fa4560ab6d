#!/usr/bin/env bash
# Tests scripts/db/backup.sh and scripts/db/promote.sh against two databases in a throwaway
# PostgreSQL cluster of their own. The scripts connect as a role whose password the server
# checks (scram-sha-256), and no output may contain that password.
#
#   scripts/db/test.sh      # needs the PostgreSQL server binaries, as scripts/test.sh does
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }

unset DATABASE_URL SOURCE_DATABASE_URL TARGET_DATABASE_URL PGPASSWORD
postgres_start_throwaway >/dev/null
admin_url=$DATABASE_URL
unset DATABASE_URL
port=${admin_url##*:}
port=${port%%/*}
work=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-dbtest.XXXXXX")
trap 'rm -rf "$work"; postgres_stop_throwaway' EXIT
psql=$PG_THROWAWAY_BINDIR/psql
admin() { "$psql" -X -q -At -v ON_ERROR_STOP=1 --dbname="$admin_url" "$@"; }
on() { # on DB SQL...: as the superuser, in database DB
  local db=$1
  shift
  "$psql" -X -q -At -v ON_ERROR_STOP=1 --dbname="${admin_url%/*}/$db" "$@"
}

# A password with characters that must be percent-encoded in a URL, and backslashes, raw and
# encoded, that printf '%b' used to interpret (\c ended its output), checked by the server.
digits=$RANDOM$RANDOM
password='Pw-'$digits'\c\n@s3cr:t%+'
encoded='Pw-'$digits'\c%5Cn%40s3cr%3At%25+'
admin -c "create role promoter login password '$password'"
for db in src dst lossy; do admin -c "create database $db owner promoter"; done
hba=$PG_CLUSTER_DIR/data/pg_hba.conf
{
  echo "host all promoter 127.0.0.1/32 scram-sha-256"
  echo "host all all 127.0.0.1/32 trust"
  echo "local all all trust"
} >"$hba"
admin -c 'select pg_reload_conf()' >/dev/null
url() { echo "postgres://promoter:$encoded@127.0.0.1:$port/$1"; }
query_url() { echo "postgresql://promoter@127.0.0.1:$port/$1?connect_timeout=5&password=$encoded"; }
wrong_url="postgres://promoter:not-the-password@127.0.0.1:$port/src"

# --- pgurl.sh -------------------------------------------------------------------------------
# shellcheck source=scripts/lib/pgurl.sh
source scripts/lib/pgurl.sh
if pgurl_split "$(url src)" U && [ "$U_PASSWORD" = "$password" ] \
  && [ "$U_CONN" = "postgres://promoter@127.0.0.1:$port/src" ] \
  && [ "$U_SHOWN" = "postgres://promoter:***@127.0.0.1:$port/src" ]; then
  pass "pgurl: a password before '@' is decoded exactly (\\c, \\n, %, +, @, :) and leaves the URL"
else fail "pgurl: password before '@' (got $(printf '%q' "${U_PASSWORD:-}"), conn ${U_CONN:-})"; fi
if pgurl_split "$(query_url src)" Q && [ "$Q_PASSWORD" = "$password" ] \
  && [ "$Q_CONN" = "postgresql://promoter@127.0.0.1:$port/src?connect_timeout=5" ]; then
  pass "pgurl: a ?password= parameter is decoded exactly and leaves the URL"
else fail "pgurl: ?password= parameter (got $(printf '%q' "${Q_PASSWORD:-}"), conn ${Q_CONN:-})"; fi
if ! pgurl_split "postgres://promoter:a%4@h/db" BAD && ! pgurl_split "postgres://promoter:a%00b@h/db" BAD; then
  pass "pgurl: a broken %-escape or %00 is refused"
else fail "pgurl: accepted a broken %-escape or %00"; fi

# The source: two schemas, a foreign key, sequences, and rows.
on src <<'SQL'
set role promoter;
create schema market;
create table market.instruments (id bigserial primary key, symbol text not null unique);
create table market.bars (
  instrument_id bigint not null references market.instruments (id),
  day date not null,
  close numeric(12, 4) not null,
  primary key (instrument_id, day)
);
create table public.notes (id serial primary key, body text not null);
insert into market.instruments (symbol) select 'SYM' || i from generate_series(1, 50) as i;
insert into market.bars
  select i.id, date '2026-01-01' + d, 100 + d from market.instruments i, generate_series(0, 39) as d;
insert into public.notes (body) values ('one'), ('two'), ('three');
SQL

log=$work/all.log
run() { # run NAME command...: output in $work/NAME.out (and the log), exit code in $rc
  local name=$1
  shift
  rc=0
  "$@" >"$work/$name.out" 2>&1 || rc=$?
  cat "$work/$name.out" >>"$log"
}
says() { grep -q -- "$2" "$work/$1.out"; }
show() { sed 's/^/      /' "$work/$1.out"; }
tables_in() { on "$1" -c "select count(*) from pg_tables where schemaname in ('public', 'market')"; }
rows_in() { on "$1" -c "select count(*) from $2"; }

# --- backup ---------------------------------------------------------------------------------
run backup-usage env -u DATABASE_URL scripts/db/backup.sh
if [ "$rc" = 2 ] && says backup-usage "DATABASE_URL is not set"; then
  pass "backup without DATABASE_URL: exit 2, names the variable"
else fail "backup without DATABASE_URL (exit $rc)"; show backup-usage; fi

run backup env DATABASE_URL="$(url src)" scripts/db/backup.sh --output "$work/src.dump"
if [ "$rc" = 0 ] && [ -s "$work/src.dump" ] \
  && "$PG_THROWAWAY_BINDIR/pg_restore" --list "$work/src.dump" | grep -q 'TABLE DATA market bars'; then
  pass "backup --output: the file exists and pg_restore --list reads it"
else fail "backup --output (exit $rc)"; show backup; fi

mkdir "$work/backups"
run backup-default env DATABASE_URL="$(url src)" BACKUP_DIR="$work/backups" scripts/db/backup.sh
written=$(find "$work/backups" -name 'sigmasight-*.dump' | head -n 1)
if [ "$rc" = 0 ] && [[ $(basename "${written:-none}") =~ ^sigmasight-[0-9]{8}T[0-9]{6}Z\.dump$ ]]; then
  pass "backup without --output: named by the UTC time ($(basename "$written"))"
else fail "backup default name (exit $rc, file ${written:-none})"; show backup-default; fi

run backup-exists env DATABASE_URL="$(url src)" scripts/db/backup.sh --output "$work/src.dump"
if [ "$rc" = 1 ] && says backup-exists "already exists"; then
  pass "backup refuses to overwrite an existing file"
else fail "backup over an existing file (exit $rc)"; show backup-exists; fi

run backup-query env DATABASE_URL="$(query_url src)" scripts/db/backup.sh --output "$work/query.dump"
if [ "$rc" = 0 ] && [ -s "$work/query.dump" ]; then
  pass "backup with the password in ?password=: the server accepts it"
else fail "backup with ?password= (exit $rc)"; show backup-query; fi

run backup-wrong env DATABASE_URL="$wrong_url" scripts/db/backup.sh --output "$work/wrong.dump"
if [ "$rc" = 1 ] && [ ! -e "$work/wrong.dump" ] && [ ! -e "$work/wrong.dump.partial" ]; then
  pass "backup with a wrong password fails and leaves no file (the password is really checked)"
else fail "backup with a wrong password (exit $rc)"; show backup-wrong; fi

# --- promote --------------------------------------------------------------------------------
export SOURCE_DATABASE_URL TARGET_DATABASE_URL
SOURCE_DATABASE_URL=$(url src)
TARGET_DATABASE_URL=$(url dst)

run promote-usage env -u TARGET_DATABASE_URL scripts/db/promote.sh
if [ "$rc" = 2 ] && says promote-usage "TARGET_DATABASE_URL is not set"; then
  pass "promote without TARGET_DATABASE_URL: exit 2, names the variable"
else fail "promote without TARGET_DATABASE_URL (exit $rc)"; show promote-usage; fi

run promote-dry scripts/db/promote.sh --dry-run
if [ "$rc" = 0 ] && says promote-dry "market.bars  *2000 rows" && [ "$(tables_in dst)" = 0 ]; then
  pass "promote --dry-run lists the source's counts and leaves the target empty"
else fail "promote --dry-run (exit $rc, target tables $(tables_in dst))"; show promote-dry; fi

run promote scripts/db/promote.sh
if [ "$rc" = 0 ] && says promote "every row count matches" \
  && [ "$(rows_in dst market.bars)" = 2000 ] && [ "$(rows_in dst market.instruments)" = 50 ] \
  && [ "$(rows_in dst public.notes)" = 3 ]; then
  pass "promote into an empty target: 3 tables, counts match"
else fail "promote into an empty target (exit $rc)"; show promote; fi

on dst -c "insert into public.notes (body) values ('only in the target')"
run promote-refused scripts/db/promote.sh
if [ "$rc" = 1 ] && says promote-refused "not empty" && says promote-refused "--force" \
  && [ "$(rows_in dst public.notes)" = 4 ]; then
  pass "promote into a non-empty target without --force: refused, target unchanged"
else fail "promote into a non-empty target without --force (exit $rc)"; show promote-refused; fi

run promote-dry-force scripts/db/promote.sh --dry-run --force
if [ "$rc" = 0 ] && says promote-dry-force "would replace" && [ "$(rows_in dst public.notes)" = 4 ]; then
  pass "promote --dry-run --force into a non-empty target: says what it would replace, changes nothing"
else fail "promote --dry-run --force (exit $rc)"; show promote-dry-force; fi

on src -c "insert into market.bars select id, date '2026-03-01', 1 from market.instruments"
run promote-force scripts/db/promote.sh --force
if [ "$rc" = 0 ] && says promote-force "every row count matches" \
  && [ "$(rows_in dst market.bars)" = 2050 ] && [ "$(rows_in dst public.notes)" = 3 ]; then
  pass "promote --force into a non-empty target: replaced, counts match the source"
else fail "promote --force (exit $rc)"; show promote-force; fi

run promote-same env TARGET_DATABASE_URL="$SOURCE_DATABASE_URL" scripts/db/promote.sh
if [ "$rc" = 2 ] && says promote-same "same database"; then
  pass "promote refuses a target that is the source"
else fail "promote with source = target (exit $rc)"; show promote-same; fi

# A target that silently loses rows: an event trigger gives every new public.notes a trigger
# that discards inserted rows, so the restore succeeds but the counts cannot match.
on lossy <<'SQL'
create schema lossy;
create function lossy.discard() returns trigger language plpgsql as $$ begin return null; end $$;
create function lossy.on_create() returns event_trigger language plpgsql as $$
declare command record;
begin
  for command in select * from pg_event_trigger_ddl_commands() loop
    if command.object_identity = 'public.notes' then
      create trigger discard before insert on public.notes for each row execute function lossy.discard();
    end if;
  end loop;
end $$;
grant usage on schema lossy to promoter;
create event trigger lossy on ddl_command_end when tag in ('CREATE TABLE') execute function lossy.on_create();
SQL
run promote-lossy env TARGET_DATABASE_URL="$(url lossy)" scripts/db/promote.sh
if [ "$rc" = 1 ] && says promote-lossy "MISMATCH  public.notes" \
  && says promote-lossy "row counts differ in 1 of 3 tables" && [ "$(tables_in lossy)" = 0 ]; then
  pass "promote into a target that loses rows: the mismatch is named, exit 1, the restore rolled back"
else fail "promote into a target that loses rows (exit $rc)"; show promote-lossy; fi

# A table whose name carries SQL after a tab. The counts used to travel as tab-separated lines
# spliced into SQL, so the rest of this name ran on the target: it committed the restore and
# dropped a table that only the target has.
evil=$'public."notes\t0); commit; drop table public.victim; --"'
on dst -c "set role promoter; create table public.victim (id int)"
on src -c "set role promoter; create table $evil (id int)"
run promote-injection scripts/db/promote.sh --force
if [ "$rc" = 1 ] && says promote-injection "control character" \
  && says promote-injection 'public."notes?0); commit; drop table public.victim' \
  && [ "$(on dst -c "select to_regclass('public.victim') is not null")" = t ] \
  && [ "$(rows_in dst public.notes)" = 3 ] && [ "$(rows_in dst market.bars)" = 2050 ]; then
  pass "promote refuses a source table named with a tab and SQL, naming it; the target is unchanged"
else fail "promote with a table name carrying SQL (exit $rc)"; show promote-injection; fi
on src -c "drop table $evil"

# --- secrets --------------------------------------------------------------------------------
if grep -qF -e "$password" -e "$encoded" "$log"; then
  fail "a password appears in the scripts' output"
  grep -nF -e "$password" -e "$encoded" "$log" | sed 's/^/      /'
elif grep -qF 'promoter:***@' "$log"; then
  pass "no password in any output; URLs are shown as user:***@host"
else fail "URLs are not shown redacted"; fi

echo "db scripts: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
