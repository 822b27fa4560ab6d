# shellcheck shell=bash
# Throwaway PostgreSQL clusters for tests and benchmarks: initdb into a temporary directory,
# start on a free loopback port, remove everything on exit. Source this file, then call
# `postgres_start_throwaway`; it exports DATABASE_URL (superuser, trust auth on loopback).
#
# initdb and postgres refuse to run as root; as root they run as the `postgres` user.

postgres_bindir() {
  local dir
  for dir in "$(pg_config --bindir 2>/dev/null)" /usr/lib/postgresql/*/bin; do
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

# A TCP port nothing listens on, between 20000 and 59999.
postgres_free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

postgres_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# postgres_start_throwaway [extra postgres -c settings...]
postgres_start_throwaway() {
  local bindir
  if ! bindir=$(postgres_bindir); then
    echo "error: the PostgreSQL server (initdb, pg_ctl) is not installed." >&2
    echo "       Install it (Debian/Ubuntu: apt-get install postgresql), or set DATABASE_URL" >&2
    echo "       to a server where the tests may create databases." >&2
    return 1
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "error: running as root, but there is no 'postgres' user to run the server as." >&2
    return 1
  fi
  PG_THROWAWAY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_THROWAWAY_DIR"
  fi
  trap postgres_stop_throwaway EXIT
  postgres_as_owner "$bindir/initdb" -D "$PG_THROWAWAY_DIR/data" -U postgres -A trust \
    -E UTF8 --locale=C --no-sync >"$PG_THROWAWAY_DIR/initdb.log" 2>&1 || {
    cat "$PG_THROWAWAY_DIR/initdb.log" >&2
    return 1
  }
  local port settings="" setting
  # Durability is pointless in a cluster deleted at exit; dropping it makes tests faster.
  for setting in listen_addresses=127.0.0.1 fsync=off synchronous_commit=off \
    full_page_writes=off max_connections=400 "$@"; do
    settings+=" -c $setting"
  done
  for _ in 1 2 3; do
    port=$(postgres_free_port) || return 1
    if postgres_as_owner "$bindir/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -l "$PG_THROWAWAY_DIR/server.log" -w -t 60 \
      -o "-p $port -k $PG_THROWAWAY_DIR $settings" start >/dev/null; then
      export PG_THROWAWAY_BINDIR="$bindir"
      export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
      echo "throwaway PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
      return 0
    fi
  done
  cat "$PG_THROWAWAY_DIR/server.log" >&2
  return 1
}

postgres_stop_throwaway() {
  if [ -n "${PG_THROWAWAY_DIR:-}" ] && [ -d "$PG_THROWAWAY_DIR" ]; then
    postgres_as_owner "$PG_THROWAWAY_BINDIR/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PG_THROWAWAY_DIR"
  fi
}
