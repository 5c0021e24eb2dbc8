#!/usr/bin/env bash
# Builds the helm CLI from the pinned helm.sh/helm/v3 module (go.mod beside this file) into the
# user's cache directory, keyed by version, and prints the binary's path. Rebuilds only when missing.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '/^require helm.sh\/helm\/v3 /{print $3}' "$here/go.mod")"
cache_root="${ROSTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/roster}"
out="$cache_root/helm-$version"
if [ -x "$out/helm" ]; then
  echo "helm: cached at $out/helm" >&2
  echo "$out/helm"
  exit 0
fi
command -v go >/dev/null || { echo "helm: Go is required to build helm" >&2; exit 1; }
mkdir -p "$out"
echo "helm: building helm $version (a cold build takes a few minutes)..." >&2
start=$SECONDS
# As helm's Makefile does: the default Kubernetes version (helm template, lint) is client-go's.
k8s_minor="$(awk '$1 == "k8s.io/client-go" {print $2}' "$here/go.mod" | cut -d. -f2)"
v="helm.sh/helm/v3/internal/version"
ldflags="-s -w -X $v.version=$version -X $v.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ldflags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
(cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" \
  -o "$out/helm.tmp" helm.sh/helm/v3/cmd/helm)
mv "$out/helm.tmp" "$out/helm"
echo "helm: built $out/helm in $((SECONDS - start))s" >&2
echo "$out/helm"
