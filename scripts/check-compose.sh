#!/usr/bin/env bash
# Checks docker-compose.yml with compose's own parser (`config`), no engine needed:
#
#   1. the file is valid;
#   2. every setting of src/config/settings.rs (each entry's key, in capitals) reaches `api`, `etl`
#      and the replicas of the `replicas` profile (`api-1`, `api-2`, `api-3`) from .env:
#      rendered with an env file that sets each to a marker value, each service's environment
#      holds the marker, except the settings compose sets itself (DATABASE_URL, MIGRATE_ON_START,
#      PORT) and DATABASE_MIGRATION_URL, which neither is given; SECRET_KEY and
#      SECRET_KEY_PREVIOUS reach the API services only (not `etl`), as does DEMO_PASSWORD (read
#      by `seed`);
#   3. a setting that is not set stays unset: rendered with an empty env file and none of them in
#      the environment, each passed-through key is null (left out of the container), never "";
#      the replicas alone have fallbacks of their own for SHUTDOWN_DRAIN_SECONDS and
#      TRUSTED_PROXY_HOPS.
#
# Without docker-compose or `docker compose` it says `skipped`, unless CI=true (a failure there).
# Ends with "compose: N passed, N failed"; exits 1 if anything failed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh
# shellcheck source=scripts/lib/settings.sh
source scripts/lib/settings.sh

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok    %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }

if ! "${compose[@]}" version >/dev/null 2>&1; then
  if [ "${CI:-}" = true ]; then
    echo "FAIL  no docker-compose or docker compose: cannot check docker-compose.yml"
    echo "compose: 0 passed, 1 failed"
    exit 1
  fi
  echo "compose: skipped (no docker-compose or docker compose installed)"
  exit 0
fi

# The settings, read from the table the app reads its environment by (scripts/lib/settings.sh).
mapfile -t keys < <(settings_keys | tr '[:lower:]' '[:upper:]')
if [ "${#keys[@]}" -lt 10 ]; then
  echo "FAIL  cannot read the keys from src/config/settings.rs (found ${#keys[@]})"
  echo "compose: 0 passed, 1 failed"
  exit 1
fi
# Set by compose itself (a URL built from the role passwords; migrations are the `migrate`
# service's; the port that `ports:` publishes), or never given to api and etl (the owner's URL).
compose_owned=(DATABASE_URL MIGRATE_ON_START PORT)
not_passed=(DATABASE_MIGRATION_URL)
api_only=(SECRET_KEY SECRET_KEY_PREVIOUS DEMO_PASSWORD)
for key in "${compose_owned[@]}" "${not_passed[@]}" SECRET_KEY SECRET_KEY_PREVIOUS; do
  if ! printf '%s\n' "${keys[@]}" | grep -qx "$key"; then
    fail "$key is no longer a key of src/config/settings.rs: update this script"
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sigmasight-compose-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
marker() { printf 'from-env-file-%s' "$1"; }
: >"$work/empty.env"
for key in "${keys[@]}" DEMO_PASSWORD; do
  printf '%s=%s\n' "$key" "$(marker "$key")" >>"$work/set.env"
done

# render ENV_FILE: the merged file, with none of the settings in compose's own environment.
render() {
  local unset_args=()
  for key in "${keys[@]}" DEMO_PASSWORD; do unset_args+=(-u "$key"); done
  env "${unset_args[@]}" "${compose[@]}" --env-file "$1" -f docker-compose.yml config
}
# environment_of SERVICE < rendered: "KEY VALUE" lines of that service's environment, quotes
# stripped; VALUE is `null` for a key with no value and `<empty>` for an empty string.
environment_of() {
  awk -v service="  $1:" '
    $0 == service { in_service = 1; next }
    in_service && /^  [^ ]/ { in_service = 0 }
    in_service && /^    environment:/ { in_env = 1; next }
    in_env && !/^      / { in_env = 0 }
    in_env {
      line = $0; sub(/^ +/, "", line)
      key = line; sub(/:.*/, "", key)
      value = line; sub(/^[^:]*:[ ]*/, "", value)
      if (value == "" || value == "null" || value == "~") value = "null"
      else if (value == "\"\"" || value == "\047\047") value = "<empty>"
      else gsub(/^["\047]|["\047]$/, "", value)
      print key, value
    }'
}
value_of() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }
one_of() { # one_of WORD LIST...
  local word=$1
  shift
  printf '%s\n' "$@" | grep -qx -- "$word"
}
# Settings compose gives a fallback of its own when they are set nowhere: the app's own defaults,
# and SECRET_KEY's local-only key (see the file's comments).
with_fallback=(LOG_LEVEL LOG_FORMAT CORS_ALLOWED_ORIGINS SHUTDOWN_GRACE_SECONDS SECRET_KEY)
# The replicas drain for a few seconds at SIGTERM (the balancer's health checks must take them
# out first) and trust the balancer's X-Forwarded-For, unless .env says otherwise
# (deploy/haproxy/haproxy.cfg).
replica_fallback=(SHUTDOWN_DRAIN_SECONDS TRUSTED_PROXY_HOPS)
replicas=(api-1 api-2 api-3)

if "${compose[@]}" -f docker-compose.yml config -q 2>"$work/err"; then
  ok "docker-compose.yml is valid (${compose[*]})"
else
  fail "docker-compose.yml is not valid: $(cat "$work/err")"
fi

render "$work/set.env" >"$work/set.yml"
render "$work/empty.env" >"$work/empty.yml"
for service in api etl "${replicas[@]}"; do
  fallback=("${with_fallback[@]}")
  one_of "$service" "${replicas[@]}" && fallback+=("${replica_fallback[@]}")
  environment_of "$service" <"$work/set.yml" >"$work/$service.set"
  environment_of "$service" <"$work/empty.yml" >"$work/$service.empty"
  missing=()
  given=()
  not_unset=()
  for key in "${keys[@]}" DEMO_PASSWORD; do
    value=$(value_of "$key" "$work/$service.set")
    if one_of "$key" "${not_passed[@]}" || { [ "$service" = etl ] && one_of "$key" "${api_only[@]}"; }; then
      [ -z "$value" ] || given+=("$key")
    elif one_of "$key" "${compose_owned[@]}"; then
      [ -n "$value" ] && [ "$value" != "$(marker "$key")" ] || missing+=("$key (compose sets it)")
    else
      [ "$value" = "$(marker "$key")" ] || missing+=("$key")
      if ! one_of "$key" "${fallback[@]}"; then
        unset_value=$(value_of "$key" "$work/$service.empty")
        [ -z "$unset_value" ] || [ "$unset_value" = null ] || not_unset+=("$key=$unset_value")
      fi
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    ok "$service: every setting of src/config/settings.rs set in .env reaches it (${#keys[@]} keys)"
  else
    fail "$service: not passed from .env: ${missing[*]} (add them to docker-compose.yml)"
  fi
  if [ ${#given[@]} -eq 0 ]; then
    if [ "$service" = etl ]; then
      ok "$service: gets neither DATABASE_MIGRATION_URL nor the API's SECRET_KEY, SECRET_KEY_PREVIOUS, DEMO_PASSWORD"
    else
      ok "$service: does not get DATABASE_MIGRATION_URL"
    fi
  else
    fail "$service: gets what is not its own: ${given[*]}"
  fi
  if [ ${#not_unset[@]} -eq 0 ]; then
    ok "$service: a setting set nowhere stays unset in the container (null, never \"\")"
  else
    fail "$service: set although set nowhere: ${not_unset[*]}"
  fi
done

echo "compose: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
