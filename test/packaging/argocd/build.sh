#!/usr/bin/env bash
# Builds the argocd CLI from the pinned github.com/argoproj/argo-cd/v3 module (go.mod beside this
# file) into the user's cache directory, keyed by version, and prints the binary's path; beside it
# install.yaml, Argo CD's own manifests of that version (the tests patch its stock argocd-cm).
# Rebuilds only when missing. The packaging tests run `argocd admin settings resource-overrides
# health` with it: the same Go code (gitops-engine's health check around Argo CD's Lua VM) that
# the application controller runs on every resource. A cold build takes about 15 CPU-minutes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '/^require github.com\/argoproj\/argo-cd\/v3 /{print $3}' "$here/go.mod")"
cache_root="${ROSTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/roster}"
out="$cache_root/argocd-$version"
if [ -x "$out/argocd" ] && [ -f "$out/install.yaml" ]; then
  echo "argocd: cached at $out/argocd" >&2
  echo "$out/argocd"
  exit 0
fi
command -v go >/dev/null || { echo "argocd: Go is required to build argocd" >&2; exit 1; }
mkdir -p "$out"
# One build at a time: concurrent test runs wait here instead of racing on the same files.
exec 9>"$out/.build.lock"
flock 9
if [ ! -x "$out/argocd" ]; then
  echo "argocd: building argocd $version (a cold build takes several minutes)..." >&2
  start=$SECONDS
  # As Argo CD's Makefile does (CGO off, its version variables), without the git metadata.
  p="github.com/argoproj/argo-cd/v3/common"
  ldflags="-s -w -X $p.version=${version#v} -X $p.buildDate=1970-01-01T00:00:00Z -X $p.gitTreeState=clean"
  (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod GODEBUG=tarinsecurepath=0,zipinsecurepath=0 \
    go build -trimpath -ldflags "$ldflags" -o "$out/argocd.tmp" github.com/argoproj/argo-cd/v3/cmd)
  mv "$out/argocd.tmp" "$out/argocd"
  echo "argocd: built $out/argocd in $((SECONDS - start))s" >&2
fi
if [ ! -f "$out/install.yaml" ]; then
  dir="$(cd "$here" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' github.com/argoproj/argo-cd/v3)"
  cp "$dir/manifests/install.yaml" "$out/install.yaml.tmp"
  chmod 644 "$out/install.yaml.tmp"
  mv "$out/install.yaml.tmp" "$out/install.yaml"
fi
echo "$out/argocd"
