#!/usr/bin/env bash
# Brings a prior API image back in the compose deployment, or lists the images to choose from.
#
#   scripts/rollback.sh list                          # local images with their commit and version labels
#   scripts/rollback.sh <tag|image-id|sha256:digest>  # local mode: an image this machine holds
#   scripts/rollback.sh ghcr.io/OWNER/REPO@sha256:... # registry mode: verified, then pulled
#
# Local mode takes a tag of API_IMAGE, an image ID or a local sha256: digest, as built or
# pulled here. Registry mode takes a registry image by digest only: scripts/verify-image.sh
# must find this repository's CI signature and SLSA provenance on it (nothing is pulled
# otherwise), then it is pulled by that digest. A registry image named by tag is refused: a tag
# can be moved after it is checked. The script says which mode it uses.
#
# Either way the image is tagged `<API_IMAGE>:rollback-<commit>` and `api` is recreated from
# it with `IMAGE_TAG=rollback-<commit> docker compose up -d --no-build api`; Postgres and its
# volume are untouched. The database is never rolled back: releases follow expand/contract
# (docs/operations.md), so a prior image runs on the newer schema. Set COMPOSE_PROJECT_NAME
# (or -p via COMPOSE_ARGS) as for `docker compose`. On Railway, see docs/railway.md, "Rollback".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh

API_IMAGE=${API_IMAGE:-sigmasight-backend}
read -r -a compose_args <<<"${COMPOSE_ARGS:-}"

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

label() { docker image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$2\"}}" "$1"; }

list() {
  printf '%-40s %-14s %-42s %-12s %s\n' IMAGE ID REVISION VERSION CREATED
  docker image ls "$API_IMAGE" --format '{{.Repository}}:{{.Tag}} {{.ID}}' | while read -r ref id; do
    printf '%-40s %-14s %-42s %-12s %s\n' "$ref" "$id" "$(label "$id" revision)" \
      "$(label "$id" version)" "$(label "$id" created)"
  done
}

# Names a registry: a first path component with a dot or a port, or localhost (Docker's rule).
names_registry() {
  local first=${1%%/*}
  [[ $1 == */* ]] && { [[ $first == *.* || $first == *:* || $first == localhost ]]; }
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
if [[ $target == *@* ]] && names_registry "$target"; then
  echo "rollback: mode: registry digest ($target): verifying before anything is pulled"
  if ! scripts/verify-image.sh "$target"; then
    echo "rollback: refused: $target did not verify (above); nothing was pulled or deployed." >&2
    exit 1
  fi
  docker pull "$target"
  ref=$target
elif names_registry "$target"; then
  name=$target
  [[ ${target##*/} != *:* ]] || name=${target%:*}
  echo "rollback: refused: $target names a registry image by tag, which can be moved after it is checked;" \
    "give its digest instead: scripts/rollback.sh $name@sha256:<digest> (docs/operations.md)." >&2
  exit 2
else
  echo "rollback: mode: local image ($target): as this machine holds it, not verified"
  case "$target" in
    sha256:*) ref="$API_IMAGE@$target" ;;
    *) ref=$target ;;
  esac
  if ! docker image inspect "$ref" >/dev/null 2>&1; then
    ref="$API_IMAGE:$target"
  fi
  if ! docker image inspect "$ref" >/dev/null 2>&1; then
    echo "rollback: no local image \"$target\" (as an image ID, a digest, or a tag of $API_IMAGE)." >&2
    echo "rollback: pick one from: scripts/rollback.sh list; or give a published image by digest: scripts/rollback.sh ghcr.io/<owner>/<repo>@sha256:<digest>" >&2
    exit 1
  fi
fi
revision=$(label "$ref" revision)
[ -n "$revision" ] || revision=unknown
tag="rollback-${revision:0:12}"
docker tag "$ref" "$API_IMAGE:$tag"
echo "rollback: api -> $API_IMAGE:$tag (revision $revision, version $(label "$ref" version))"
IMAGE_TAG=$tag "${compose[@]}" "${compose_args[@]}" up -d --no-build --no-deps api
