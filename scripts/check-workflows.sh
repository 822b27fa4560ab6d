#!/usr/bin/env bash
# Checks the GitHub Actions files offline:
#   - each workflow against GitHub's workflow schema, and dependabot.yml against its own
#     (check-jsonschema carries both schemas, so no network is needed);
#   - every `uses:` of a third-party action is pinned by a full 40-hex commit SHA with the
#     release in a trailing comment (`owner/repo@<sha> # v1.2.3`); a `docker://` image by digest;
#   - zizmor, offline, finds nothing in the workflows and dependabot.yml.
#
#   scripts/check-workflows.sh [DIR]    # DIR defaults to .github
#
# Without check-jsonschema or zizmor their checks are skipped with a message (the pin checks
# still run), unless CI=true, where a missing tool is a failure: CI installs both (.ci/run,
# and the workflow's test job).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dir=${1:-.github}
passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }

shopt -s nullglob
workflows=("$dir"/workflows/*.yml "$dir"/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "error: no workflow files under $dir/workflows" >&2
  exit 1
fi

# --- schemas ------------------------------------------------------------------------------
if command -v check-jsonschema >/dev/null 2>&1; then
  for file in "${workflows[@]}"; do
    if out=$(check-jsonschema --builtin-schema vendor.github-workflows "$file" 2>&1); then
      ok "$file: workflow schema"
    else
      fail "$file: workflow schema"
      printf '%s\n' "$out" | sed 's/^/      /'
    fi
  done
  if [ -f "$dir/dependabot.yml" ]; then
    if out=$(check-jsonschema --builtin-schema vendor.dependabot "$dir/dependabot.yml" 2>&1); then
      ok "$dir/dependabot.yml: dependabot schema"
    else
      fail "$dir/dependabot.yml: dependabot schema"
      printf '%s\n' "$out" | sed 's/^/      /'
    fi
  fi
elif [ "${CI:-}" = true ]; then
  fail "check-jsonschema is not installed (scripts/python-tools.txt: into .venv)"
else
  echo "schemas: skipped (check-jsonschema not installed: scripts/python-tools.txt, into .venv)"
fi

# --- pins ---------------------------------------------------------------------------------
sha_pin='^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}[[:space:]]+#[[:space:]]*v?[0-9]+(\.[0-9]+)*([-+][0-9A-Za-z.-]+)?[[:space:]]*$'
digest_pin='^docker://[^[:space:]]+@sha256:[0-9a-f]{64}([[:space:]]+#.*)?$'
for file in "${workflows[@]}"; do
  bad=0
  count=0
  lineno=0
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    [[ $line =~ ^[[:space:]]*(-[[:space:]]+)?uses:[[:space:]]*(.*)$ ]] || continue
    ref=${BASH_REMATCH[2]}
    # Quotes around the reference are allowed; the comment must follow them.
    ref=$(printf '%s' "$ref" | sed -E 's/^"([^"]*)"/\1/; s/^'"'"'([^'"'"']*)'"'"'/\1/')
    count=$((count + 1))
    case $ref in
      ./*) continue ;; # an action in this repository: pinned by the commit itself
    esac
    if [[ $ref =~ $sha_pin ]] || [[ $ref =~ $digest_pin ]]; then
      continue
    fi
    bad=$((bad + 1))
    printf '      %s:%d: not pinned by a full commit SHA with a version comment: %s\n' \
      "$file" "$lineno" "$ref"
  done <"$file"
  if [ "$bad" -eq 0 ]; then
    ok "$file: $count actions pinned by SHA with a version comment"
  else
    fail "$file: $bad of $count actions not pinned"
  fi
done

# --- zizmor ---------------------------------------------------------------------------------
# Static analysis of the workflows and dependabot.yml (template injection, credentials left in
# checkouts, excessive permissions, cache poisoning of published artifacts, Dependabot cooldown,
# ...). --offline: the audits that would ask GitHub's API are left out. A finding fails; one
# that is accepted is ignored inline, with the reason, next to the line it is about.
audited=("${workflows[@]}")
[ -f "$dir/dependabot.yml" ] && audited+=("$dir/dependabot.yml")
if command -v zizmor >/dev/null 2>&1; then
  if out=$(zizmor --offline --no-progress --color never "${audited[@]}" 2>&1); then
    ok "zizmor: no findings ($(zizmor --version))"
  else
    fail "zizmor: findings, or it could not audit (below)"
    printf '%s\n' "$out" | sed 's/^/      /'
  fi
elif [ "${CI:-}" = true ]; then
  fail "zizmor is not installed (scripts/python-tools.txt: into .venv)"
else
  echo "zizmor: skipped (not installed: scripts/python-tools.txt, into .venv)"
fi

echo "workflows: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
