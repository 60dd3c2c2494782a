#!/usr/bin/env bash
# Builds the real KubeRay operator and a Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler) from the Go module proxy at pinned versions, for the tests in
# tests/k8s and tests/e2e/test_kuberay_real.py. Test tooling only: everything lands in a cache OUTSIDE the
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
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.35.4}

cache=${SEEDCORE_CI_CACHE:-/var/cache/seedcore-boot-ci}/go
kuberay_dir=$cache/kuberay-$KUBERAY_VERSION
k8s_dir=$cache/kubernetes-$KUBERNETES_VERSION
k8s_bins=(etcd kube-apiserver kube-controller-manager kube-scheduler)

export GOMODCACHE=$cache/mod GOCACHE=$cache/build GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0
export GOPROXY=${GOPROXY:-https://proxy.golang.org}

complete() {
  [[ -x $kuberay_dir/bin/ray-operator ]] || return 1
  local b
  for b in "${k8s_bins[@]}"; do [[ -x $k8s_dir/bin/$b ]] || return 1; done
}

print_dirs() {
  echo "KUBERAY_BIN=$kuberay_dir/bin"
  echo "KUBERNETES_BIN=$k8s_dir/bin"
  echo "GOMODCACHE=$GOMODCACHE"
}

# One build at a time, and --print waits for a build under way: scripts/test runs this build in the
# background while the rest of the suite runs, and the tests that need the binaries ask --print last.
mkdir -p "$cache"
exec 9>>"$cache/.lock"

if [[ ${1:-} == --print ]]; then
  wait_s=${SEEDCORE_GO_BUILD_WAIT:-5400}
  flock -w "$wait_s" 9 || { echo "tests/k8s/build.sh: a build still holds $cache/.lock after $wait_s s" >&2; exit 1; }
  complete || { echo "tests/k8s/build.sh: binaries missing under $cache; run bash tests/k8s/build.sh" \
                     "(scripts/test's log of its build: $cache/build.log)" >&2; exit 1; }
  print_dirs
  exit 0
fi

command -v go >/dev/null || { echo "tests/k8s/build.sh: no go on PATH; install Go 1.26" >&2; exit 1; }
flock 9

# Two shared cores: every compile runs at the lowest priority; times go to stderr for the CI log.
timed() {
  local what=$1 start=$SECONDS
  shift
  nice -n 19 "$@"
  echo "tests/k8s/build.sh: $what built in $((SECONDS - start)) s" >&2
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ ! -x $kuberay_dir/bin/ray-operator ]]; then
  # ray-operator's go.mod has no replace directive, so go install at the tag builds it as released.
  mkdir -p "$kuberay_dir/bin"
  timed "ray-operator $KUBERAY_VERSION" env GOBIN="$work/kuberay" \
    go install -trimpath -ldflags='-s -w' "github.com/ray-project/kuberay/ray-operator@$KUBERAY_VERSION"
  mv "$work/kuberay/ray-operator" "$kuberay_dir/bin/ray-operator"
fi

if ! complete; then
  # k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with ./staging paths that a
  # dependent module cannot see: a throwaway module requires it and points every staging module at its
  # published v0.Y.Z instead, the same release line.
  mod=$work/k8s
  mkdir -p "$mod/etcd" "$k8s_dir/bin"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  staging_version=v0.${KUBERNETES_VERSION#v1.}
  {
    echo "module seedcore-boot-ci/k8s"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
  } >"$mod/go.mod"
  # etcd: the etcdmain of the go.etcd.io/etcd/server/v3 that this Kubernetes release requires.
  printf '%s\n' 'package main' 'import ("os"; "go.etcd.io/etcd/server/v3/etcdmain")' \
    'func main() { etcdmain.Main(os.Args) }' >"$mod/etcd/main.go"
  # The commands are main packages (not importable); their app packages keep go mod tidy from dropping
  # the requirement.
  printf '%s\n' '//go:build tools' 'package tools' 'import (' \
    '_ "k8s.io/kubernetes/cmd/kube-apiserver/app"' '_ "k8s.io/kubernetes/cmd/kube-controller-manager/app"' \
    '_ "k8s.io/kubernetes/cmd/kube-scheduler/app"' ')' >"$mod/tools.go"
  pkg=k8s.io/component-base/version
  ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1"
  ldflags+=" -X $pkg.gitMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION") -X $pkg.gitTreeState=clean"
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

print_dirs
