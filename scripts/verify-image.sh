#!/usr/bin/env bash
# Checks that an image is one this repository's CI published, before anything deploys it:
#
#   scripts/verify-image.sh [options] IMAGE@sha256:<64 hex digits>
#
#   1. the reference names a digest, never a tag (a tag can be moved after the check);
#   2. `cosign verify`: a keyless Sigstore signature whose certificate names this repository's
#      workflow, .github/workflows/ci.yml, on main or on a vX.Y.Z tag, issued to GitHub Actions;
#   3. `cosign verify-attestation --type slsaprovenance1`: a SLSA v1 provenance attestation of
#      that digest, signed by the same identity (the workflow attests with `cosign attest`).
#
# Anything else is refused with one sentence on stderr: exit 2 for a bad argument or setting
# (nothing was checked, cosign was not called), exit 1 for an image that failed a check.
#
# Options, each also an environment variable; the defaults come from the repository:
#   --repository OWNER/REPO      SIGSTORE_REPOSITORY; else GITHUB_REPOSITORY, else the
#                                github.com path of the `origin` remote
#   --identity-regexp RE         SIGSTORE_IDENTITY_REGEXP; default
#                                ^https://github\.com/OWNER/REPO/\.github/workflows/ci\.yml@refs/(heads/main|tags/v[0-9]+\.[0-9]+\.[0-9]+)$
#   --oidc-issuer URL            SIGSTORE_OIDC_ISSUER; default https://token.actions.githubusercontent.com
#   COSIGN                       the cosign program (v2), default `cosign` on PATH
#
# Signatures live in the image's registry and are checked against Sigstore's public-good
# instance (Fulcio, Rekor, TUF root), so both must be reachable.
set -euo pipefail

me=verify-image
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }
refuse() { # exit code, sentence
  echo "$me: $2" >&2
  exit "$1"
}

repository=${SIGSTORE_REPOSITORY:-}
identity_regexp=${SIGSTORE_IDENTITY_REGEXP:-}
issuer=${SIGSTORE_OIDC_ISSUER:-https://token.actions.githubusercontent.com}
cosign=${COSIGN:-cosign}
image=

while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage; exit 0 ;;
    --repository | --identity-regexp | --oidc-issuer)
      [ $# -ge 2 ] || refuse 2 "$1 needs a value."
      case $1 in
        --repository) repository=$2 ;;
        --identity-regexp) identity_regexp=$2 ;;
        --oidc-issuer) issuer=$2 ;;
      esac
      shift 2
      ;;
    -*) refuse 2 "unknown option $1 (see --help)." ;;
    *)
      [ -z "$image" ] || refuse 2 "one image at a time: got '$image' and '$1'."
      image=$1
      shift
      ;;
  esac
done

# --- the reference: NAME@sha256:<64 lowercase hex>, nothing else ----------------------------
[ -n "$image" ] || refuse 2 "no image given: scripts/verify-image.sh IMAGE@sha256:<64 hex digits>."
# A name as the distribution spec writes one: lowercase path components, the first of which
# may be a registry host with a port.
name_re='^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*$'
case $image in
  *@*)
    name=${image%%@*}
    digest=${image#*@}
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] \
      || refuse 2 "'$image' has a malformed digest: expected sha256: and 64 lowercase hex digits after the @."
    if [[ ${name##*/} == *:* ]]; then
      refuse 2 "'$image' names a tag as well as a digest: give IMAGE@sha256:... alone."
    fi
    [[ $name =~ $name_re ]] || refuse 2 "'$name' is not an image name (lowercase, e.g. ghcr.io/owner/repo)."
    ;;
  *)
    refuse 2 "'$image' names no digest: a tag can be moved after it is checked, so give IMAGE@sha256:<64 hex digits> (the run summary of the publishing workflow prints it)."
    ;;
esac

# --- whose signature counts -----------------------------------------------------------------
if [ -z "$identity_regexp" ]; then
  if [ -z "$repository" ]; then
    repository=${GITHUB_REPOSITORY:-}
  fi
  if [ -z "$repository" ]; then
    origin=$(git -C "$(dirname "${BASH_SOURCE[0]}")/.." remote get-url origin 2>/dev/null || true)
    if [[ $origin =~ ^(https://|ssh://git@|git@)github\.com[:/]([^/]+/[^/]+)$ ]]; then
      repository=${BASH_REMATCH[2]%.git}
    fi
  fi
  [ -n "$repository" ] \
    || refuse 2 "cannot tell which repository's workflow must have signed the image: set SIGSTORE_REPOSITORY=owner/repo (or pass --repository)."
  [[ $repository =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] \
    || refuse 2 "SIGSTORE_REPOSITORY must be owner/repo, got '$repository'."
  # Dots in owner or repository names are literal in the certificate, not "any character".
  identity_regexp="^https://github\\.com/${repository//./\\.}/\\.github/workflows/ci\\.yml@refs/(heads/main|tags/v[0-9]+\\.[0-9]+\\.[0-9]+)\$"
fi
[[ $issuer =~ ^https://[^[:space:]]+$ ]] || refuse 2 "SIGSTORE_OIDC_ISSUER must be an https:// URL, got '$issuer'."

command -v "$cosign" >/dev/null 2>&1 \
  || refuse 1 "cosign is not installed, so '$image' cannot be verified (install cosign v2, or set COSIGN)."

# --- the checks -----------------------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/verify-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
identity=(--certificate-identity-regexp "$identity_regexp" --certificate-oidc-issuer "$issuer")

# cosign's own explanation, indented under our sentence.
explain() { grep -v '^[[:space:]]*$' "$1" | sed 's/^/    cosign: /' >&2 || true; }

set +e
"$cosign" verify "${identity[@]}" "$image" >"$work/signature.json" 2>"$work/signature.err"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  # cosign's exit codes: 10 no signature at all, 12 signatures but none from this identity.
  case $status in
    10) echo "$me: refused: '$image' is not signed." >&2 ;;
    12) echo "$me: refused: '$image' is signed, but not by $identity_regexp (issuer $issuer)." >&2 ;;
    *) echo "$me: refused: cosign could not verify the signature of '$image' (exit $status)." >&2 ;;
  esac
  explain "$work/signature.err"
  exit 1
fi

set +e
"$cosign" verify-attestation --type slsaprovenance1 "${identity[@]}" "$image" \
  >"$work/provenance.json" 2>"$work/provenance.err"
status=$?
set -e
if [ "$status" -ne 0 ]; then
  echo "$me: refused: '$image' is signed, but has no SLSA provenance attestation from $identity_regexp." >&2
  explain "$work/provenance.err"
  exit 1
fi

# Who signed and from which commit, as the certificate says (cosign's JSON: Subject and
# githubWorkflowSha); only for the message, the checks above already decided.
field() { grep -o "\"$1\":\"[^\"]*\"" "$work/signature.json" | head -n 1 | cut -d'"' -f4; }
subject=$(field Subject)
commit=$(field githubWorkflowSha)
echo "$me: verified $image: signed by ${subject:-$identity_regexp}${commit:+ at commit $commit}, with SLSA provenance."
