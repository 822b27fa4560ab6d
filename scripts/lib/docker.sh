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
