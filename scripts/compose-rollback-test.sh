#!/usr/bin/env bash
# Compose with the README's own command, on two commits: each build records its commit, the
# first build stays addressable by its commit once the second took its tag, and rolling back to
# it serves it again; the settings of .env reach the containers, and those set nowhere stay unset.
#
#   1. A copy of the checkout, `docker compose up -d --build` with GIT_COMMIT set to the checkout's
#      HEAD (as image-test.sh's compose step builds it, whose cache this build reuses): the API
#      reports that commit.
#   2. The copy becomes a git repository of its own with one throwaway commit, and a .env; the
#      plain `docker compose up -d --build` (no GIT_COMMIT: build.rs reads .git) reports the new
#      commit, and `sigmasight config` in api shows the .env values and the defaults of the rest.
#   3. `scripts/rollback.sh list` shows both commits; `scripts/rollback.sh <first commit>`
#      brings the first build back: /api/v1/health reports the first commit.
#
#   scripts/compose-rollback-test.sh                     # base images from a registry
#   BASE_IMAGES=local scripts/compose-rollback-test.sh   # stand-ins (scripts/base-images.sh)
#
# Its images live in a repository of their own (API_IMAGE), so sigmasight-backend:local is left
# alone. Ends with "compose-rollback: N passed, N failed"; exits 1 if anything failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh
# shellcheck source=scripts/lib/image-test.sh
source scripts/lib/image-test.sh

RUN_ID="sigmasight-rbtest-$$"
export API_IMAGE="$RUN_ID"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$RUN_ID.XXXXXX")
REPO="$WORK/repo"

in_repo() { (cd "$REPO" && "$@"); }
project() { in_repo "${compose[@]}" -p "$RUN_ID" "$@"; }

cleanup() {
  if [ -d "$REPO" ]; then
    project down -v --remove-orphans >/dev/null 2>&1 || true
  fi
  docker image ls "$API_IMAGE" --format '{{.Repository}}:{{.Tag}}' | xargs -r docker image rm >/dev/null 2>&1 || true
  docker image ls -q --filter dangling=true --filter "label=sigmasight.compose.image=$API_IMAGE" |
    xargs -r docker image rm >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${BASE_IMAGES:-}" = local ]; then
  use_local_base_images >/dev/null
fi
# As with the README's command: the commit comes from the build itself, the image is tagged
# `local`, and no setting comes from the caller's environment.
unset GIT_COMMIT VERSION IMAGE_TAG COMPOSE_ARGS COMPOSE_PROJECT_NAME TRUSTED_PROXY_HOPS \
  ACCESS_TOKEN_TTL_SECONDS HEADER_READ_TIMEOUT_SECONDS ETL_BENCHMARK_SYMBOLS SECRET_KEY DEMO_PASSWORD
first=$(git rev-parse HEAD 2>/dev/null) || {
  echo "FAIL  not a git checkout: the test needs the commit checked out"
  echo "compose-rollback: 0 passed, 1 failed"
  exit 1
}
API_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export API_PORT
health="http://127.0.0.1:$API_PORT/api/v1/health"

# The commit /api/v1/health reports once it answers 200 (at most 90 s), else nothing.
served_commit() {
  local body
  for _ in $(seq 1 90); do
    if body=$(curl -fsS "$health" 2>/dev/null); then
      python3 -c 'import json, sys; print(json.loads(sys.argv[1])["commit"])' "$body"
      return
    fi
    sleep 1
  done
}
# `sigmasight config` with the environment compose gives SERVICE: "KEY=VALUE  # source" lines.
config_of() {
  local service=$1
  project --profile etl run --rm --no-deps -T "$service" config 2>&1
}
says() { grep -qxF -- "$1" "$2"; }

# --- 1. the checkout's commit, GIT_COMMIT given -----------------------------------------------
step "first build: the checkout's HEAD ($first), GIT_COMMIT given"
mkdir -p "$REPO"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$REPO"
# The context's .git files as the checkout has them, so the build context matches image-test.sh's
# compose step and reuses its layers.
if [ -d .git ]; then
  git_files=(.git/HEAD .git/refs/heads)
  [ -f .git/packed-refs ] && git_files+=(.git/packed-refs)
  tar -cf - "${git_files[@]}" | tar -xf - -C "$REPO"
fi
started=$SECONDS
if GIT_COMMIT=$first project up -d --build >"$WORK/first.log" 2>&1; then
  pass "compose up --build ($((SECONDS - started)) s)"
else
  tail -n 40 "$WORK/first.log"
  fail "compose up --build"
fi
check "/api/v1/health reports the first commit" [ "$(served_commit)" = "$first" ]
config_of api >"$WORK/config-first"
check "with no .env, a setting set nowhere keeps the app's default (TRUSTED_PROXY_HOPS)" \
  says "TRUSTED_PROXY_HOPS=0  # default" "$WORK/config-first"
check "with no .env, ACCESS_TOKEN_TTL_SECONDS keeps the app's default" \
  says "ACCESS_TOKEN_TTL_SECONDS=3600  # default" "$WORK/config-first"

# --- 2. a throwaway commit, the plain command ------------------------------------------------
step "second build: a throwaway commit, plain docker compose up --build"
rm -rf "$REPO/.git"
in_repo git init -q
in_repo git add -A
in_repo git -c user.name=compose-rollback-test -c user.email=test@localhost \
  commit -q --no-gpg-sign -m "throwaway commit of scripts/compose-rollback-test.sh"
second=$(in_repo git rev-parse HEAD)
echo "second commit: $second"
cat >"$REPO/.env" <<'EOF'
ACCESS_TOKEN_TTL_SECONDS=120
HEADER_READ_TIMEOUT_SECONDS=7
ETL_BENCHMARK_SYMBOLS=QQQ
DEMO_PASSWORD=compose-rollback-demo-password
EOF
started=$SECONDS
if project up -d --build >"$WORK/second.log" 2>&1; then
  pass "compose up --build ($((SECONDS - started)) s)"
else
  tail -n 40 "$WORK/second.log"
  fail "compose up --build"
fi
check "/api/v1/health reports the second commit, read from .git by the build" [ "$(served_commit)" = "$second" ]
config_of api >"$WORK/config-second"
check ".env's ACCESS_TOKEN_TTL_SECONDS reaches api" says "ACCESS_TOKEN_TTL_SECONDS=120  # environment" "$WORK/config-second"
check ".env's HEADER_READ_TIMEOUT_SECONDS reaches api" says "HEADER_READ_TIMEOUT_SECONDS=7  # environment" "$WORK/config-second"
check "a setting set nowhere stays unset in api (TRUSTED_PROXY_HOPS: default)" \
  says "TRUSTED_PROXY_HOPS=0  # default" "$WORK/config-second"
config_of etl >"$WORK/config-etl"
check ".env's ETL_BENCHMARK_SYMBOLS reaches etl" says "ETL_BENCHMARK_SYMBOLS=QQQ  # environment" "$WORK/config-etl"
check "etl does not get the API's SECRET_KEY" says "SECRET_KEY=(unset: serve refuses to start)  # default" "$WORK/config-etl"

# --- 3. list, then roll back by commit --------------------------------------------------------
step "scripts/rollback.sh list, then roll back to the first commit"
in_repo scripts/rollback.sh list >"$WORK/list" 2>&1 || true
cat "$WORK/list"
check "list shows the first build, whose tag the second build took, with its commit" \
  grep -q "^$API_IMAGE:${first:0:12} .* $first " "$WORK/list"
check "list shows the second build (local) with the commit its binary reports" \
  grep -q "^$API_IMAGE:local .* $second " "$WORK/list"
if in_repo env COMPOSE_ARGS="-p $RUN_ID" scripts/rollback.sh "$first" >"$WORK/rollback.log" 2>&1; then
  pass "scripts/rollback.sh <first commit>"
else
  cat "$WORK/rollback.log"
  fail "scripts/rollback.sh <first commit>"
fi
check "/api/v1/health reports the first commit again" [ "$(served_commit)" = "$first" ]
check "the rollback tag names the commit" docker image inspect "$API_IMAGE:rollback-${first:0:12}" >/dev/null
if in_repo env COMPOSE_ARGS="-p $RUN_ID" scripts/rollback.sh "${second:0:7}" >>"$WORK/rollback.log" 2>&1; then
  pass "scripts/rollback.sh <second commit, 7 digits>: forward again"
else
  cat "$WORK/rollback.log"
  fail "scripts/rollback.sh <second commit, 7 digits>: forward again"
fi
check "/api/v1/health reports the second commit again" [ "$(served_commit)" = "$second" ]

echo
echo "compose-rollback: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
