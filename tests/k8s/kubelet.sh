#!/usr/bin/env bash
# Builds what tests/k8s/node.py needs to run pods with the real kubelet (containerd and the CNI plugins come
# from Debian: apt-get install containerd containernetworking-plugins):
# - kubelet from k8s.io/kubernetes at the control plane's release, by build.sh's recipe (a throwaway module
#   that replaces every staging module with its published v0.Y.Z), into the same version-keyed directory;
# - an offline stand-in binary (static, standard library only): `pause`, the pod sandbox image
#   (registry.k8s.io/pause cannot be pulled here). node.py wraps it into an OCI image and imports it into
#   containerd.
# build.sh runs it (scripts/test runs build.sh). Test tooling only, cached outside the repo, keyed by version (the
# kubelet) and by source (pause): with both present it builds nothing and needs no Go.
#
#   bash tests/k8s/kubelet.sh          # build what is missing, print the paths
#   bash tests/k8s/kubelet.sh --print  # only print them (exit 1 if something is missing)
set -euo pipefail

KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.35.4}

cache=${SEEDCORE_CI_CACHE:-/var/cache/seedcore-boot-ci}/go
k8s_dir=$cache/kubernetes-$KUBERNETES_VERSION
export GOMODCACHE=$cache/mod GOCACHE=$cache/build GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org}

# The stand-ins' source; its hash keys their cache directory.
read -r -d '' PAUSE_GO <<'EOF' || true
// The pod sandbox: holds the pod's namespaces, reaps orphans, exits 0 on SIGINT/SIGTERM.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			var ws syscall.WaitStatus
			if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
				break
			}
		}
	}
}
EOF
standins_dir=$cache/kubelet-standins-$(printf '%s\n' "$PAUSE_GO" | sha256sum | cut -c1-12)

complete() {
  [[ -x $k8s_dir/bin/kubelet && -x $standins_dir/pause ]]
}

print_paths() {
  echo "KUBELET=$k8s_dir/bin/kubelet"
  echo "STANDINS=$standins_dir"
}

# shellcheck source=tests/k8s/gomodule.sh
. "$(dirname "$0")/gomodule.sh"
hold_lock "$cache"

if [[ ${1:-} == --print ]]; then
  complete || { echo "tests/k8s/kubelet.sh: binaries missing under $cache; run bash tests/k8s/kubelet.sh" >&2; exit 1; }
fi
if complete; then
  print_paths
  exit 0
fi

command -v go >/dev/null || { echo "tests/k8s/kubelet.sh: no go on PATH; install Go 1.26" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ ! -x $k8s_dir/bin/kubelet ]]; then
  mod=$work/k8s
  mkdir -p "$k8s_dir/bin"
  k8s_module "$mod" seedcore-boot-ci/kubelet k8s.io/kubernetes/cmd/kubelet/app
  ldflags=$(k8s_ldflags)
  (
    cd "$mod"
    timed "module graph for kubelet $KUBERNETES_VERSION" go mod tidy
    timed "kubelet $KUBERNETES_VERSION" go build -trimpath -ldflags="$ldflags" -o "$work/kubelet" \
      k8s.io/kubernetes/cmd/kubelet
  )
  mv "$work/kubelet" "$k8s_dir/bin/kubelet"
fi

if ! complete; then
  mkdir -p "$work/pause" "$standins_dir"
  printf '%s\n' "$PAUSE_GO" >"$work/pause/main.go"
  printf 'module seedcore-boot-ci/standins\ngo 1.26\n' >"$work/go.mod"
  (
    cd "$work"
    timed pause go build -trimpath -ldflags='-s -w' -o "$work/bin/pause" ./pause
  )
  mv "$work/bin/pause" "$standins_dir/"
fi

print_paths
