#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl and etcd from the pinned upstream Go
# modules into the user's cache directory, keyed by version. Prints the directory holding the
# binaries. Rebuilds only when missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kube_version="$(awk '/^require k8s.io\/kubernetes /{print $3}' "$here/kube-apiserver/go.mod")"
etcd_version="$(awk '/^require go.etcd.io\/etcd\/server\/v3 /{print $3}' "$here/etcd/go.mod")"
cache_root="${ROSTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/roster}"
out="$cache_root/controlplane/kube-apiserver-$kube_version-etcd-$etcd_version"
mkdir -p "$out"
# One build at a time: concurrent test runs (or a run and `npm start`) wait here instead of
# racing on the same temporary files.
exec 9>"$out/.build.lock"
flock 9

build() { # name module-dir package ldflags
  local name="$1" dir="$2" pkg="$3" ldflags="$4"
  if [ -x "$out/$name" ]; then
    echo "controlplane: $name cached at $out/$name" >&2
    return
  fi
  echo "controlplane: building $name from $pkg (a cold build takes several minutes)..." >&2
  local start=$SECONDS
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  echo "controlplane: built $name in $((SECONDS - start))s" >&2
}

command -v go >/dev/null || { echo "controlplane: Go is required to build kube-apiserver and etcd" >&2; exit 1; }
kv="k8s.io/component-base/version"
build kube-apiserver "$here/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver \
  "-s -w -X $kv.gitVersion=$kube_version -X $kv.gitMajor=$(echo "${kube_version#v}" | cut -d. -f1) -X $kv.gitMinor=$(echo "$kube_version" | cut -d. -f2) -X $kv.gitTreeState=clean -X $kv.buildDate=1970-01-01T00:00:00Z"
build kubectl "$here/kube-apiserver" k8s.io/kubernetes/cmd/kubectl "-s -w -X $kv.gitVersion=$kube_version"
build kube-controller-manager "$here/kube-apiserver" k8s.io/kubernetes/cmd/kube-controller-manager \
  "-s -w -X $kv.gitVersion=$kube_version"
build etcd "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w"
echo "$out"
