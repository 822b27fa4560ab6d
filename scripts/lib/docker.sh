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
# reachable, and names them in RUST_IMAGE, RUNTIME_IMAGE and POSTGRES_IMAGE for what follows.
use_local_base_images() {
  export RUST_IMAGE=sigmasight/rust-builder:1.95.0
  export RUNTIME_IMAGE=sigmasight/distroless-static:nonroot
  export POSTGRES_IMAGE=sigmasight/postgres:15
  scripts/base-images.sh ${EXTRA_CA_BUNDLE:+--ca-bundle "$EXTRA_CA_BUNDLE"}
}
