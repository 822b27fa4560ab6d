#!/usr/bin/env bash
# Image tests: build the image, inspect it, run it hardened against Postgres, prove that a
# src/-only change reuses the cooked dependency layer, and bring the compose stack up and down;
# roll three replicas of the image behind HAProxy under load (scripts/rolling-restart.sh); then
# the same for the arm64 image, under QEMU (scripts/image-test-arm64.sh).
#
#   scripts/image-test.sh               # base images from the Dockerfile's defaults (a registry)
#   BASE_IMAGES=local scripts/image-test.sh   # stand-ins from scripts/base-images.sh (offline)
#
# IMAGE_TEST_COLD=0 skips the --no-cache cold build (faster local iterations); the rebuild
# comparison is then reported but not asserted.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh
# shellcheck source=scripts/lib/image-test.sh
source scripts/lib/image-test.sh

MAX_IMAGE_BYTES=$((15 * 1000 * 1000))
RUN_ID="sigmasight-imgtest-$$"
TAG="sigmasight-backend:$RUN_ID"
PREV_COMMIT="prev-$$" # the previous release's revision label (short: rollback tags use 12 chars)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$RUN_ID.XXXXXX")

cleanup() {
  docker rm -f "$RUN_ID-api" "$RUN_ID-pg" >/dev/null 2>&1 || true
  docker network rm "$RUN_ID" >/dev/null 2>&1 || true
  "${compose[@]}" -p "$RUN_ID" down -v --remove-orphans >/dev/null 2>&1 || true
  docker image rm "$TAG" "$TAG-rebuild" "$TAG-prev" "sigmasight-backend:$RUN_ID-compose" >/dev/null 2>&1 || true
  docker image rm "sigmasight-backend:rollback-$PREV_COMMIT" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ "${BASE_IMAGES:-}" = local ]; then
  use_local_base_images
fi
POSTGRES_IMAGE=${POSTGRES_IMAGE:-postgres:15@sha256:1b92e7a80c021647bf70f5d3eb66066a998e4f5cf43c07bb9dc9f729782cf88e}
GIT_COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
export GIT_COMMIT VERSION
BUILD_DATE=$(commit_time iso 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
export BUILD_DATE
build_args=(--build-arg "GIT_COMMIT=$GIT_COMMIT" --build-arg "VERSION=$VERSION"
  --build-arg "BUILD_DATE=$BUILD_DATE")
[ -n "${RUST_IMAGE:-}" ] && build_args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
[ -n "${RUNTIME_IMAGE:-}" ] && build_args+=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE")

# --- build --------------------------------------------------------------------------------
step "build"
cold_flag=()
[ "${IMAGE_TEST_COLD:-1}" = 1 ] && cold_flag=(--no-cache)
copy_context "$WORK/context"
started=$(date +%s.%N)
if ! docker build --progress=plain "${cold_flag[@]}" "${build_args[@]}" -t "$TAG" "$WORK/context" >"$WORK/build.log" 2>&1; then
  tail -n 60 "$WORK/build.log"
  fail "the image builds"
  echo "image-tests: $passed passed, $failed failed"
  exit 1
fi
cold_seconds=$(since "$started")
pass "the image builds (${cold_seconds} s${cold_flag:+, no cache})"

# --- inspect ------------------------------------------------------------------------------
step "inspect"
inspect() { docker image inspect -f "$1" "$TAG"; }
check "runs as 65532:65532" [ "$(inspect '{{.Config.User}}')" = "65532:65532" ]
check "ENTRYPOINT is the binary, exec form" [ "$(inspect '{{json .Config.Entrypoint}}')" = '["/usr/local/bin/sigmasight"]' ]
check "CMD is serve" [ "$(inspect '{{json .Config.Cmd}}')" = '["serve"]' ]
check "exposes 8000" grep -q '"8000/tcp"' <<<"$(inspect '{{json .Config.ExposedPorts}}')"
check "HEALTHCHECK calls the binary in exec form" \
  [ "$(inspect '{{json .Config.Healthcheck.Test}}')" = '["CMD","/usr/local/bin/sigmasight","healthcheck"]' ]
check "label revision is the commit" [ "$(inspect '{{index .Config.Labels "org.opencontainers.image.revision"}}')" = "$GIT_COMMIT" ]
check "label version is the crate version" [ "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}}')" = "$VERSION" ]
for label in source created; do
  check "label $label is set" [ -n "$(inspect "{{index .Config.Labels \"org.opencontainers.image.$label\"}}")" ]
done
size=$(inspect '{{.Size}}')
echo "image size: $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1e6 }') MB uncompressed)"
check "image is at most 15 MB" [ "$size" -le "$MAX_IMAGE_BYTES" ]

container=$(docker create "$TAG")
docker export "$container" | tar -tf - | sed 's|^\./||' >"$WORK/files"
docker cp "$container:/usr/local/bin/sigmasight" "$WORK/sigmasight"
docker rm "$container" >/dev/null
no_file() { ! grep -Eq "$1" "$WORK/files"; }
check "no /bin/sh" no_file '^(usr/)?bin/(sh|bash|dash)$'
check "no busybox" no_file '(^|/)busybox$'
check "no package manager" no_file '^(usr/)?s?bin/(apt|apt-get|dpkg|apk|yum|dnf|microdnf)$'
check "CA bundle present" grep -qx 'etc/ssl/certs/ca-certificates.crt' "$WORK/files"
check "tzdata present" grep -q '^usr/share/zoneinfo/America/New_York$' "$WORK/files"
binary_kind=$(file -b "$WORK/sigmasight")
echo "binary: $(stat -c %s "$WORK/sigmasight") bytes; $binary_kind"
check "the binary is static" grep -Eq 'static-pie linked|statically linked' <<<"$binary_kind"
check "the binary is stripped" grep -q ', stripped' <<<"$binary_kind"

# --- run, hardened, against Postgres --------------------------------------------------------
step "run --read-only --cap-drop ALL --security-opt no-new-privileges"
docker network create "$RUN_ID" >/dev/null
docker run -d --name "$RUN_ID-pg" --network "$RUN_ID" --network-alias db \
  -e POSTGRES_USER=app -e POSTGRES_PASSWORD=app-password -e POSTGRES_DB=app "$POSTGRES_IMAGE" >/dev/null
within 60 docker exec "$RUN_ID-pg" pg_isready -q -h 127.0.0.1 -U app -d app || true
docker run -d --name "$RUN_ID-api" --network "$RUN_ID" -p 127.0.0.1::8000 \
  --read-only --cap-drop ALL --security-opt no-new-privileges \
  -e SECRET_KEY=image-test-secret-key-of-at-least-32-bytes \
  -e DATABASE_URL=postgres://app:app-password@db:5432/app "$TAG" >/dev/null
api_healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$RUN_ID-api")" = healthy ]; }
check "the container becomes healthy (HEALTHCHECK)" within 60 api_healthy
api="http://$(docker port "$RUN_ID-api" 8000/tcp | head -n 1)"
ready=$(status_within 30 "$api/api/v1/health")
check "/api/v1/health is 200 (migrated, database reachable)" [ "$ready" = 200 ]
started=$(date +%s.%N)
docker stop -t 30 "$RUN_ID-api" >/dev/null
stop_seconds=$(since "$started")
echo "docker stop took ${stop_seconds} s"
check "docker stop exits 0" [ "$(docker inspect -f '{{.State.ExitCode}}' "$RUN_ID-api")" = 0 ]
check "docker stop is well inside the grace period" awk -v s="$stop_seconds" 'BEGIN { exit !(s < 10) }'
docker logs "$RUN_ID-api" >"$WORK/api.log" 2>&1
check "an orderly shutdown is logged" grep -q '"message":"shutdown complete"' "$WORK/api.log"
check "logs are JSON lines" python3 -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
assert lines and all(json.loads(l) for l in lines)' "$WORK/api.log"
docker rm -f "$RUN_ID-api" "$RUN_ID-pg" >/dev/null
docker network rm "$RUN_ID" >/dev/null

# --- a src/-only change reuses the cooked dependencies -------------------------------------
step "rebuild after a src/-only change"
printf '\n// image-test rebuild probe %s\n' "$RUN_ID" >>"$WORK/context/src/lib.rs"
started=$(date +%s.%N)
docker build --progress=plain "${build_args[@]}" -t "$TAG-rebuild" "$WORK/context" >"$WORK/rebuild.log" 2>&1 ||
  { tail -n 40 "$WORK/rebuild.log"; fail "the rebuild succeeds"; }
rebuild_seconds=$(since "$started")
cook_step=$(grep -m1 -Eo '^#[0-9]+ \[builder [0-9]+/[0-9]+\] RUN cargo chef cook' "$WORK/rebuild.log" | cut -d' ' -f1 || true)
echo "rebuild: ${rebuild_seconds} s against ${cold_seconds} s for the first build"
check "the rebuild's cook step is cached" grep -qx "$cook_step CACHED" "$WORK/rebuild.log"
check "the rebuild compiled the changed crate" grep -q 'Compiling sigmasight-backend' "$WORK/rebuild.log"
if [ ${#cold_flag[@]} -gt 0 ]; then
  check "the rebuild takes under half the cold build" awk -v r="$rebuild_seconds" -v c="$cold_seconds" 'BEGIN { exit !(r < 0.5 * c) }'
fi

# --- the previous release: the same source without its newest migration ---------------------
step "build the previous release (one migration fewer)"
cp -a "$WORK/context" "$WORK/context-prev"
newest=$(find "$WORK/context-prev/migrations" -name '*.sql' | sort | tail -n 1)
rm "$newest"
prev_args=("${build_args[@]}" --build-arg "GIT_COMMIT=$PREV_COMMIT")
if docker build --progress=plain "${prev_args[@]}" -t "$TAG-prev" "$WORK/context-prev" >"$WORK/prev.log" 2>&1; then
  pass "the previous release builds (without $(basename "$newest"))"
else
  tail -n 40 "$WORK/prev.log"
  fail "the previous release builds"
fi

# --- compose ---------------------------------------------------------------------------------
step "${compose[*]} up -d --build"
compose_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export API_PORT=$compose_port IMAGE_TAG="$RUN_ID-compose" POSTGRES_IMAGE
if "${compose[@]}" -p "$RUN_ID" up -d --build >"$WORK/compose.log" 2>&1; then
  pass "compose up --build"
else
  tail -n 40 "$WORK/compose.log"
  fail "compose up --build"
fi
# Every long-running service healthy, and the one-shots (roles, migrate) exited 0.
all_healthy() {
  local statuses
  statuses=$(docker ps -a --filter "label=com.docker.compose.project=$RUN_ID" \
    --format '{{.Label "com.docker.compose.service"}} {{.Status}}')
  [ -n "$statuses" ] && ! grep -Evq '^(roles|migrate) Exited \(0\)|\(healthy\)$' <<<"$statuses"
}
check "every compose service is healthy, roles and migrate exited 0" within 90 all_healthy
compose_psql() { # the admin's psql inside the compose Postgres
  "${compose[@]}" -p "$RUN_ID" exec -T postgres psql -X -At -U sigmasight -d sigmasight -c "$1"
}
check "the tables and the migration history belong to the owner role" \
  [ "$(compose_psql "select string_agg(distinct tableowner, ',') from pg_tables where schemaname = 'public'")" = sigmasight_owner ]
check "the app role may not write the migration history" \
  [ "$(compose_psql "select has_table_privilege('sigmasight_app', '_sqlx_migrations', 'SELECT') and not has_table_privilege('sigmasight_app', '_sqlx_migrations', 'INSERT,UPDATE,DELETE,TRUNCATE')")" = t ]
check "the API is published on loopback only" \
  [ "$("${compose[@]}" -p "$RUN_ID" port api 8000)" = "127.0.0.1:$compose_port" ]
headers=$(curl -s -D - -o /dev/null -H 'X-Request-ID: compose-smoke-1' "http://127.0.0.1:$compose_port/health" || true)
check "the API answers on the published port, echoing the request id" grep -qi '^x-request-id: compose-smoke-1' <<<"${headers//$'\r'/}"
check "compose readiness is 200" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$compose_port/api/v1/health")" = 200 ]
# Readiness has just used the pool, whose connections stay open while idle.
check "the API connects as the app role" \
  [ "$(compose_psql "select string_agg(distinct usename, ',') from pg_stat_activity where application_name = 'sigmasight'")" = sigmasight_app ]

step "roll back to the previous release on the database the current one migrated"
if COMPOSE_ARGS="-p $RUN_ID" scripts/rollback.sh "$TAG-prev" >>"$WORK/compose.log" 2>&1; then
  pass "scripts/rollback.sh recreates api from the previous image"
else
  tail -n 20 "$WORK/compose.log"
  fail "scripts/rollback.sh recreates api from the previous image"
fi
api_container=$(docker ps -q --filter "label=com.docker.compose.project=$RUN_ID" --filter "label=com.docker.compose.service=api")
running_revision=$(docker inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$api_container" 2>/dev/null || true)
check "api now runs the previous release ($PREV_COMMIT)" [ "$running_revision" = "$PREV_COMMIT" ]
rolled_back_ready=$(status_within 60 "http://127.0.0.1:$compose_port/api/v1/health")
check "the previous release is ready on the newer schema" [ "$rolled_back_ready" = 200 ]
check "every compose service is healthy after the rollback" within 60 all_healthy
scripts/rollback.sh list >"$WORK/rollback-list.txt" 2>&1 || true
check "rollback.sh list shows images with their commit labels" grep -q "$PREV_COMMIT" "$WORK/rollback-list.txt"

"${compose[@]}" -p "$RUN_ID" down -v >>"$WORK/compose.log" 2>&1
check "compose down -v leaves no container" [ -z "$(docker ps -aq --filter "label=com.docker.compose.project=$RUN_ID")" ]
check "compose down -v leaves no volume" [ -z "$(docker volume ls -q --filter "label=com.docker.compose.project=$RUN_ID")" ]

# --- compose on two commits: each build records its commit; rollback by commit ---------------
check "compose records each commit and rolls back by it (scripts/compose-rollback-test.sh)" scripts/compose-rollback-test.sh

# --- three replicas behind HAProxy: a rolling restart under load loses no request -------------
check "a rolling restart of three replicas behind HAProxy under wrk loses no request (scripts/rolling-restart.sh)" \
  env API_IMAGE=sigmasight-backend IMAGE_TAG="$RUN_ID" scripts/rolling-restart.sh

# --- the arm64 image: cross-built here, run under QEMU ---------------------------------------
check "the arm64 image builds, is static aarch64 and runs healthy under QEMU (scripts/image-test-arm64.sh)" \
  scripts/image-test-arm64.sh

echo
echo "image-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
