#!/usr/bin/env bash
# The arm64 image, built and run on an x86_64 machine: the Dockerfile cross-compiles (no
# emulation in the build); the finished image then runs under QEMU user emulation
# (binfmt_misc) against Postgres, as it would on an arm64 host.
#
#   scripts/image-test-arm64.sh                       # base images from the Dockerfile's defaults
#   BASE_IMAGES=local scripts/image-test-arm64.sh     # stand-ins from scripts/base-images.sh
#
# Running it needs qemu-aarch64 registered with binfmt_misc with the F flag (Debian:
# qemu-user-static and binfmt-support; .ci/run installs and enables them), unless the host is
# arm64 itself. Without it the run says `skipped`, and fails under IMAGE_TESTS=required (CI).
# scripts/image-test.sh runs it after the amd64 tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh
# shellcheck source=scripts/lib/image-test.sh
source scripts/lib/image-test.sh

MAX_IMAGE_BYTES=$((15 * 1000 * 1000))
RUN_ID="sigmasight-imgtest-arm64-$$"
TAG="sigmasight-backend:$RUN_ID"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$RUN_ID.XXXXXX")

cleanup() {
  docker rm -f "$RUN_ID-api" "$RUN_ID-pg" >/dev/null 2>&1 || true
  docker network rm "$RUN_ID" >/dev/null 2>&1 || true
  docker image rm "$TAG" "$TAG-rebuild" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# image-test.sh has already built the stand-ins and exported their names.
if [ "${BASE_IMAGES:-}" = local ] && [ -z "${RUNTIME_IMAGE_ARM64:-}" ]; then
  use_local_base_images
fi
POSTGRES_IMAGE=${POSTGRES_IMAGE:-postgres:15@sha256:1b92e7a80c021647bf70f5d3eb66066a998e4f5cf43c07bb9dc9f729782cf88e}
GIT_COMMIT=${GIT_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
BUILD_DATE=${BUILD_DATE:-$(commit_time iso 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)}
build_args=(--platform linux/arm64 --build-arg "GIT_COMMIT=$GIT_COMMIT" --build-arg "BUILD_DATE=$BUILD_DATE")
[ -n "${RUST_IMAGE:-}" ] && build_args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")
# The registry's distroless is an index holding arm64; a local stand-in has a tag per arch.
[ -n "${RUNTIME_IMAGE_ARM64:-}" ] && build_args+=(--build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE_ARM64")

# --- build --------------------------------------------------------------------------------
step "build --platform linux/arm64"
copy_context "$WORK/context"
started=$(date +%s.%N)
if ! docker build --progress=plain "${build_args[@]}" -t "$TAG" "$WORK/context" >"$WORK/build.log" 2>&1; then
  tail -n 60 "$WORK/build.log"
  fail "the arm64 image builds"
  echo "image-tests (arm64): $passed passed, $failed failed"
  exit 1
fi
build_seconds=$(since "$started")
pass "the arm64 image builds (${build_seconds} s)"

# --- inspect ------------------------------------------------------------------------------
step "inspect"
inspect() { docker image inspect -f "$1" "$TAG"; }
check "the image config says linux/arm64" [ "$(inspect '{{.Os}}/{{.Architecture}}')" = linux/arm64 ]
check "label revision is the commit" [ "$(inspect '{{index .Config.Labels "org.opencontainers.image.revision"}}')" = "$GIT_COMMIT" ]
check "label created is the commit's time" [ "$(inspect '{{index .Config.Labels "org.opencontainers.image.created"}}')" = "$BUILD_DATE" ]
check "runs as 65532:65532" [ "$(inspect '{{.Config.User}}')" = "65532:65532" ]
size=$(inspect '{{.Size}}')
echo "arm64 image size: $size bytes ($(awk -v b="$size" 'BEGIN { printf "%.1f", b / 1e6 }') MB uncompressed)"
check "the arm64 image is at most 15 MB" [ "$size" -le "$MAX_IMAGE_BYTES" ]
container=$(docker create --platform linux/arm64 "$TAG")
docker cp "$container:/usr/local/bin/sigmasight" "$WORK/sigmasight"
docker rm "$container" >/dev/null
binary_kind=$(file -b "$WORK/sigmasight")
echo "binary: $(stat -c %s "$WORK/sigmasight") bytes; $binary_kind"
check "the binary is an aarch64 ELF" grep -q 'ELF 64-bit LSB .*ARM aarch64' <<<"$binary_kind"
check "the binary is static" grep -Eq 'static-pie linked|statically linked' <<<"$binary_kind"
check "the binary is stripped" grep -q ', stripped' <<<"$binary_kind"

# --- run under QEMU against Postgres ---------------------------------------------------------
step "run under QEMU user emulation, --read-only --cap-drop ALL, against Postgres"
# F (fix binary): the kernel opens the interpreter when it is registered, so it runs inside
# containers, whose file systems do not hold it.
qemu_ready() {
  [ "$(uname -m)" = aarch64 ] && return 0
  local entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
  [ -r "$entry" ] && grep -qx enabled "$entry" && grep -q '^flags: .*F' "$entry"
}
qemu_hint="apt-get install qemu-user-static binfmt-support; update-binfmts --enable qemu-aarch64"
if qemu_ready; then
  pass "qemu-aarch64 is registered with binfmt_misc (flag F)"
elif [ "${IMAGE_TESTS:-auto}" = required ]; then
  fail "qemu-aarch64 is registered with binfmt_misc (flag F): $qemu_hint"
else
  echo "skip  running the arm64 image: qemu-aarch64 is not registered with binfmt_misc ($qemu_hint)"
fi
if qemu_ready; then
  docker network create "$RUN_ID" >/dev/null
  docker run -d --name "$RUN_ID-pg" --network "$RUN_ID" --network-alias db \
    -e POSTGRES_USER=app -e POSTGRES_PASSWORD=app-password -e POSTGRES_DB=app "$POSTGRES_IMAGE" >/dev/null
  within 60 docker exec "$RUN_ID-pg" pg_isready -q -h 127.0.0.1 -U app -d app || true
  docker run -d --platform linux/arm64 --name "$RUN_ID-api" --network "$RUN_ID" -p 127.0.0.1::8000 \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    -e SECRET_KEY=image-test-secret-key-of-at-least-32-bytes \
    -e DATABASE_URL=postgres://app:app-password@db:5432/app "$TAG" >/dev/null
  api_healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$RUN_ID-api")" = healthy ]; }
  check "the arm64 container becomes healthy (HEALTHCHECK, under QEMU)" within 90 api_healthy
  api="http://$(docker port "$RUN_ID-api" 8000/tcp | head -n 1)"
  check "/api/v1/health is 200" [ "$(status_within 30 "$api/api/v1/health")" = 200 ]
  migrations=$(find "$WORK/context/migrations" -name '*.sql' | wc -l)
  applied=$(docker exec "$RUN_ID-pg" psql -X -At -U app -d app \
    -c 'select count(*) from _sqlx_migrations where success' 2>/dev/null || echo 0)
  check "every migration is applied ($applied of $migrations)" [ "$applied" = "$migrations" ]
  docker stop -t 30 "$RUN_ID-api" >/dev/null
  check "docker stop exits 0" [ "$(docker inspect -f '{{.State.ExitCode}}' "$RUN_ID-api")" = 0 ]
  docker logs "$RUN_ID-api" >"$WORK/api.log" 2>&1
  check "an orderly shutdown is logged" grep -q '"message":"shutdown complete"' "$WORK/api.log"
  docker rm -f "$RUN_ID-api" "$RUN_ID-pg" >/dev/null
  docker network rm "$RUN_ID" >/dev/null
fi

# --- a src/-only change reuses the arm64 cooked dependencies ----------------------------------
step "rebuild for arm64 after a src/-only change"
printf '\n// image-test-arm64 rebuild probe %s\n' "$RUN_ID" >>"$WORK/context/src/lib.rs"
started=$(date +%s.%N)
docker build --progress=plain "${build_args[@]}" -t "$TAG-rebuild" "$WORK/context" >"$WORK/rebuild.log" 2>&1 ||
  { tail -n 40 "$WORK/rebuild.log"; fail "the arm64 rebuild succeeds"; }
echo "arm64 rebuild: $(since "$started") s against ${build_seconds} s for the first build"
cook_step=$(grep -m1 -Eo '^#[0-9]+ \[builder [0-9]+/[0-9]+\] RUN cargo chef cook' "$WORK/rebuild.log" | cut -d' ' -f1 || true)
check "the arm64 rebuild's cook step is cached" grep -qx "$cook_step CACHED" "$WORK/rebuild.log"
check "the arm64 rebuild compiled the changed crate alone" \
  [ "$(grep -E '^#[0-9]+ [0-9.]+ +Compiling ' "$WORK/rebuild.log" | grep -Eo 'Compiling [^ ]+' | sort -u)" = "Compiling sigmasight-backend" ]

echo
echo "image-tests (arm64): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
