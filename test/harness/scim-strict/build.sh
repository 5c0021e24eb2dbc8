#!/usr/bin/env bash
# Builds the strict SCIM test server (the Go module beside this file, on github.com/elimity-com/scim)
# into the user's cache directory, keyed by the library's version and a hash of this module's
# sources, and prints the binary's path. Rebuilds only when missing (a cold build takes seconds
# once the modules are downloaded).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1 == "github.com/elimity-com/scim" {print $2}' "$here/go.mod")"
sources="$(cd "$here" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)"
cache_root="${ROSTER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/roster}"
out="$cache_root/scim-strict/$version-$sources"
if [ -x "$out/scim-strict" ]; then
  echo "$out/scim-strict"
  exit 0
fi
command -v go >/dev/null || { echo "scim-strict: Go is required to build the strict SCIM test server" >&2; exit 1; }
mkdir -p "$out"
# One build at a time: concurrent test runs wait here instead of racing on the same files.
exec 9>"$out/.build.lock"
flock 9
if [ ! -x "$out/scim-strict" ]; then
  echo "scim-strict: building the strict SCIM test server (elimity-com/scim $version)..." >&2
  start=$SECONDS
  (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o "$out/scim-strict.tmp" .)
  mv "$out/scim-strict.tmp" "$out/scim-strict"
  echo "scim-strict: built in $((SECONDS - start))s" >&2
fi
echo "$out/scim-strict"
