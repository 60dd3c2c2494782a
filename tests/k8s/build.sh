#!/usr/bin/env bash
# Builds the real KubeRay operator and a Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) from the Go module proxy at pinned versions, for the tests in
# tests/k8s and tests/e2e/kuberay_real/. Test tooling only: everything lands in a cache OUTSIDE the
# repo keyed by version, so a warm CI run finds the binaries and builds nothing; the repo holds no Go source,
# no binary and no CRD copy (the harness reads the CRDs from the module cache).
#
#   bash tests/k8s/build.sh          # build what is missing, print the bin directories
#   bash tests/k8s/build.sh --print  # only print them (exit 1 if something is missing)
set -euo pipefail

# Pinned versions. KubeRay: the newest ray-operator release the proxy serves whole (on 2026-12-06 the proxy
# knows v1.7.0 but answers 403 for its zip; v1.6.2's go.mod wants k8s.io/client-go v0.35.0).
# Kubernetes: a 1.35 release, the line of that client.
KUBERAY_VERSION=${KUBERAY_VERSION:-v1.6.2}
# And one older release the proxy serves: v1.1.1, the operator of Ray 2.20's time, which
# tests/kuberay/operator.py emulates (tests/e2e/kuberay_real/test_raycluster.py runs raycluster.yaml under both).
KUBERAY_OLD_VERSION=${KUBERAY_OLD_VERSION:-v1.1.1}
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.35.4}

cache=${SEEDCORE_CI_CACHE:-/var/cache/seedcore-boot-ci}/go
kuberay_dir=$cache/kuberay-$KUBERAY_VERSION
kuberay_old_dir=$cache/kuberay-$KUBERAY_OLD_VERSION
k8s_dir=$cache/kubernetes-$KUBERNETES_VERSION
k8s_bins=(etcd kube-apiserver kube-controller-manager kube-scheduler)

export GOMODCACHE=$cache/mod GOCACHE=$cache/build GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org}

complete() {
  local d b
  for d in "$kuberay_dir" "$kuberay_old_dir"; do [[ -x $d/bin/ray-operator ]] || return 1; done
  for b in "${k8s_bins[@]}"; do [[ -x $k8s_dir/bin/$b ]] || return 1; done
}

print_dirs() {
  echo "KUBERAY_BIN=$kuberay_dir/bin"
  echo "KUBERAY_OLD_BIN=$kuberay_old_dir/bin"
  echo "KUBERNETES_BIN=$k8s_dir/bin"
  echo "GOMODCACHE=$GOMODCACHE"
}

# shellcheck source=tests/k8s/gomodule.sh
. "$(dirname "$0")/gomodule.sh"
hold_lock "$cache"

if [[ ${1:-} == --print ]]; then
  complete || { echo "tests/k8s/build.sh: binaries missing under $cache; run bash tests/k8s/build.sh" \
                     "(scripts/test's log of its build: $cache/build.log)" >&2; exit 1; }
  print_dirs
  exit 0
fi

command -v go >/dev/null || { echo "tests/k8s/build.sh: no go on PATH; install Go 1.26" >&2; exit 1; }


work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# v1.6.2's go.mod has no replace directive, so go install at the tag builds it as released. v1.1.1's has one
# (go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp v0.35.1 => v0.44.0), which go install
# refuses for a module it does not build as the main module; so it is built as its own Dockerfile builds it:
# `go build` in the module's source (downloaded from the proxy, copied out of the read-only module cache),
# where that replace applies.
if [[ ! -x $kuberay_dir/bin/ray-operator ]]; then
  mkdir -p "$kuberay_dir/bin"
  timed "ray-operator $KUBERAY_VERSION" env GOBIN="$work/kuberay" \
    go install -trimpath -ldflags='-s -w' "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION"
  mv "$work/kuberay/ray-operator" "$kuberay_dir/bin/ray-operator"
fi
if [[ ! -x $kuberay_old_dir/bin/ray-operator ]]; then
  mkdir -p "$kuberay_old_dir/bin"
  src=$(go mod download -json "github.com/ray-project/kuberay/ray-operator@$KUBERAY_OLD_VERSION" |
        sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  cp -r "$src" "$work/kuberay-old" && chmod -R u+w "$work/kuberay-old"
  (cd "$work/kuberay-old" && timed "ray-operator $KUBERAY_OLD_VERSION" \
     go build -trimpath -ldflags='-s -w' -o "$work/bin/ray-operator-old" .)
  mv "$work/bin/ray-operator-old" "$kuberay_old_dir/bin/ray-operator"
fi

if ! complete; then
  mod=$work/k8s
  k8s_module "$mod" seedcore-boot-ci/k8s k8s.io/kubernetes/cmd/kube-apiserver/app \
    k8s.io/kubernetes/cmd/kube-controller-manager/app k8s.io/kubernetes/cmd/kube-scheduler/app
  # etcd: the etcdmain of the go.etcd.io/etcd/server/v3 that this Kubernetes release requires.
  mkdir -p "$mod/etcd" "$k8s_dir/bin"
  printf '%s\n' 'package main' 'import ("os"; "go.etcd.io/etcd/server/v3/etcdmain")' \
    'func main() { etcdmain.Main(os.Args) }' >"$mod/etcd/main.go"
  ldflags=$(k8s_ldflags)
  (
    cd "$mod"
    timed "module graph for kubernetes $KUBERNETES_VERSION" go mod tidy
    timed "etcd" go build -trimpath -ldflags='-s -w' -o "$work/bin/etcd" ./etcd
    for b in kube-apiserver kube-controller-manager kube-scheduler; do
      timed "$b $KUBERNETES_VERSION" go build -trimpath -ldflags="$ldflags" -o "$work/bin/$b" "k8s.io/kubernetes/cmd/$b"
    done
  )
  for b in "${k8s_bins[@]}"; do mv "$work/bin/$b" "$k8s_dir/bin/$b"; done
fi

# The real kubelet and its pause stand-in (tests/k8s/node.py), under the same lock (its paths to stderr,
# so that this script's output stays the four lines above).
bash "$(dirname "$0")/kubelet.sh" >&2

print_dirs
