#!/usr/bin/env bash
# The one test command: formatting, lints, and every test against a real PostgreSQL.
#
# With DATABASE_URL set, tests create their databases on that server; without it a throwaway
# cluster is started here and removed afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# The Python tools (hadolint, check-jsonschema, zizmor, schemathesis, kubernetes-validate,
# kubectl) live in a virtual environment, .venv (scripts/python-tools.txt says how to make it;
# .ci/run does): it comes first on PATH when it exists.
if [ -x .venv/bin/python3 ]; then
  export PATH="$PWD/.venv/bin:$PATH"
fi

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "no OpenSSL in the dependency tree"
if cargo tree --locked --target all -i openssl-sys >/dev/null 2>&1; then
  cargo tree --locked --target all -i openssl-sys
  echo "error: openssl-sys is in the dependency tree; TLS must come from rustls" >&2
  exit 1
fi
echo "openssl-sys: absent"

step "lint: Dockerfile, dependencies, shell scripts, Railway files, Kubernetes manifests, GitHub workflows, compose file"
# hadolint and cargo deny (licences, bans, sources): offline and a few seconds. The advisories
# and the image scan need the network: scripts/security-check.sh without --offline.
scripts/security-check.sh --offline
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck -x scripts/*.sh scripts/lib/*.sh scripts/db/*.sh .ci/run && echo "shellcheck: clean"
else
  echo "shellcheck: skipped (not installed: apt-get install shellcheck)"
fi
scripts/check-railway.sh
# deploy/kubernetes: rendered, schema-checked, the restricted Pod Security Standard field by
# field, and a copy with one violation per case must be rejected.
scripts/check-kubernetes.sh
scripts/check-workflows.sh
# The pin check must also reject what it exists to catch: a copy with one action on a tag.
unpinned=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-workflows.XXXXXX")
mkdir "$unpinned/workflows"
sed -E '0,/uses: actions\/checkout@[0-9a-f]{40}.*/s//uses: actions\/checkout@v5/' \
  .github/workflows/ci.yml >"$unpinned/workflows/ci.yml"
if CI=false scripts/check-workflows.sh "$unpinned" >"$unpinned/out" 2>&1 \
  || ! grep -q 'not pinned.*actions/checkout@v5$' "$unpinned/out"; then
  cat "$unpinned/out"
  echo "error: scripts/check-workflows.sh accepted actions/checkout@v5 (a tag, not a SHA)" >&2
  exit 1
fi
rm -rf "$unpinned"
echo "check-workflows: rejects an action pinned by tag"

# --- image verification (scripts/verify-image.sh, scripts/rollback.sh's registry mode) ------
# Offline, against a fake cosign: Sigstore and GHCR are not reachable here. The real signature
# check runs in the GitHub workflow right after it signs (docs/ci.md).
scripts/test-verify-image.sh
# ---------------------------------------------------------------------------------------------

# docker-compose.yml: valid, and every setting of src/config/settings.rs passes through to api, etl
# and the replicas.
scripts/check-compose.sh

if [ -z "${DATABASE_URL:-}" ]; then
  step "starting a throwaway PostgreSQL"
  postgres_start_throwaway
fi
if [ -z "${TLS_DATABASE_URL:-}" ]; then
  step "starting a throwaway PostgreSQL that accepts TLS only"
  postgres_start_tls_throwaway
fi

step "sqlx: .sqlx/ matches the statements in src/ and the migrations"
scripts/check-sqlx.sh
# The check must also refuse what it exists to catch: a copy with one file missing and one
# altered (the statements are compiled once more, online: a few seconds).
stale=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-sqlx-stale.XXXXXX")
cp .sqlx/*.json "$stale/"
removed=$(find "$stale" -name '*.json' | sort | head -1)
altered=$(find "$stale" -name '*.json' | sort | tail -1)
rm "$removed"
sed -i 's/"nullable"/"nullable" /' "$altered"
if scripts/check-sqlx.sh "$stale" >"$stale.out" 2>&1 \
  || ! grep -q "missing from .*${removed##*/}" "$stale.out" \
  || ! grep -q "changed: .*${altered##*/}" "$stale.out"; then
  cat "$stale.out"
  echo "error: scripts/check-sqlx.sh accepted a .sqlx/ with a file missing and one altered" >&2
  exit 1
fi
rm -rf "$stale" "$stale.out"
echo "check-sqlx: refuses a stale .sqlx/"

step "db scripts: backup and promote against a throwaway cluster"
if postgres_bindir >/dev/null || [ "${CI:-}" = true ]; then
  scripts/db/test.sh
else
  echo "db scripts: skipped (the PostgreSQL server binaries are not installed)"
fi

step "tests"
# tests/api/browser.rs needs Chromium; without one it passes without running (a test cannot say
# `skipped` itself), so this says it. BROWSER_TESTS=required (CI) makes its absence a failure.
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 \
  && ! command -v chromium-browser >/dev/null 2>&1 && ! command -v google-chrome >/dev/null 2>&1; then
  if [ "${BROWSER_TESTS:-auto}" = required ]; then
    echo "error: BROWSER_TESTS=required but no Chromium is installed (apt-get install chromium)" >&2
    exit 1
  fi
  echo "browser test: skipped (no Chromium: apt-get install chromium)"
fi
if cargo nextest --version >/dev/null 2>&1; then
  # The tests mostly wait on sockets and subprocesses: more threads than cores keeps both busy.
  cargo nextest run --locked --no-fail-fast --test-threads "${TEST_THREADS:-8}"
else
  cargo test --locked --no-fail-fast -- --test-threads "${TEST_THREADS:-8}"
fi

step "api fuzz: schemathesis against /api/v1/openapi.json"
scripts/fuzz-api.sh

# Image tests need a Docker engine. IMAGE_TESTS=required (CI) makes its absence a failure;
# IMAGE_TESTS=skip skips them; by default they run when an engine answers.
bench_docker=skip
case "${IMAGE_TESTS:-auto}" in
  skip) echo "image tests: skipped (IMAGE_TESTS=skip)" ;;
  *)
    if PATH="/usr/bin:$PATH" docker info >/dev/null 2>&1; then
      step "image tests"
      scripts/image-test.sh
      bench_docker=required
    elif [ "${IMAGE_TESTS:-auto}" = required ]; then
      echo "error: IMAGE_TESTS=required but no Docker engine answers" >&2
      exit 1
    else
      echo "image tests: skipped (no Docker engine answers; start one to run them)"
    fi
    ;;
esac

# The benchmark, once through in a few seconds a step: every figure must be measured, with no
# HTTP error and an idempotent ETL rerun; the targets are not judged (scripts/bench.sh does
# that). Needs wrk and pgbench. BENCH_SMOKE=required (CI) makes their absence a failure.
step "benchmark smoke run: scripts/bench.sh --quick"
if command -v wrk >/dev/null 2>&1 && command -v pgbench >/dev/null 2>&1; then
  scripts/bench.sh --quick --docker "$bench_docker"
elif [ "${BENCH_SMOKE:-auto}" = required ]; then
  echo "error: BENCH_SMOKE=required but wrk or pgbench is missing (apt-get install wrk postgresql)" >&2
  exit 1
else
  echo "benchmark smoke run: skipped (wrk or pgbench missing: apt-get install wrk postgresql)"
fi

# Any failure above has already stopped the script (set -e) with its own error.
step "summary"
echo "test.sh: PASSED (every step above; a step that was skipped says so where it ran)"
