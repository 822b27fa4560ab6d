#!/usr/bin/env bash
# Brings a prior API image back in the compose deployment, or lists the images to choose from.
#
#   scripts/rollback.sh list                            # local images, each with its commit
#   scripts/rollback.sh <tag|commit|image-id|sha256:..> # local mode: an image this machine holds
#   scripts/rollback.sh ghcr.io/OWNER/REPO@sha256:...   # registry mode: verified, then pulled
#
# `list` shows API_IMAGE's images and the compose builds whose tag a later build took, each
# with the commit it was built from (its revision label, else what its binary says:
# `sigmasight --version`). Such an untagged build is tagged `<API_IMAGE>:<commit's first 12
# digits>` there and then, so that `docker image prune` keeps it and a commit names it.
#
# Local mode takes a tag of API_IMAGE (`local`, a commit's 12 digits, ...), a whole commit, an
# image ID or a local sha256: digest, as built or pulled here. Registry mode takes a registry
# image by digest only: scripts/verify-image.sh must find this repository's CI signature and
# SLSA provenance on it (nothing is pulled otherwise), then it is pulled by that digest. A
# registry image named by tag is refused: a tag can be moved after it is checked. The script
# says which mode it uses.
#
# Either way the image is tagged `<API_IMAGE>:rollback-<commit>` (`rollback-<image ID>` when its
# commit is unknown) and `api` is recreated from it with
# `IMAGE_TAG=rollback-<commit> docker compose up -d --no-build api`; Postgres and its volume
# are untouched. The database is never rolled back: releases follow expand/contract
# (docs/operations.md), so a prior image runs on the newer schema. Set COMPOSE_PROJECT_NAME
# (or -p via COMPOSE_ARGS) as for `docker compose`. On Railway, see docs/railway.md, "Rollback".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh

API_IMAGE=${API_IMAGE:-sigmasight-backend}
read -r -a compose_args <<<"${COMPOSE_ARGS:-}"

usage() {
  sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
}

label() { docker image inspect -f "{{index .Config.Labels \"org.opencontainers.image.$2\"}}" "$1"; }

# The commit an image was built from: its revision label, else (a build given no GIT_COMMIT,
# such as a plain `docker compose up --build`, whose build.rs read .git) its binary's own word.
revision_of() {
  local revision
  revision=$(label "$1" revision)
  if [ -z "$revision" ] || [ "$revision" = unknown ]; then
    revision=$(docker run --rm --network none --read-only --cap-drop ALL \
      --security-opt no-new-privileges "$1" --version 2>/dev/null | sed -n 's/^sigmasight .* (\(.*\))$/\1/p')
  fi
  echo "${revision:-unknown}"
}

is_commit() { [[ $1 =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]]; }

# The IDs of API_IMAGE's images and of its compose builds whose tag a later build took (compose
# labels what it builds with the repository it tags it in: docker-compose.yml).
images() {
  { docker image ls "$API_IMAGE" --format '{{.ID}}'
    docker image ls --filter dangling=true --filter "label=sigmasight.compose.image=$API_IMAGE" --format '{{.ID}}'
  } | awk '!seen[$0]++'
}

# The first of images() built from a commit starting with $1.
by_commit() {
  local id
  for id in $(images); do
    if [[ $(revision_of "$id") == "$1"* ]]; then
      echo "$id"
      return
    fi
  done
}

list() {
  local id revision refs ref
  printf '%-40s %-14s %-42s %-12s %s\n' IMAGE ID REVISION VERSION CREATED
  images | while read -r id; do
    revision=$(revision_of "$id")
    refs=$(docker image inspect -f '{{range .RepoTags}}{{println .}}{{end}}' "$id" | grep "^$API_IMAGE:" || true)
    if [ -z "$refs" ] && is_commit "$revision" && ! docker image inspect "$API_IMAGE:${revision:0:12}" >/dev/null 2>&1; then
      docker tag "$id" "$API_IMAGE:${revision:0:12}"
      refs="$API_IMAGE:${revision:0:12}"
      echo "rollback: tagged the untagged build $id as $refs (its commit), so that a prune keeps it" >&2
    fi
    for ref in ${refs:-"<untagged>"}; do
      printf '%-40s %-14s %-42s %-12s %s\n' "$ref" "$id" "$revision" \
        "$(label "$id" version)" "$(label "$id" created)"
    done
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
  # A commit (7 digits or more): the image of those listed that was built from it.
  if ! docker image inspect "$ref" >/dev/null 2>&1 && [[ $target =~ ^[0-9a-f]{7,64}$ ]]; then
    ref=$(by_commit "$target")
  fi
  if ! docker image inspect "$ref" >/dev/null 2>&1; then
    echo "rollback: no local image \"$target\" (as an image ID, a digest, a commit, or a tag of $API_IMAGE)." >&2
    echo "rollback: pick one from: scripts/rollback.sh list; or give a published image by digest: scripts/rollback.sh ghcr.io/<owner>/<repo>@sha256:<digest>" >&2
    exit 1
  fi
fi
revision=$(revision_of "$ref")
if [ "$revision" = unknown ]; then
  id=$(docker image inspect -f '{{.Id}}' "$ref")
  id=${id#sha256:}
  tag="rollback-${id:0:12}"
else
  tag="rollback-${revision:0:12}"
fi
docker tag "$ref" "$API_IMAGE:$tag"
echo "rollback: api -> $API_IMAGE:$tag (revision $revision, version $(label "$ref" version))"
IMAGE_TAG=$tag "${compose[@]}" "${compose_args[@]}" up -d --no-build --no-deps api
