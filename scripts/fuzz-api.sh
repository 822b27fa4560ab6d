#!/usr/bin/env bash
# Schema-driven fuzz of the public API: schemathesis generates requests from
# /api/v1/openapi.json (with a bearer token), in every phase (examples, coverage, fuzzing, and
# stateful sequences that follow the document's links), and runs every check: no 5xx, no status,
# header or body the document does not list, every request the document allows accepted and
# every request it rules out refused, resources reachable after creation and gone after deletion,
# authentication not ignored. It ends with one summary line and exits non-zero on any failure.
#
# Needs DATABASE_URL (a server where a database may be created, as for the tests), python3 (the
# standard library only), and schemathesis (`st`, pinned in scripts/python-tools.txt: in .venv,
# which scripts/test.sh puts on PATH, or on PATH, or SCHEMATHESIS set to its path). Without
# schemathesis it says `skipped`, unless FUZZ=required.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

st=${SCHEMATHESIS:-st}
if ! command -v "$st" >/dev/null 2>&1; then
  if [ "${FUZZ:-}" = required ]; then
    echo "error: schemathesis ($st) is not installed and FUZZ=required" >&2
    exit 1
  fi
  echo "api fuzz: skipped (schemathesis not installed: scripts/python-tools.txt, into .venv)"
  exit 0
fi
: "${DATABASE_URL:?DATABASE_URL must name a server where a database may be created}"

# test.sh's throwaway cluster exports its binaries' directory; psql may be only there.
psql=$(command -v psql || echo "${PG_THROWAWAY_BINDIR:-}/psql")
cargo build --locked --quiet
binary=target/debug/sigmasight
admin_url=$DATABASE_URL
name="sigmasight_fuzz_$$"
database=$(python3 -c 'import sys, urllib.parse as u; p = u.urlparse(sys.argv[1]); print(p._replace(path="/" + sys.argv[2]).geturl())' "$admin_url" "$name")
"$psql" -q "$admin_url" -c "CREATE DATABASE \"$name\""
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
workdir=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-fuzz.XXXXXX")
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  "$psql" -q "$admin_url" -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" || true
  rm -rf "$workdir"
}
trap cleanup EXIT

export DATABASE_URL="$database" PORT="$port" LOG_LEVEL=warn
SECRET_KEY="fuzz-only-secret-key-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export SECRET_KEY
"$binary" migrate >/dev/null
password="fuzz password $(python3 -c 'import secrets; print(secrets.token_hex(8))')"
printf '%s\n' "$password" | "$binary" user create --email fuzz@example.com --admin >/dev/null
DEMO_PASSWORD="$password" "$binary" seed --demo >/dev/null
"$binary" serve >"$workdir/serve.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 100); do
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$base/health" 2>/dev/null && break
  sleep 0.1
done
token=$(python3 - "$base" "$password" <<'PY'
import json, sys, urllib.request
request = urllib.request.Request(
    sys.argv[1] + "/api/v1/auth/login",
    data=json.dumps({"email": "fuzz@example.com", "password": sys.argv[2]}).encode(),
    headers={"Content-Type": "application/json"},
)
print(json.load(urllib.request.urlopen(request, timeout=10))["access_token"])
PY
)

# The login route is rate-limited (10 attempts a minute per client and per email): most of the
# fuzz's logins meet its 429 (schemathesis may warn "Rate limited"), which the document lists and
# every check counts as an answer, not a failure; tests/api/auth.rs covers login's own answers.
# Generated credentials never match the fuzz user, so schemathesis also warns "Authentication
# failed: 1 operation returned only 401/403 responses" about POST /api/v1/auth/login: expected,
# and the reason its summary may read "1 warning"; every other operation runs with the token.
# --max-time: past the examples and coverage phases, fuzzing and stateful sequences repeat until
# the budget is spent (about 2,000 stateful scenarios in 2 minutes on 2 cores, every link
# followed), so the run's length is fixed whatever the machine. --generation-database none: no
# example store in the working tree; each run starts afresh.
status=0
"$st" run "$base/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks all \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${FUZZ_EXAMPLES:-50}" \
  --max-time "${FUZZ_SECONDS:-120}" \
  --generation-database none \
  --no-color 2>&1 | tee "$workdir/schemathesis.log" || status=$?
# Schemathesis's closing line ("No issues found in 120.02s", "2 failures in ...") and its count
# of test cases ("7687 generated, 7687 passed, 34 skipped").
verdict=$(grep -E '^=+ .+ =+$' "$workdir/schemathesis.log" | tail -n 1 | tr -d '=' | xargs || true)
cases=$(grep -E '^ +[0-9]+ generated' "$workdir/schemathesis.log" | tail -n 1 | xargs || true)
summary="${verdict:-no summary}; test cases: ${cases:-none counted}"
if [ "$status" -ne 0 ]; then
  echo "api fuzz: FAILED (schemathesis exit $status): $summary" >&2
  exit 1
fi
echo "api fuzz: passed, every check in every phase: $summary"
