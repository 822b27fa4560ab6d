#!/usr/bin/env bash
# The benchmark: image size, start-up, memory, HTTP throughput against ceilings measured in the
# same run (a bare axum server, pgbench), response compression (bytes on the wire, throughput),
# the ETL's load rate, and the Docker rebuild. Prints the
# figures and the targets they meet, and writes target/bench/report.md and results.json
# (docs/benchmarks.md explains each figure).
#
#   scripts/bench.sh                  # the full run (about 30 minutes on 2 cores, most of it builds)
#   scripts/bench.sh --docker skip    # without the image: a release build of the binary instead
#   scripts/bench.sh --quick          # a smoke run of every step (scripts/test.sh runs it)
#   scripts/bench.sh --help           # every option
#
# Needs wrk and pgbench (Debian: apt-get install wrk postgresql); Docker for the image figures.
# With DATABASE_URL set, that server is used; otherwise a throwaway PostgreSQL is started here.
# BASE_IMAGES=local builds the image from the stand-ins of scripts/base-images.sh (offline);
# RUST_IMAGE and RUNTIME_IMAGE, when set, name the Dockerfile's base images.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/postgres.sh
source scripts/lib/postgres.sh
# shellcheck source=scripts/lib/docker.sh
source scripts/lib/docker.sh

case " $* " in
  *" -h "* | *" --help "*) exec python3 scripts/bench/bench.py --help ;;
esac
if [ "${BASE_IMAGES:-}" = local ] && [[ " $* " != *" --docker skip "* ]] && docker info >/dev/null 2>&1; then
  use_local_base_images
fi
if [ -z "${DATABASE_URL:-}" ]; then
  # Durable, as a production server is: the loads' figures are what a user's database gets.
  postgres_start_durable_throwaway
fi
python3 scripts/bench/bench.py "$@"
