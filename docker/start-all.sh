#!/usr/bin/env bash
# Starts the seedcore stack: Prometheus and the Ray head, waits until Docker reports the head healthy,
# then N workers (default 1). Runs from any directory.
#   ./start-all.sh           # head + 1 worker
#   ./start-all.sh 3         # head + 3 workers
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
project=${SEEDCORE_PROJECT:-seedcore}
workers=${1:-${SEEDCORE_WORKERS:-1}}
timeout=${SEEDCORE_START_TIMEOUT:-300}

compose() {
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$project" "$@"
  else
    docker-compose -p "$project" "$@"
  fi
}

compose -f docker-compose.yml --profile core --profile ray up -d --build
head=$(compose -f docker-compose.yml --profile ray ps -q ray-head)
echo "waiting up to ${timeout} s for the head to be healthy"
for ((i = 0; i < timeout; i++)); do
  health=$(docker inspect --format '{{.State.Health.Status}}' "$head")
  case $health in
    healthy) break ;;
    unhealthy) echo "the head is unhealthy: docker logs $head" >&2; exit 1 ;;
  esac
  sleep 1
done
if [[ $health != healthy ]]; then
  echo "the head is not healthy after ${timeout} s ($health): docker logs $head" >&2
  exit 1
fi
compose -f ray-workers.yml up -d --scale "ray-worker=$workers"
echo "seedcore stack ($project) up: head healthy, $workers worker(s) starting"
