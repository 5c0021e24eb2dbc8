#!/usr/bin/env bash
# Installs what the packaging tests (test/packaging) need: Debian's lua5.1 (its compiler lists the
# globals the Argo CD health scripts read) and prometheus (for promtool), then builds helm and the
# argocd CLI from their pinned Go modules (test/packaging/helm, test/packaging/argocd) into the
# user's cache. Does nothing that is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
command -v lua5.1 >/dev/null || missing+=(lua5.1)
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-packaging: installing ${missing[*]} from Debian's packages" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # Only promtool is wanted: the package's postinst may start a Prometheus server; stop it.
  if [[ " ${missing[*]} " == *" prometheus "* ]]; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
      $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
    fi
    $SUDO service prometheus stop >/dev/null 2>&1 || true
  fi
fi

bash "$here/../test/packaging/helm/build.sh" >/dev/null
bash "$here/../test/packaging/argocd/build.sh" >/dev/null
