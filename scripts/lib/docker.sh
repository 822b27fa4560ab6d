# shellcheck shell=bash
# Docker helpers shared by the image scripts. Source this file.

# The distribution's docker client has BuildKit built in; docker-compose 1.29 builds through
# whichever `docker` comes first on PATH.
export PATH="/usr/bin:/usr/sbin:$PATH"
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1

# `docker compose` (v2) where present, else docker-compose (1.29), as the array `compose`.
# shellcheck disable=SC2034 # read by the scripts that source this file
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  compose=(docker-compose)
fi

# BASE_IMAGES=local: builds the stand-ins of scripts/base-images.sh where no registry is
# reachable, and names them in RUST_IMAGE, RUNTIME_IMAGE (the host's architecture),
# RUNTIME_IMAGE_AMD64, RUNTIME_IMAGE_ARM64, POSTGRES_IMAGE and HAPROXY_IMAGE for what follows. A local
# image has one architecture per tag, where the registry's distroless is one index for all.
# IMAGE_PREFIX (base-images.sh's, default sigmasight) names another set of stand-ins.
use_local_base_images() {
  local prefix=${IMAGE_PREFIX:-sigmasight}
  export RUST_IMAGE=$prefix/rust-builder:1.95.0
  export RUNTIME_IMAGE=$prefix/distroless-static:nonroot
  export RUNTIME_IMAGE_AMD64=$prefix/distroless-static:nonroot-amd64
  export RUNTIME_IMAGE_ARM64=$prefix/distroless-static:nonroot-arm64
  export POSTGRES_IMAGE=$prefix/postgres:15
  export HAPROXY_IMAGE=$prefix/haproxy:2.6
  scripts/base-images.sh --prefix "$prefix" ${EXTRA_CA_BUNDLE:+--ca-bundle "$EXTRA_CA_BUNDLE"}
}

# commit_time iso|epoch [REV]: the commit's time (committer date), as the image's `created`
# label wants it (UTC) or as SOURCE_DATE_EPOCH. A build of one commit then carries the same
# date wherever and whenever it runs.
commit_time() {
  case "$1" in
    epoch) git log -1 --format=%ct "${2:-HEAD}" ;;
    iso) TZ=UTC git log -1 --date=format-local:%Y-%m-%dT%H:%M:%SZ --format=%cd "${2:-HEAD}" ;;
  esac
}
