#!/usr/bin/env bash
# Checks the Railway deployment files without a Railway account or network access to Railway:
#
#   1. railway.json and railway.etl.json (config as code): they parse, use only documented keys
#      with the documented types, and hold the values the service depends on (readiness
#      healthcheck, draining longer than the app's shutdown grace, exec-form commands, a cron
#      service with no healthcheck that is never restarted).
#   2. .railway/railway.ts (infrastructure as code): `npm ci` and `tsc --noEmit` against the
#      SDK's types, then .railway/check.ts, which evaluates the program, runs the SDK's
#      validateGraph and asserts the same values, that they match the JSON files, that the
#      services connect as the roles of scripts/db/roles.sql (the app role to serve and load,
#      the owner only for the pre-deploy migrate), and that every variable is declared as the
#      table of docs/railway.md says, with every setting of src/config/settings.rs in that table.
#      Both of the file's modes: the Dockerfile build, and SIGMASIGHT_IMAGE set to a registry
#      image by digest (the same settings, the image as source); a tag there must be refused.
#
# Part 2 is skipped when node or npm is not installed; a type error fails it.
# Ends with "railway: N passed, N failed, N skipped"; exits 1 if anything failed.
#
# Usage: scripts/check-railway.sh
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
# shellcheck source=scripts/lib/settings.sh
source scripts/lib/settings.sh

passed=0
failed=0
skipped=0

# Reads "ok<TAB>name", "FAIL<TAB>name: why" and "skip<TAB>name: why" lines, prints and counts them.
tally() {
  local status name
  while IFS=$'\t' read -r status name; do
    case "$status" in
      ok) passed=$((passed + 1)); printf 'ok    %s\n' "$name" ;;
      FAIL) failed=$((failed + 1)); printf 'FAIL  %s\n' "$name" ;;
      skip) skipped=$((skipped + 1)); printf 'skip  %s\n' "$name" ;;
      *) printf '      %s%s\n' "$status" "${name:+ $name}" ;;
    esac
  done
}
ok() { tally <<<"ok"$'\t'"$1"; }
fail() { tally <<<"FAIL"$'\t'"$1"; }
skip() { tally <<<"skip"$'\t'"$1"; }

# The grace period the app gives in-flight requests on SIGTERM, read from its own defaults so
# that raising it there without raising drainingSeconds here fails this check.
grace=$(settings_integer_default shutdown_grace_seconds)
if [ -n "$grace" ]; then
  ok "the app's default SHUTDOWN_GRACE_SECONDS is $grace s (src/config/settings.rs)"
else
  fail "cannot find the default shutdown_grace_seconds in src/config/settings.rs"
  grace=25
fi
export SHUTDOWN_GRACE_SECONDS_DEFAULT=$grace

echo "== config as code: railway.json, railway.etl.json"
if command -v python3 >/dev/null 2>&1; then
  tally < <(python3 - "$grace" <<'PY' || printf 'FAIL\tthe JSON checker crashed\n'
import json
import os
import re
import sys

GRACE = int(sys.argv[1])
SCHEMA_URL = "https://railway.com/railway.schema.json"
BINARY = "/usr/local/bin/sigmasight"
IMAGE_INPUTS = {"src/**", "migrations/**", "Cargo.toml", "Cargo.lock", "build.rs", "Dockerfile", ".dockerignore"}

# The documented keys (Railway's config-as-code reference) and the type each takes. Neither the
# `railway` npm package nor the Railway CLI package ships the JSON schema, so it is kept here.
# overlapSeconds and drainingSeconds are numbers: the reference shows strings, which Railway's
# parser rejects ("Expected number, received string").
STR, INT, BOOL, OBJ, STRS = "a string", "an integer", "a boolean", "an object", "a list of strings"
BUILD = {
    "builder": {"RAILPACK", "DOCKERFILE", "NIXPACKS"},
    "watchPatterns": STRS,
    "buildCommand": STR,
    "dockerfilePath": STR,
    "railpackVersion": STR,
    "nixpacksConfigPath": STR,
    "nixpacksPlan": OBJ,
    "nixpacksVersion": STR,
}
DEPLOY = {
    "startCommand": STR,
    "preDeployCommand": STRS,
    "numReplicas": INT,
    "multiRegionConfig": OBJ,
    "healthcheckPath": STR,
    "healthcheckTimeout": INT,
    "restartPolicyType": {"ON_FAILURE", "ALWAYS", "NEVER"},
    "restartPolicyMaxRetries": INT,
    "cronSchedule": STR,
    "overlapSeconds": INT,
    "drainingSeconds": INT,
}
SECTIONS = {"build": BUILD, "deploy": DEPLOY}
# Keys the reference says may be null (to fall back to the service settings).
NULLABLE = {
    "buildCommand", "dockerfilePath", "railpackVersion", "nixpacksConfigPath", "nixpacksPlan",
    "nixpacksVersion", "startCommand", "multiRegionConfig", "healthcheckPath",
    "healthcheckTimeout", "restartPolicyMaxRetries", "cronSchedule", "overlapSeconds",
    "drainingSeconds", "numReplicas",
}


def report(ok, name, why=""):
    print(f"ok\t{name}" if ok else f"FAIL\t{name}" + (f": {why}" if why else ""))


def type_ok(value, expected):
    if isinstance(expected, set):
        return isinstance(value, str) and value in expected
    if expected == STR:
        return isinstance(value, str)
    if expected == INT:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if expected == BOOL:
        return isinstance(value, bool)
    if expected == OBJ:
        return isinstance(value, dict)
    if expected == STRS:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return False


def describe(expected):
    return "one of " + ", ".join(sorted(expected)) if isinstance(expected, set) else expected


def key_problems(doc):
    """Unknown keys and wrongly typed values, as 'path: problem' strings."""
    problems = []

    def section(path, body, allowed):
        if not isinstance(body, dict):
            problems.append(f"{path}: expected an object")
            return
        for key, value in body.items():
            if key not in allowed:
                problems.append(f"{path}.{key}: not a documented key")
            elif value is None:
                if key not in NULLABLE:
                    problems.append(f"{path}.{key}: may not be null")
            elif not type_ok(value, allowed[key]):
                problems.append(f"{path}.{key}: expected {describe(allowed[key])}, got {value!r}")

    for key, value in doc.items():
        if key == "$schema":
            if not isinstance(value, str):
                problems.append("$schema: expected a string")
        elif key in SECTIONS:
            section(key, value, SECTIONS[key])
        elif key == "environments":
            if not isinstance(value, dict):
                problems.append("environments: expected an object")
                continue
            for env, override in value.items():
                if not isinstance(override, dict):
                    problems.append(f"environments.{env}: expected an object")
                    continue
                for name, body in override.items():
                    if name in SECTIONS:
                        section(f"environments.{env}.{name}", body, SECTIONS[name])
                    else:
                        problems.append(f"environments.{env}.{name}: not a documented key")
        else:
            problems.append(f"{key}: not a documented key")
    return problems


def exec_form(command, subcommand):
    """Railway runs a Dockerfile service's commands in exec form: no shell, no $VAR expansion."""
    return (
        isinstance(command, str)
        and command.split() == [BINARY, subcommand]
        and not re.search(r"[$`;&|<>()\"'\\]", command)
    )


def cron_after_close(schedule):
    """Five fields, fixed minute and hour at or after 21:00 UTC (16:00 New York in EST; in EDT
    the close is 20:00 UTC), weekdays only."""
    fields = schedule.split() if isinstance(schedule, str) else []
    if len(fields) != 5 or not fields[0].isdigit() or not fields[1].isdigit():
        return False
    minute, hour = int(fields[0]), int(fields[1])
    return minute < 60 and 21 <= hour <= 23 and fields[2] == "*" and fields[3] == "*" and fields[4] == "1-5"


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as error:
        report(False, f"{path}: parses as JSON", str(error))
        return None
    report(isinstance(doc, dict), f"{path}: parses as a JSON object")
    return doc if isinstance(doc, dict) else None


def common(path, doc, own_file):
    problems = key_problems(doc)
    report(not problems, f"{path}: only documented keys, with documented types", "; ".join(problems))
    report(doc.get("$schema") == SCHEMA_URL, f"{path}: $schema is {SCHEMA_URL}", repr(doc.get("$schema")))
    build = doc.get("build") if isinstance(doc.get("build"), dict) else {}
    report(
        build.get("builder") == "DOCKERFILE" and build.get("dockerfilePath") == "Dockerfile",
        f"{path}: built from the root Dockerfile",
    )
    patterns = set(build.get("watchPatterns") or [])
    missing = sorted((IMAGE_INPUTS | {own_file}) - patterns)
    report(not missing, f"{path}: watchPatterns cover the image's inputs and this file", "missing " + ", ".join(missing))
    return doc.get("deploy") if isinstance(doc.get("deploy"), dict) else {}


api = load("railway.json")
if api is not None:
    d = common("railway.json", api, "railway.json")
    report(d.get("healthcheckPath") == "/api/v1/health", "railway.json: healthcheckPath is readiness, /api/v1/health", repr(d.get("healthcheckPath")))
    timeout = d.get("healthcheckTimeout")
    report(type_ok(timeout, INT) and 30 <= timeout <= 300, "railway.json: healthcheckTimeout is 30-300 s", repr(timeout))
    report(
        d.get("restartPolicyType") == "ON_FAILURE" and type_ok(d.get("restartPolicyMaxRetries"), INT) and d["restartPolicyMaxRetries"] > 0,
        "railway.json: restarts on failure, a bounded number of times",
    )
    draining = d.get("drainingSeconds")
    report(
        type_ok(draining, INT) and draining > GRACE,
        f"railway.json: drainingSeconds exceeds the app's shutdown grace ({GRACE} s)",
        repr(draining),
    )
    report(type_ok(d.get("overlapSeconds"), INT), "railway.json: overlapSeconds is set", repr(d.get("overlapSeconds")))
    start = d.get("startCommand")
    report(start is None or exec_form(start, "serve"), f"railway.json: startCommand is absent or '{BINARY} serve'", repr(start))
    pre = d.get("preDeployCommand")
    # Railway runs one command from this list (the first); more entries would be ignored.
    report(
        pre is None or (isinstance(pre, list) and len(pre) == 1 and exec_form(pre[0], "migrate")),
        f"railway.json: preDeployCommand is absent or ['{BINARY} migrate']",
        repr(pre),
    )
    report(d.get("cronSchedule") is None, "railway.json: no cronSchedule (the API is not a cron service)")

etl = load("railway.etl.json")
if etl is not None:
    d = common("railway.etl.json", etl, "railway.etl.json")
    report(exec_form(d.get("startCommand"), "etl"), f"railway.etl.json: startCommand is '{BINARY} etl'", repr(d.get("startCommand")))
    report(cron_after_close(d.get("cronSchedule")), "railway.etl.json: cronSchedule runs on weekdays after the US close (UTC)", repr(d.get("cronSchedule")))
    report(d.get("healthcheckPath") is None, "railway.etl.json: no healthcheckPath (a cron run serves nothing)", repr(d.get("healthcheckPath")))
    report(d.get("restartPolicyType") == "NEVER", "railway.etl.json: restartPolicyType is NEVER (a run must not loop)", repr(d.get("restartPolicyType")))
    draining = d.get("drainingSeconds")
    report(type_ok(draining, INT) and draining > 0, "railway.etl.json: drainingSeconds gives a run time to stop on SIGTERM", repr(draining))

if os.path.exists("Dockerfile"):
    with open("Dockerfile", encoding="utf-8") as f:
        dockerfile = f.read()
    report(BINARY in dockerfile, f"Dockerfile installs {BINARY}, which the start commands name")
else:
    print(f"skip\tDockerfile installs {BINARY}: there is no Dockerfile yet")
PY
  )
else
  fail "python3 is not installed: cannot check the JSON files"
fi

echo "== infrastructure as code: .railway/railway.ts"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  skip "typecheck and graph checks of .railway/: skipped: npm not installed"
else
  # npm ci wipes node_modules; reinstall only when the lock file changed since the last one.
  stamp=.railway/node_modules/.installed-lock.sha256
  want=$(sha256sum .railway/package-lock.json | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    ok "npm ci (.railway/): node_modules already matches package-lock.json"
  else
    # --ignore-scripts: nothing here needs an install script (esbuild's only checks its binary).
    log=$(mktemp)
    if (cd .railway && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
      echo "$want" >"$stamp"
      ok "npm ci (.railway/)"
    else
      cat "$log"
      fail "npm ci (.railway/)"
    fi
    rm -f "$log"
  fi

  if [ -x .railway/node_modules/.bin/tsc ]; then
    if out=$(cd .railway && node_modules/.bin/tsc --noEmit -p . 2>&1); then
      ok "tsc --noEmit -p .railway ($(cd .railway && node_modules/.bin/tsc --version))"
    else
      printf '%s\n' "$out"
      fail "tsc --noEmit -p .railway"
    fi
    # check.ts exits 3 when an assertion failed (already reported), anything else on a crash.
    tally < <(
      cd .railway && node_modules/.bin/tsx check.ts 2>&1
      status=$?
      if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
        printf 'FAIL\t.railway/check.ts crashed (exit %s)\n' "$status"
      fi
    )
  else
    fail "tsc and tsx are not installed in .railway/node_modules"
  fi
fi

echo
echo "railway: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
