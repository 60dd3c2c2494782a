# shellcheck shell=bash
# Sourced by build.sh and kubelet.sh: how both build Kubernetes binaries from the Go module proxy.

# hold_lock CACHE: one build at a time on a cache, and a --print waits for a build under way (scripts/test
# runs build.sh in the background while the other tests run; the tests that need its binaries ask --print
# last). kubelet.sh, run by build.sh under the lock, inherits it.
hold_lock() {
  [[ -n ${SEEDCORE_GO_LOCKED:-} ]] && return 0
  mkdir -p "$1"
  exec 9>>"$1/.lock"
  local wait_s=${SEEDCORE_GO_BUILD_WAIT:-5400}
  flock -w "$wait_s" 9 || { echo "tests/k8s/$(basename "$0"): a build still holds $1/.lock after $wait_s s" >&2; exit 1; }
  export SEEDCORE_GO_LOCKED=1
}

# Two shared cores: every compile runs at the lowest priority; times go to stderr for the CI log.
timed() {
  local what=$1 start=$SECONDS
  shift
  nice -n 19 "$@"
  echo "tests/k8s/$(basename "$0"): $what built in $((SECONDS - start)) s" >&2
}

# k8s_module DIR NAME PACKAGE...: a throwaway module NAME in DIR that requires k8s.io/kubernetes
# $KUBERNETES_VERSION. k8s.io/kubernetes replaces its staging modules (k8s.io/api, ...) with ./staging paths
# that a dependent module cannot see: every staging module points at its published v0.Y.Z instead, the same
# release line. The commands are main packages (not importable); their app PACKAGEs, imported by a tools.go,
# keep go mod tidy from dropping the requirement.
k8s_module() {
  local mod=$1 name=$2 gomod staging_version
  shift 2
  mkdir -p "$mod"
  gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  staging_version=v0.${KUBERNETES_VERSION#v1.}
  {
    echo "module $name"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#replace \1 => \1 '"$staging_version"'#p' "$gomod"
  } >"$mod/go.mod"
  { printf '%s\n' '//go:build tools' 'package tools' 'import ('; printf '_ "%s"\n' "$@"; echo ')'; } >"$mod/tools.go"
}

# The -ldflags of a Kubernetes command: stripped, and the version `--version` and the API report.
k8s_ldflags() {
  local pkg=k8s.io/component-base/version
  echo "-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1" \
    "-X $pkg.gitMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION") -X $pkg.gitTreeState=clean"
}
