# shellcheck shell=bash
# Helpers shared by the image tests (image-test.sh, image-test-arm64.sh, compose-rollback-test.sh). Source this file;
# the sourcing script reports `passed` and `failed` at its end.

# shellcheck disable=SC2034 # read by the scripts that source this file
passed=0
failed=0

pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
check() { # check "description" command...
  local description=$1
  shift
  if "$@"; then pass "$description"; else fail "$description"; fi
}
step() { printf '\n-- %s\n' "$*"; }

# Seconds since an earlier `date +%s.%N`.
since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# within SECONDS command...: retries the command once a second until it succeeds, at most SECONDS.
within() {
  local seconds=$1
  shift
  for _ in $(seq 1 "$seconds"); do
    "$@" && return 0
    sleep 1
  done
  return 1
}

# status_within SECONDS URL: polls URL until it answers 200, at most SECONDS; prints the last status.
status_within() {
  local code=""
  for _ in $(seq 1 "$1"); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$2" || true)
    [ "$code" = 200 ] && break
    sleep 1
  done
  echo "$code"
}

# A copy of the checkout to build from, so the test can change a file without touching the
# tree; .dockerignore then picks the context out of it exactly as in a normal build.
copy_context() {
  mkdir -p "$1"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$1"
  else
    tar --exclude=./target --exclude=./.git -cf - . | tar -xf - -C "$1"
  fi
  # The git files the build reads its commit from (.dockerignore lets in only these), so the
  # copy's build records the same commit as a build of the checkout, and reuses its layers.
  if [ -d .git ]; then
    local git_files=(.git/HEAD .git/refs/heads)
    [ -f .git/packed-refs ] && git_files+=(.git/packed-refs)
    tar -cf - "${git_files[@]}" | tar -xf - -C "$1"
  fi
}
