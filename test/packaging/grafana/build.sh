#!/usr/bin/env bash
# Builds dashboard-check (main.go beside this file: Grafana dashboards decoded strictly against
# Grafana's dashboard schema, from the pinned github.com/grafana/grafana-foundation-sdk module)
# into the user's cache directory, keyed by the SDK's version and main.go, and prints the binary's
# path. Rebuilds only when missing (a cold build takes about a minute).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '/^require github.com\/grafana\/grafana-foundation-sdk\/go /{print $3}' "$here/go.mod")"
source_hash="$(cat "$here/go.mod" "$here/main.go" | sha256sum | cut -c1-12)"
cache_root="${ROSTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/roster}"
out="$cache_root/grafana-dashboard-check-$version-$source_hash"
if [ -x "$out/dashboard-check" ]; then
  echo "grafana: dashboard-check cached at $out/dashboard-check" >&2
  echo "$out/dashboard-check"
  exit 0
fi
command -v go >/dev/null || { echo "grafana: Go is required to build dashboard-check" >&2; exit 1; }
mkdir -p "$out"
exec 9>"$out/.build.lock"
flock 9
if [ ! -x "$out/dashboard-check" ]; then
  echo "grafana: building dashboard-check on grafana-foundation-sdk $version..." >&2
  (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/dashboard-check.tmp" .)
  mv "$out/dashboard-check.tmp" "$out/dashboard-check"
fi
echo "$out/dashboard-check"
