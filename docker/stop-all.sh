#!/usr/bin/env bash
# Stops the seedcore stack on this machine's engine, and only there: the workers first (so none is left
# waiting for a head that is gone; each drains Serve off its node), then the head and the core services,
# then any container still labelled with the project. Both modes: one machine (docker-compose.yml,
# ray-workers.yml) and across machines (ray-head-host.yml, ray-workers-host.yml: run it on each machine).
# Runs from any directory.
#   ./stop-all.sh            # project seedcore
#   SEEDCORE_PROJECT=other ./stop-all.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
project=${SEEDCORE_PROJECT:-seedcore}

compose() {  # compose v2 when the docker CLI has it, else v1 (both read these files)
  if docker compose version >/dev/null 2>&1; then
    docker compose -p "$project" "$@"
  else
    docker-compose -p "$project" "$@"
  fi
}

compose -f ray-workers.yml down
# The head's address only fills in the file (a worker's machine may not have it set); down uses nothing of it.
SEEDCORE_HEAD_ADDRESS=${SEEDCORE_HEAD_ADDRESS:-unused:6379} compose -f ray-workers-host.yml down
compose -f docker-compose.yml --profile core --profile ray down
compose -f ray-head-host.yml down
mapfile -t left < <(docker ps -aq --filter "label=com.docker.compose.project=$project")
if ((${#left[@]})); then
  echo "removing ${#left[@]} leftover container(s) of project $project"
  docker rm -f "${left[@]}" >/dev/null
fi
echo "seedcore stack ($project) stopped"
