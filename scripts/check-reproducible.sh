#!/usr/bin/env bash
# Two clean builds of one commit must give byte-identical binaries, for each architecture.
#
#   scripts/check-reproducible.sh                          # HEAD, linux/amd64 and linux/arm64
#   scripts/check-reproducible.sh --platform linux/arm64   # one architecture (CI's matrix)
#   scripts/check-reproducible.sh --commit v1.4.2          # another commit
#   BASE_IMAGES=local scripts/check-reproducible.sh        # the builder stand-in (offline)
#   scripts/check-reproducible.sh --keep-tools             # reuse the tools' cached layers
#
# Each build exports the commit with `git archive` into a directory of its own (so the two
# builds run from different paths) and builds the Dockerfile's `binary` stage with
# --no-cache: nothing from an earlier build is reused, the tools included. --keep-tools
# reuses the chef stage's cached layers (zig, cargo-zigbuild, cargo-chef, cargo-auditable,
# the Rust targets: the same files for both builds) and gives each build a new REPRO_BUILD,
# so the cook and the build still run from nothing; quicker where the tools are cached
# already. Both builds get the commit (GIT_COMMIT), its time as SOURCE_DATE_EPOCH and as
# BUILD_DATE, nothing else of this machine. The script prints each binary's sha256 and exits
# 1 if they differ (the two binaries are then kept, and the first differing bytes shown), 2
# on a usage error.
#
# Each build is a cold release build (fat LTO): about 10 to 15 minutes on two cores, so CI
# runs this in the GitHub workflow's `reproducible` job, not in .ci/run (docs/ci.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh

usage() {
  sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

platforms=()
commit=HEAD
keep_tools=false
while [ $# -gt 0 ]; do
  case "$1" in
    --keep-tools) keep_tools=true ;;
    --platform)
      [ $# -ge 2 ] || { usage >&2; exit 2; }
      platforms+=("$2")
      shift
      ;;
    --commit)
      [ $# -ge 2 ] || { usage >&2; exit 2; }
      commit=$2
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "check-reproducible: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[ ${#platforms[@]} -gt 0 ] || platforms=(linux/amd64 linux/arm64)
for platform in "${platforms[@]}"; do
  case "$platform" in
    linux/amd64 | linux/arm64) ;;
    *) echo "check-reproducible: --platform: expected linux/amd64 or linux/arm64, got \"$platform\"" >&2; exit 2 ;;
  esac
done

full_commit=$(git rev-parse --verify "$commit^{commit}") ||
  { echo "check-reproducible: --commit: not a commit: $commit" >&2; exit 2; }
epoch=$(commit_time epoch "$full_commit")
build_date=$(commit_time iso "$full_commit")
if [ "${BASE_IMAGES:-}" = local ]; then
  use_local_base_images
fi
build_args=(--build-arg "GIT_COMMIT=$full_commit" --build-arg "SOURCE_DATE_EPOCH=$epoch"
  --build-arg "BUILD_DATE=$build_date")
[ -n "${RUST_IMAGE:-}" ] && build_args+=(--build-arg "RUST_IMAGE=$RUST_IMAGE")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-repro.XXXXXX")
keep=false
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() { $keep || rm -rf "$WORK"; }
trap cleanup EXIT

echo "commit $full_commit, SOURCE_DATE_EPOCH=$epoch ($build_date)$($keep_tools && echo ', tools from the cache')"
mismatch=0
for platform in "${platforms[@]}"; do
  arch=${platform#linux/}
  sums=()
  for n in 1 2; do
    # Different build directories: the names differ, and so would any path that leaked in.
    src="$WORK/build-$arch-$n-$RANDOM/src"
    mkdir -p "$src"
    git archive --format=tar "$full_commit" | tar -xf - -C "$src"
    started=$SECONDS
    if $keep_tools; then
      fresh=(--build-arg "REPRO_BUILD=$arch-$n-$(date +%s%N)")
    else
      fresh=(--no-cache)
    fi
    if ! docker build --progress=plain "${fresh[@]}" --platform "$platform" "${build_args[@]}" \
      --target binary --output "type=local,dest=$WORK/out-$arch-$n" "$src" >"$WORK/build-$arch-$n.log" 2>&1; then
      tail -n 40 "$WORK/build-$arch-$n.log"
      echo "check-reproducible: build $n for $platform failed" >&2
      exit 1
    fi
    rm -rf "$src"
    sums+=("$(sha256sum "$WORK/out-$arch-$n/sigmasight" | cut -d' ' -f1)")
    printf '%-12s build %s  sha256 %s  (%d s, %s bytes)\n' "$platform" "$n" "${sums[-1]}" \
      "$((SECONDS - started))" "$(stat -c %s "$WORK/out-$arch-$n/sigmasight")"
  done
  if [ "${sums[0]}" = "${sums[1]}" ]; then
    printf '%-12s identical\n' "$platform"
  else
    printf '%-12s DIFFERENT: the binaries are kept in %s\n' "$platform" "$WORK"
    cmp -l "$WORK/out-$arch-1/sigmasight" "$WORK/out-$arch-2/sigmasight" | head -n 10 || true
    keep=true
    mismatch=1
  fi
done
exit "$mismatch"
