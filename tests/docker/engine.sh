#!/usr/bin/env bash
# The Docker engine for the container tests (Debian's docker.io: dockerd 20.10).
#   engine.sh start   start dockerd unless one answers; then, before any container can run, a DOCKER-USER
#                     rule that drops new connections leaving through the default route's interface, so no
#                     build or container reaches beyond this machine
#   engine.sh stop    stop the dockerd that `start` started (none it found running)
set -euo pipefail
state=${SEEDCORE_CI_CACHE:-/var/cache/seedcore-boot-ci}/dockerd
mkdir -p "$state"

egress_rule() {
  local dev
  dev=$(ip route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}')
  if [[ -z $dev ]]; then
    return 0  # no default route: nothing to leave through
  fi
  local rule=(DOCKER-USER -o "$dev" -m conntrack --ctstate NEW -j DROP)
  iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}"
}

case ${1:-} in
  start)
    if ! docker info >/dev/null 2>&1; then
      dockerd >"$state/dockerd.log" 2>&1 &
      echo $! >"$state/pid"
      for _ in $(seq 1 100); do
        docker info >/dev/null 2>&1 && break
        sleep 0.2
      done
      docker info >/dev/null 2>&1 || { tail -20 "$state/dockerd.log" >&2; echo "dockerd did not start" >&2; exit 1; }
    fi
    egress_rule
    ;;
  stop)
    if [[ -f $state/pid ]]; then
      pid=$(cat "$state/pid")
      rm -f "$state/pid"
      if kill "$pid" 2>/dev/null; then
        for _ in $(seq 1 100); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.2
        done
      fi
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
