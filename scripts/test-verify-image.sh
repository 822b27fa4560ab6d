#!/usr/bin/env bash
# Tests scripts/verify-image.sh and the registry mode of scripts/rollback.sh offline, with a
# fake `cosign` on PATH: Sigstore and the registry are not reachable here, and the real checks
# run in the publishing workflow right after it signs (docs/ci.md).
#
# The fake records its arguments and answers as cosign v2 does: `verify` exits 10 with
# "Error: no signatures found" for an unsigned image and 12 with "no matching signatures: none
# of the expected identities matched ..." when the signer is not the identity asked for;
# `verify-attestation` exits 1 when no attestation of the type asked for exists. Who signed
# is set per case (FAKE_SIGNER, the certificate's subject; FAKE_PROVENANCE=no for none).
#
#   scripts/test-verify-image.sh
#
# Prints one ok/FAIL line per assertion and ends with "verify-image: N passed, N failed".
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1

work=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-verify.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/bin"

cat >"$work/bin/cosign" <<'FAKE'
#!/usr/bin/env bash
# A stand-in for cosign v2: records each call, one argument a line, then answers.
{
  echo "--- call"
  printf '%s\n' "$@"
} >>"$FAKE_LOG"
command=$1
shift
regexp= exact= issuer= type= image=
while [ $# -gt 0 ]; do
  case $1 in
    --certificate-identity-regexp) regexp=$2; shift 2 ;;
    --certificate-identity) exact=$2; shift 2 ;;
    --certificate-oidc-issuer) issuer=$2; shift 2 ;;
    --type) type=$2; shift 2 ;;
    -*) shift ;;
    *) image=$1; shift ;;
  esac
done
signer_issuer=${FAKE_ISSUER:-https://token.actions.githubusercontent.com}
matches() {
  [ "$issuer" = "$signer_issuer" ] || return 1
  if [ -n "$exact" ]; then [ "$exact" = "$FAKE_SIGNER" ]; else [[ $FAKE_SIGNER =~ $regexp ]]; fi
}
fail() { # exit code, message
  echo "Error: $2" >&2
  echo "main.go:74: error during command execution: $2" >&2
  exit "$1"
}
mismatch="none of the expected identities matched what was in the certificate, got subjects [${FAKE_SIGNER:-}] with issuer $signer_issuer"
case $command in
  verify)
    [ -n "${FAKE_SIGNER:-}" ] || fail 10 "no signatures found"
    matches || fail 12 "no matching signatures: $mismatch"
    printf '\nVerification for %s --\nThe following checks were performed on each of these signatures:\n' "$image" >&2
    printf '  - The cosign claims were validated\n  - Existence of the claims in the transparency log was verified offline\n' >&2
    printf '  - The code-signing certificate was verified using trusted certificate authority certificates\n' >&2
    printf '[{"critical":{"identity":{"docker-reference":"%s"},"image":{"docker-manifest-digest":"%s"},"type":"cosign container image signature"},"optional":{"Issuer":"%s","Subject":"%s","githubWorkflowSha":"0123456789abcdef0123456789abcdef01234567"}}]\n' \
      "${image%@*}" "${image#*@}" "$signer_issuer" "$FAKE_SIGNER"
    ;;
  verify-attestation)
    [ -n "${FAKE_SIGNER:-}" ] || fail 1 "no matching attestations: "
    matches || fail 1 "no matching attestations: $mismatch"
    [ "${FAKE_PROVENANCE:-yes}" = yes ] && [ "$type" = slsaprovenance1 ] \
      || fail 1 "none of the attestations matched the predicate type: $type, found: https://cyclonedx.org/bom"
    printf '{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}\n'
    ;;
  *) fail 1 "unknown command \"$command\" for \"cosign\"" ;;
esac
FAKE
chmod +x "$work/bin/cosign"

passed=0
failed=0
# check NAME COMMAND [-a COMMAND]...: passes when every command succeeds (-a: and).
check() {
  local name=$1 ok=true command=() arg
  shift
  for arg in "$@" -a; do
    if [ "$arg" = -a ]; then
      "${command[@]}" || ok=false
      command=()
    else
      command+=("$arg")
    fi
  done
  if $ok; then
    passed=$((passed + 1))
    printf 'ok    %s\n' "$name"
  else
    failed=$((failed + 1))
    printf 'FAIL  %s\n' "$name"
    sed 's/^/      | /' "$work/out" 2>/dev/null | head -n 20
  fi
}
not() { ! "$@"; }

REPO=acme/sigmasight-backend
IMAGE=ghcr.io/acme/sigmasight-backend
DIGEST=sha256:$(printf 'a%.0s' $(seq 64))
MAIN="https://github.com/$REPO/.github/workflows/ci.yml@refs/heads/main"
RELEASE="https://github.com/$REPO/.github/workflows/ci.yml@refs/tags/v1.4.2"
EXPECTED_REGEXP='^https://github\.com/acme/sigmasight-backend/\.github/workflows/ci\.yml@refs/(heads/main|tags/v[0-9]+\.[0-9]+\.[0-9]+)$'
ISSUER=https://token.actions.githubusercontent.com
export FAKE_LOG="$work/cosign.log"

# Runs verify-image.sh with the fake first on PATH and a known repository; the exit code is
# kept in $status, the output (both streams) in $work/out, and cosign's log starts empty.
verify() {
  : >"$FAKE_LOG"
  PATH="$work/bin:$PATH" SIGSTORE_REPOSITORY=${SIGSTORE_REPOSITORY-$REPO} \
    scripts/verify-image.sh "$@" >"$work/out" 2>&1
  status=$?
}
status_is() { [ "$status" -eq "$1" ]; }
says() { grep -qF -- "$1" "$work/out"; }
cosign_not_called() { [ ! -s "$FAKE_LOG" ]; }
calls_are() { [ "$(grep -c '^--- call$' "$FAKE_LOG")" -eq "$1" ]; }
# The arguments of call N, one a line.
call_args() { awk -v n="$1" '/^--- call$/ { i++; next } i == n' "$FAKE_LOG"; }
# Call N has `flag value` as consecutive arguments.
call_has() { call_args "$1" | grep -qxF -- "$2" && call_args "$1" | grep -A1 -xF -- "$2" | tail -n 1 | grep -qxF -- "$3"; }
last_arg_is() { [ "$(call_args "$1" | tail -n 1)" = "$2" ]; }
command_is() { [ "$(call_args "$1" | head -n 1)" = "$2" ]; }

echo "== scripts/verify-image.sh: references it refuses without asking cosign"
verify "$IMAGE:sha-0123456789abcdef"
check "a tag is refused with exit 2, naming the digest it needs" \
  status_is 2 -a says "names no digest" -a says "IMAGE@sha256:"
check "a tag never reaches cosign" cosign_not_called
verify
check "no image at all is refused with exit 2" status_is 2 -a says "no image given"
verify "$IMAGE@sha256:abc123"
check "a short digest is refused as malformed" status_is 2 -a says "malformed digest" -a cosign_not_called
verify "$IMAGE@sha256:$(printf 'A%.0s' $(seq 64))"
check "an uppercase digest is refused as malformed" status_is 2 -a says "malformed digest" -a cosign_not_called
verify "$IMAGE@sha512:$(printf 'a%.0s' $(seq 128))"
check "a digest other than sha256 is refused as malformed" status_is 2 -a says "malformed digest" -a cosign_not_called
verify "$IMAGE:1.4.2@$DIGEST"
check "a tag together with a digest is refused" status_is 2 -a says "names a tag as well as a digest" -a cosign_not_called
verify "$IMAGE@$DIGEST" "$IMAGE@$DIGEST"
check "two images are refused" status_is 2 -a says "one image at a time" -a cosign_not_called
SIGSTORE_REPOSITORY="not a repository" verify "$IMAGE@$DIGEST"
check "a malformed SIGSTORE_REPOSITORY is refused, naming it" \
  status_is 2 -a says "SIGSTORE_REPOSITORY must be owner/repo" -a cosign_not_called

echo "== scripts/verify-image.sh: what cosign decides"
FAKE_SIGNER="" verify "$IMAGE@$DIGEST"
check "an unsigned image is refused with exit 1" status_is 1 -a says "refused: '$IMAGE@$DIGEST' is not signed."
check "the refusal shows cosign's own reason" says "cosign: Error: no signatures found"
check "an unsigned image is not asked for provenance" calls_are 1
FAKE_SIGNER="https://github.com/mallory/sigmasight-backend/.github/workflows/ci.yml@refs/heads/main" verify "$IMAGE@$DIGEST"
check "an image signed by a fork's workflow is refused as signed by the wrong identity" \
  status_is 1 -a says "is signed, but not by" -a says "got subjects [https://github.com/mallory/"
FAKE_SIGNER="https://github.com/$REPO/.github/workflows/ci.yml@refs/pull/7/merge" verify "$IMAGE@$DIGEST"
check "an image signed by a pull request's run is refused" status_is 1 -a says "is signed, but not by"
FAKE_SIGNER="https://github.com/$REPO/.github/workflows/other.yml@refs/heads/main" verify "$IMAGE@$DIGEST"
check "an image signed by another workflow of this repository is refused" status_is 1 -a says "is signed, but not by"
FAKE_SIGNER="https://github.com/$REPO/.github/workflows/ci.yml@refs/heads/main-old" verify "$IMAGE@$DIGEST"
check "a branch that merely starts with main is refused (the regexp is anchored)" status_is 1 -a says "is signed, but not by"
FAKE_SIGNER=$MAIN FAKE_ISSUER=https://accounts.google.com verify "$IMAGE@$DIGEST"
check "the right subject from another OIDC issuer is refused" status_is 1 -a says "is signed, but not by"
FAKE_SIGNER=$MAIN FAKE_PROVENANCE=no verify "$IMAGE@$DIGEST"
check "a signed image without SLSA provenance is refused" \
  status_is 1 -a says "has no SLSA provenance attestation" -a says "none of the attestations matched the predicate type"

FAKE_SIGNER=$MAIN verify "$IMAGE@$DIGEST"
check "an image signed on main with provenance is verified (exit 0)" \
  status_is 0 -a says "verified $IMAGE@$DIGEST: signed by $MAIN at commit 0123456789abcdef"
check "cosign verify gets the repository's workflow identity, anchored" \
  command_is 1 verify -a call_has 1 --certificate-identity-regexp "$EXPECTED_REGEXP"
check "cosign verify gets GitHub Actions' OIDC issuer" call_has 1 --certificate-oidc-issuer "$ISSUER"
check "cosign verify is given the reference by digest, unchanged" last_arg_is 1 "$IMAGE@$DIGEST"
check "the provenance is checked as slsaprovenance1 against the same identity and issuer" \
  command_is 2 verify-attestation -a call_has 2 --type slsaprovenance1 \
    -a call_has 2 --certificate-identity-regexp "$EXPECTED_REGEXP" -a call_has 2 --certificate-oidc-issuer "$ISSUER" \
    -a last_arg_is 2 "$IMAGE@$DIGEST"
FAKE_SIGNER=$RELEASE verify "$IMAGE@$DIGEST"
check "an image signed on a vX.Y.Z tag is verified" status_is 0

echo "== scripts/verify-image.sh: where the identity comes from"
origin_repo="$work/checkout"
git init -q "$origin_repo" && git -C "$origin_repo" remote add origin git@github.com:acme/sigmasight-backend.git
FAKE_SIGNER=$MAIN GIT_DIR="$origin_repo/.git" GITHUB_REPOSITORY="" SIGSTORE_REPOSITORY="" verify "$IMAGE@$DIGEST"
check "without SIGSTORE_REPOSITORY the repository comes from the origin remote" \
  status_is 0 -a call_has 1 --certificate-identity-regexp "$EXPECTED_REGEXP"
FAKE_SIGNER=$MAIN GIT_DIR="$origin_repo/.git" GITHUB_REPOSITORY="Acme/Web.App" SIGSTORE_REPOSITORY="" verify "$IMAGE@$DIGEST"
check "GITHUB_REPOSITORY comes before the remote, its dots escaped" \
  call_has 1 --certificate-identity-regexp '^https://github\.com/Acme/Web\.App/\.github/workflows/ci\.yml@refs/(heads/main|tags/v[0-9]+\.[0-9]+\.[0-9]+)$'
git init -q "$work/no-remote"
GIT_DIR="$work/no-remote/.git" GITHUB_REPOSITORY="" SIGSTORE_REPOSITORY="" verify "$IMAGE@$DIGEST"
check "with no repository to be found it refuses, naming SIGSTORE_REPOSITORY" \
  status_is 2 -a says "set SIGSTORE_REPOSITORY=owner/repo" -a cosign_not_called
FAKE_SIGNER=$MAIN SIGSTORE_IDENTITY_REGEXP='^https://example\.com/ci$' verify "$IMAGE@$DIGEST"
check "SIGSTORE_IDENTITY_REGEXP replaces the default identity" \
  status_is 1 -a call_has 1 --certificate-identity-regexp "^https://example\.com/ci$"
FAKE_SIGNER=$MAIN verify --oidc-issuer https://issuer.example "$IMAGE@$DIGEST"
check "--oidc-issuer replaces the issuer" status_is 1 -a call_has 1 --certificate-oidc-issuer https://issuer.example
: >"$FAKE_LOG"
PATH="$work/bin:$PATH" COSIGN="$work/missing/cosign" SIGSTORE_REPOSITORY=$REPO \
  scripts/verify-image.sh "$IMAGE@$DIGEST" >"$work/out" 2>&1
status=$?
check "without cosign it refuses (exit 1) rather than passing" status_is 1 -a says "cosign is not installed"

echo "== scripts/rollback.sh: a registry image must be verified before it is pulled"
rollback() {
  : >"$FAKE_LOG"
  COSIGN="$work/bin/cosign" SIGSTORE_REPOSITORY=$REPO API_IMAGE="sigmasight-verify-test-$$" \
    scripts/rollback.sh "$@" >"$work/out" 2>&1
  status=$?
}
rollback "$IMAGE:sha-0123456789abcdef"
check "a registry image by tag is refused (exit 2), pointing at the digest form" \
  status_is 2 -a says "names a registry image by tag" -a says "$IMAGE@sha256:<digest>" -a cosign_not_called
FAKE_SIGNER="" rollback "$IMAGE@$DIGEST"
check "an unsigned registry digest is refused and nothing is pulled" \
  status_is 1 -a says "mode: registry digest" -a says "is not signed" -a says "nothing was pulled or deployed" -a not says "rollback: api ->"
check "the registry digest went to cosign verify as given" call_has 1 --certificate-identity-regexp "$EXPECTED_REGEXP" -a last_arg_is 1 "$IMAGE@$DIGEST"
FAKE_SIGNER="https://github.com/mallory/sigmasight-backend/.github/workflows/ci.yml@refs/heads/main" rollback "$IMAGE@$DIGEST"
check "a registry digest signed by another identity is refused" status_is 1 -a says "is signed, but not by" -a not says "rollback: api ->"
rollback "$IMAGE@sha256:abc"
check "a malformed registry digest is refused before cosign" status_is 1 -a says "malformed digest" -a cosign_not_called
rollback "no-such-local-image-$$"
check "local mode still answers for local names, and says so" \
  status_is 1 -a says "mode: local image" -a says "no local image" -a cosign_not_called

echo "verify-image: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
