#!/usr/bin/env bash
# Builds offline stand-ins for the upstream images docker/ uses (rayproject/ray, prom/prometheus, redis),
# tagged with the upstream names, so the compose files run unchanged on a machine that cannot pull.
#
# Everything that needs the network happens here, on the host, before any container exists: a Debian
# bookworm root filesystem from mmdebstrap (Debian's python3, prometheus, redis-server) and a wheelhouse
# that `pip download` fills with seedcore-boot's requirements. The image builds then copy from those and
# never reach the network (the DOCKER-USER rule from engine.sh drops their new connections anyway).
# Inputs are hashed; the rootfs, the wheelhouse and each image are rebuilt only when their inputs change.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$repo/tests/docker"
cache=${SEEDCORE_CI_CACHE:-/var/cache/seedcore-boot-ci}
mkdir -p "$cache"

# wget: KubeRay's default probes (`wget ... | grep success`, run by bash) need it, as the real Ray image has it.
packages="python3,python3-venv,prometheus,redis-server,procps,ca-certificates,wget"
rootfs_key=$(printf 'bookworm minbase %s\n' "$packages" | sha256sum | cut -c1-12)
wheels_key=$(cat "$repo/setup.cfg" "$repo/pyproject.toml" | sha256sum | cut -c1-12)

log() { printf 'standins: %s\n' "$*" >&2; }

has_image() {  # has_image NAME KEY: NAME exists and was built from inputs hashed to KEY
  [[ "$(docker image inspect "$1" --format '{{index .Config.Labels "seedcore.standin"}}' 2>/dev/null)" == "$2" ]]
}

rootfs="$cache/rootfs-$rootfs_key.tar"
if [[ ! -f "$rootfs" ]]; then
  log "mmdebstrap bookworm ($packages)"
  mmdebstrap --quiet --format=tar --variant=minbase --include="$packages" bookworm "$rootfs.part"
  mv "$rootfs.part" "$rootfs"
fi

base="seedcore-standin/base:$rootfs_key"
if ! docker image inspect "$base" >/dev/null 2>&1; then
  log "importing $base"
  docker import --change 'CMD ["/bin/bash"]' "$rootfs" "$base" >/dev/null
fi

wheels="$cache/wheelhouse-$wheels_key"
if [[ ! -d "$wheels" ]]; then
  log "filling the wheelhouse (seedcore-boot's requirements, Ray 2.20.0)"
  rm -rf "$wheels.part"
  python3 -m pip download --quiet --disable-pip-version-check -d "$wheels.part" setuptools wheel pip "$repo" \
    >"$cache/pip-download.log" 2>&1 || { cat "$cache/pip-download.log" >&2; exit 1; }
  rm -f "$wheels.part"/seedcore_boot-* "$wheels.part"/seedcore-boot-*  # the project itself comes from the build context
  mv "$wheels.part" "$wheels"
fi

build() {  # build TAG KEY DOCKERFILE CONTEXT
  if has_image "$1" "$2"; then
    log "$1 is current"
    return
  fi
  log "building $1"
  docker build --quiet --network none --label "seedcore.standin=$2" --build-arg "BASE=$base" \
    -t "$1" -f "$3" "$4" >/dev/null
}

ray_key=$(sha256sum < "$here/ray.Dockerfile" | cut -c1-6)-$rootfs_key-$wheels_key
build rayproject/ray:2.20.0-py310 "$ray_key" "$here/ray.Dockerfile" "$wheels"
prom_key=$(sha256sum < "$here/prometheus.Dockerfile" | cut -c1-6)-$rootfs_key
build prom/prometheus:v2.42.0 "$prom_key" "$here/prometheus.Dockerfile" "$here"
redis_key=$(sha256sum < "$here/redis.Dockerfile" | cut -c1-6)-$rootfs_key
build redis:7 "$redis_key" "$here/redis.Dockerfile" "$here"
