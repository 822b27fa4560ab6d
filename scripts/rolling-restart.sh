#!/usr/bin/env bash
# A rolling restart under load, through the load balancer of docker-compose.yml's `replicas`
# profile (three API replicas behind HAProxy, deploy/haproxy/haproxy.cfg): 0 failed requests.
#
#   1. Brings the profile up in a compose project of its own, with an image already built
#      (API_IMAGE:IMAGE_TAG, default sigmasight-backend:local; nothing is built here), seeds the
#      demo data and logs in as the demo user.
#   2. wrk drives CONNECTIONS (64) keep-alive connections at /api/v1/prices/AAPL through the
#      balancer for ROLL_WRK_SECONDS (90), while each replica in turn is recreated
#      (`up -d --force-recreate`, as a deploy of a new image does: SIGTERM, a new container);
#      the next one waits until the previous one is healthy and back in the balancer.
#   3. Prints the requests, the responses that were not 2xx and wrk's socket errors (connect,
#      read, write, timeout), and exits 1 unless every request succeeded and the whole roll
#      happened while wrk ran. The balancer retries only connections that could not be made, so
#      every request the replicas lost is counted.
#
#   scripts/rolling-restart.sh
#   BASE_IMAGES=local scripts/rolling-restart.sh   # postgres and haproxy stand-ins (scripts/base-images.sh)
#
# POSTGRES_IMAGE and HAPROXY_IMAGE choose the other images, as for docker-compose.yml. Needs wrk.
# Ends with "rolling-restart: N requests, N failed"; tears its compose project down.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh
# shellcheck source=scripts/lib/image-test.sh
source scripts/lib/image-test.sh

RUN_ID=${ROLL_PROJECT:-sigmasight-roll-$$}
CONNECTIONS=${CONNECTIONS:-64}
WRK_SECONDS=${ROLL_WRK_SECONDS:-90}
SYMBOL=AAPL
REPLICAS=(api-1 api-2 api-3)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/$RUN_ID.XXXXXX")
wrk_pid=""

project() { "${compose[@]}" -p "$RUN_ID" --profile replicas "$@"; }
cleanup() {
  [ -z "$wrk_pid" ] || kill "$wrk_pid" 2>/dev/null || true
  project down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "FAIL  wrk is missing (apt-get install wrk)"; exit 1; }
if [ "${BASE_IMAGES:-}" = local ]; then
  use_local_base_images >/dev/null
fi
export API_IMAGE=${API_IMAGE:-sigmasight-backend} IMAGE_TAG=${IMAGE_TAG:-local}
if ! docker image inspect "$API_IMAGE:$IMAGE_TAG" >/dev/null 2>&1; then
  echo "FAIL  no image $API_IMAGE:$IMAGE_TAG: build it first (docker compose build, or set API_IMAGE/IMAGE_TAG)"
  exit 1
fi
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
BALANCER_PORT=$(free_port)
BALANCER_STATS_PORT=$(free_port)
DEMO_PASSWORD=rolling-restart-demo-password
export BALANCER_PORT BALANCER_STATS_PORT DEMO_PASSWORD
unset API_BIND SHUTDOWN_DRAIN_SECONDS SHUTDOWN_GRACE_SECONDS HEADER_READ_TIMEOUT_SECONDS TRUSTED_PROXY_HOPS
balancer="http://127.0.0.1:$BALANCER_PORT"

# The balancer's view of a replica: UP, DOWN, MAINT ... (the stats page's CSV).
state_of() {
  curl -fsS "http://127.0.0.1:$BALANCER_STATS_PORT/stats;csv" 2>/dev/null |
    awk -F, -v server="$1" '$1 == "replicas" && $2 == server { print $18 }'
}
in_balancer() { [ "$(state_of "$1")" = UP ]; }
all_in_balancer() {
  local replica
  for replica in "${REPLICAS[@]}"; do in_balancer "$replica" || return 1; done
}
container_of() { project ps -q "$1"; }
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(container_of "$1")" 2>/dev/null)" = healthy ]; }

step "up: ${REPLICAS[*]} ($API_IMAGE:$IMAGE_TAG) behind ${HAPROXY_IMAGE:-haproxy:2.6}"
if ! project up -d --no-build balancer >"$WORK/up.log" 2>&1; then
  tail -n 30 "$WORK/up.log"
  echo "FAIL  the replicas profile did not come up"
  exit 1
fi
if ! within 60 all_in_balancer; then
  echo "FAIL  the three replicas are not all UP in the balancer within 60 s"
  exit 1
fi
echo "all three replicas UP in the balancer"
project run --rm --no-deps -T api-1 seed --demo >"$WORK/seed.log" 2>&1 || {
  cat "$WORK/seed.log"
  echo "FAIL  seed --demo"
  exit 1
}
token=$(curl -fsS -H 'Content-Type: application/json' \
  -d "{\"email\":\"demo@example.com\",\"password\":\"$DEMO_PASSWORD\"}" "$balancer/api/v1/auth/login" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
url="$balancer/api/v1/prices/$SYMBOL"
status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url")
[ "$status" = 200 ] || { echo "FAIL  GET /api/v1/prices/$SYMBOL answered $status"; exit 1; }

step "wrk: $CONNECTIONS connections at /api/v1/prices/$SYMBOL for $WRK_SECONDS s; a rolling restart meanwhile"
ROLL_TOKEN=$token wrk -t2 -c"$CONNECTIONS" -d"${WRK_SECONDS}s" --timeout 10s \
  -s scripts/rolling-restart.lua "$url" >"$WORK/wrk.out" 2>&1 &
wrk_pid=$!
sleep 3
roll_started=$(date +%s.%N)
for replica in "${REPLICAS[@]}"; do
  started=$(date +%s.%N)
  project up -d --no-build --no-deps --force-recreate "$replica" >>"$WORK/roll.log" 2>&1
  stopped=$(since "$started")
  if ! within 60 healthy "$replica" || ! within 30 in_balancer "$replica"; then
    echo "FAIL  $replica did not come back (healthy and UP in the balancer) within 90 s"
    exit 1
  fi
  echo "$replica: replaced in ${stopped} s, back in the balancer after $(since "$started") s"
done
roll_seconds=$(since "$roll_started")
wrk_running=true
kill -0 "$wrk_pid" 2>/dev/null || wrk_running=false
wait "$wrk_pid" || true
wrk_pid=""
echo "the roll took ${roll_seconds} s"
if ! result=$(grep '^{' "$WORK/wrk.out"); then
  cat "$WORK/wrk.out"
  echo "FAIL  wrk printed no result"
  exit 1
fi
read -r requests non_2xx connect read write timeout p99_us < <(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print(r["requests"], r["non_2xx"], r["connect"], r["read"], r["write"], r["timeout"], r["p99_us"])
' "$result")
failures=$((non_2xx + connect + read + write + timeout))
echo "requests: $requests; non-2xx: $non_2xx; socket errors: connect $connect, read $read, write $write, timeout $timeout; p99 $((p99_us / 1000)) ms"
echo "rolling-restart: $requests requests, $failures failed"
if ! $wrk_running; then
  echo "FAIL  wrk ended before the roll did: raise ROLL_WRK_SECONDS"
  exit 1
fi
[ "$requests" -gt 0 ] && [ "$failures" -eq 0 ]
