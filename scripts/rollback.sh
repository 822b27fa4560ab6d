#!/usr/bin/env bash
# Brings a prior API image back in the compose deployment, or lists the images to choose from.
#
#   scripts/rollback.sh list              # local images with their commit and version labels
#   scripts/rollback.sh <tag|image-id|digest>
#
# The image is tagged `<API_IMAGE>:rollback-<commit>` and `api` is recreated from it with
# `IMAGE_TAG=rollback-<commit> docker compose up -d --no-build api`; Postgres and its volume are
# untouched. The database is never rolled back: releases follow expand/contract
# (docs/operations.md), so a prior image runs on the newer schema. Set COMPOSE_PROJECT_NAME
# (or -p via COMPOSE_ARGS) as for `docker compose`. On Railway, roll back from the dashboard or
# `railway redeploy` of a prior deployment instead (docs/railway.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh

API_IMAGE=${API_IMAGE:-sigmasight-backend}
read -r -a compose_args <<<"${COMPOSE_ARGS:-}"

usage() {
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
}

label() { docker image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$2\"}}" "$1"; }

list() {
  printf '%-40s %-14s %-42s %-12s %s\n' IMAGE ID REVISION VERSION CREATED
  docker image ls "$API_IMAGE" --format '{{.Repository}}:{{.Tag}} {{.ID}}' | while read -r ref id; do
    printf '%-40s %-14s %-42s %-12s %s\n' "$ref" "$id" "$(label "$id" revision)" \
      "$(label "$id" version)" "$(label "$id" created)"
  done
}

case "${1:-}" in
  "" | -h | --help)
    usage
    [ -n "${1:-}" ] || exit 2
    exit 0
    ;;
  list)
    list
    exit 0
    ;;
esac

target=$1
case "$target" in
  sha256:*) ref="$API_IMAGE@$target" ;;
  *) ref=$target ;;
esac
if ! docker image inspect "$ref" >/dev/null 2>&1; then
  ref="$API_IMAGE:$target"
fi
if ! docker image inspect "$ref" >/dev/null 2>&1; then
  echo "rollback: no local image \"$target\" (as an image ID, a digest, or a tag of $API_IMAGE)." >&2
  echo "rollback: pull it first (docker pull ghcr.io/...:sha-<commit>) or pick one from: scripts/rollback.sh list" >&2
  exit 1
fi
revision=$(label "$ref" revision)
[ -n "$revision" ] || revision=unknown
tag="rollback-${revision:0:12}"
docker tag "$ref" "$API_IMAGE:$tag"
echo "rollback: api -> $API_IMAGE:$tag (revision $revision, version $(label "$ref" version))"
IMAGE_TAG=$tag "${compose[@]}" "${compose_args[@]}" up -d --no-build --no-deps api
