#!/usr/bin/env bash
# Stops the seedcore stack: the workers first (so none is left waiting for a head that is gone), then the
# head and the core services, then any container still labelled with the project. Runs from any directory.
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
compose -f docker-compose.yml --profile core --profile ray down
mapfile -t left < <(docker ps -aq --filter "label=com.docker.compose.project=$project")
if ((${#left[@]})); then
  echo "removing ${#left[@]} leftover container(s) of project $project"
  docker rm -f "${left[@]}" >/dev/null
fi
echo "seedcore stack ($project) stopped"
