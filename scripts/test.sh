#!/usr/bin/env bash
# The one test command: formatting, lints, and every test against a real PostgreSQL.
#
# With DATABASE_URL set, tests create their databases on that server; without it a throwaway
# cluster is started here and removed afterwards.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh

step() { printf '\n== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

if [ -z "${DATABASE_URL:-}" ]; then
  step "starting a throwaway PostgreSQL"
  postgres_start_throwaway
fi

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
  # The tests mostly wait on sockets and subprocesses: more threads than cores keeps both busy.
  cargo nextest run --locked --no-fail-fast --test-threads "${TEST_THREADS:-8}"
else
  cargo test --locked --no-fail-fast -- --test-threads "${TEST_THREADS:-8}"
fi
