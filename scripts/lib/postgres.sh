# shellcheck shell=bash
# Throwaway PostgreSQL clusters for tests and benchmarks: initdb into a temporary directory,
# start on a free loopback port, remove everything on exit. Source this file, then call
#
#   postgres_start_throwaway       # exports DATABASE_URL (superuser, trust auth on loopback)
#   postgres_start_durable_throwaway  # the same, with fsync and synchronous_commit on
#   postgres_start_tls_throwaway   # exports TLS_DATABASE_URL, TLS_CA_FILE, TLS_WRONG_CA_FILE:
#                                  # a cluster that accepts TLS connections only
#
# initdb and postgres refuse to run as root; as root they run as the `postgres` user.

PG_THROWAWAY_DIRS=()

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

# postgres_init_cluster: creates and initialises a cluster directory in PG_CLUSTER_DIR.
postgres_init_cluster() {
  if ! PG_THROWAWAY_BINDIR=$(postgres_bindir); then
    echo "error: the PostgreSQL server (initdb, pg_ctl) is not installed." >&2
    echo "       Install it (Debian/Ubuntu: apt-get install postgresql), or set DATABASE_URL" >&2
    echo "       to a server where the tests may create databases." >&2
    return 1
  fi
  export PG_THROWAWAY_BINDIR
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    echo "error: running as root, but there is no 'postgres' user to run the server as." >&2
    return 1
  fi
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-pg.XXXXXX")
  PG_THROWAWAY_DIRS+=("$dir")
  trap postgres_stop_throwaway EXIT
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir"
  fi
  postgres_as_owner "$PG_THROWAWAY_BINDIR/initdb" -D "$dir/data" -U postgres -A trust \
    -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  PG_CLUSTER_DIR=$dir
}

# postgres_run_cluster DIR [setting...]: starts the cluster on a free port, in PG_CLUSTER_PORT.
postgres_run_cluster() {
  local dir=$1 port settings="" setting
  shift
  # Durability is pointless in a cluster deleted at exit; dropping it makes tests faster.
  for setting in listen_addresses=127.0.0.1 fsync=off synchronous_commit=off \
    full_page_writes=off max_connections=400 "$@"; do
    settings+=" -c $setting"
  done
  for _ in 1 2 3; do
    port=$(postgres_free_port) || return 1
    if postgres_as_owner "$PG_THROWAWAY_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir $settings" start >/dev/null; then
      PG_CLUSTER_PORT=$port
      return 0
    fi
  done
  cat "$dir/server.log" >&2
  return 1
}

postgres_start_throwaway() {
  postgres_init_cluster || return 1
  postgres_run_cluster "$PG_CLUSTER_DIR" || return 1
  postgres_export_url "throwaway"
}

# postgres_export_url LABEL: DATABASE_URL for the cluster just started, and a line saying so.
postgres_export_url() {
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_CLUSTER_PORT/postgres"
  echo "$1 PostgreSQL $("$PG_THROWAWAY_BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_CLUSTER_PORT"
}

# A throwaway cluster that commits durably, as a production server does (the benchmark's loads):
# these settings win over the defaults above, the server taking the last of each -c.
postgres_start_durable_throwaway() {
  postgres_init_cluster || return 1
  postgres_run_cluster "$PG_CLUSTER_DIR" fsync=on synchronous_commit=on full_page_writes=on || return 1
  postgres_export_url "throwaway durable"
}

# A cluster that refuses plain-text TCP connections, with a test CA made here: TLS_CA_FILE
# signed the server's certificate (for 127.0.0.1 and localhost), TLS_WRONG_CA_FILE did not.
postgres_start_tls_throwaway() {
  local dir tls
  command -v openssl >/dev/null || {
    echo "error: openssl (the command-line tool) is needed to make the test CA" >&2
    return 1
  }
  postgres_init_cluster || return 1
  dir=$PG_CLUSTER_DIR
  tls="$dir/tls"
  mkdir -p "$tls"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=sigmasight test CA" \
    -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=some other CA" \
    -keyout "$tls/wrong-ca.key" -out "$tls/wrong-ca.pem" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$tls/san.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
    -CAcreateserial -days 2 -extfile "$tls/san.ext" -out "$tls/server.crt" 2>/dev/null
  chmod 600 "$tls/server.key"
  chmod 755 "$tls"
  if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$tls"
  fi
  # TLS or nothing over TCP; the Unix socket stays open for administration.
  postgres_as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<'HBA'
local     all all              trust
hostssl   all all 127.0.0.1/32 trust
hostnossl all all 127.0.0.1/32 reject
HBA
  postgres_run_cluster "$dir" ssl=on "ssl_cert_file=$tls/server.crt" \
    "ssl_key_file=$tls/server.key" || return 1
  export TLS_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_CLUSTER_PORT/postgres"
  export TLS_CA_FILE="$tls/ca.pem" TLS_WRONG_CA_FILE="$tls/wrong-ca.pem"
  echo "throwaway PostgreSQL with TLS only on 127.0.0.1:$PG_CLUSTER_PORT"
}

postgres_stop_throwaway() {
  local dir
  for dir in "${PG_THROWAWAY_DIRS[@]}"; do
    if [ -d "$dir" ]; then
      postgres_as_owner "$PG_THROWAWAY_BINDIR/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
      rm -rf "$dir"
    fi
  done
  PG_THROWAWAY_DIRS=()
}
