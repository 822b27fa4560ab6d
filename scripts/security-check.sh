#!/usr/bin/env bash
# The CI pipeline's security checks, run locally with whatever tools are installed:
#   hadolint                 the Dockerfile
#   cargo deny (deny.toml)   licences, banned crates (OpenSSL among them), crate sources
#   advisories               RustSec advisories by `cargo deny` (or `cargo audit`), when the
#                            advisory database can be fetched
#   trivy                    the image $IMAGE (default sigmasight-backend:local): fixable HIGH
#                            and CRITICAL findings fail
#
#   scripts/security-check.sh            # everything the tools and the network allow
#   scripts/security-check.sh --offline  # no network: hadolint and cargo deny only (scripts/test.sh)
#
# A missing tool is reported as skipped, not failed, except under CI=true, where cargo-deny
# must be there (.ci/run installs it). Ends with one line: `security-check: N passed, N failed,
# N skipped`; exits 1 if anything failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

offline=false
case "${1:-}" in
  "") ;;
  --offline) offline=true ;;
  -h | --help)
    sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
    exit 0
    ;;
  *)
    echo "security-check: unknown argument: $1 (expected --offline)" >&2
    exit 2
    ;;
esac

IMAGE=${IMAGE:-sigmasight-backend:local}
ADVISORY_DB_URL=https://github.com/rustsec/advisory-db
passed=0
failed=0
skipped=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
skip() { skipped=$((skipped + 1)); printf 'skip  %s\n' "$*"; }
step() { printf '\n-- %s\n' "$*"; }

step "hadolint"
if command -v hadolint >/dev/null 2>&1; then
  if hadolint Dockerfile; then pass "hadolint: Dockerfile"; else fail "hadolint: Dockerfile"; fi
else
  skip "hadolint: skipped: not installed (scripts/python-tools.txt, into .venv)"
fi

have_deny=false
if cargo deny --version >/dev/null 2>&1; then have_deny=true; fi

step "cargo deny: licences, bans, sources"
if $have_deny; then
  if cargo deny --locked check --hide-inclusion-graph licenses bans sources; then
    pass "cargo deny: licences, bans and sources as deny.toml allows"
  else
    fail "cargo deny: licences, bans or sources (see above)"
  fi
elif [ "${CI:-}" = true ]; then
  fail "cargo deny: not installed (cargo install --locked cargo-deny@0.20.2)"
else
  skip "cargo deny: skipped: not installed (cargo install --locked cargo-deny@0.20.2)"
fi

step "RustSec advisories"
if $offline; then
  skip "advisories: skipped: --offline"
elif ! $have_deny && ! cargo audit --version >/dev/null 2>&1; then
  skip "advisories: skipped: neither cargo-deny nor cargo-audit is installed"
# A quick probe with a timeout: where the database's host cannot be reached, fetching it would
# fail only after the tools' own, much longer, network timeouts.
elif ! GIT_TERMINAL_PROMPT=0 timeout 15 git ls-remote "$ADVISORY_DB_URL" HEAD >/dev/null 2>&1; then
  skip "advisories: skipped: advisory database unreachable ($ADVISORY_DB_URL)"
elif $have_deny; then
  if cargo deny --locked check --hide-inclusion-graph advisories; then
    pass "advisories: none unhandled (cargo deny)"
  else
    fail "advisories: see above (cargo deny)"
  fi
else
  if cargo audit; then pass "advisories: none (cargo audit)"; else fail "advisories: see above (cargo audit)"; fi
fi

step "trivy: the image $IMAGE"
if $offline; then
  skip "trivy: skipped: --offline (it fetches its vulnerability database)"
elif ! command -v trivy >/dev/null 2>&1; then
  skip "trivy: skipped: trivy not installed"
elif ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  skip "trivy: skipped: no image $IMAGE (build it, or set IMAGE)"
elif trivy image --exit-code 1 --ignore-unfixed --severity HIGH,CRITICAL "$IMAGE"; then
  pass "trivy: no fixable HIGH or CRITICAL findings in $IMAGE"
else
  fail "trivy: fixable HIGH or CRITICAL findings in $IMAGE (or the scan failed)"
fi

echo
echo "security-check: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
