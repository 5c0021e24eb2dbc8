#!/usr/bin/env bash
# Installs what the packaging tests (test/packaging) need: Debian's lua5.1 (its compiler lists the
# globals the Argo CD health scripts read), prometheus (for promtool) and chromium (headless, for
# the HTML access review), then builds helm, the argocd CLI and the Grafana dashboard schema check
# from their pinned Go modules (test/packaging/helm, argocd, grafana) into the user's cache. Does
# nothing that is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
command -v lua5.1 >/dev/null || missing+=(lua5.1)
command -v promtool >/dev/null || missing+=(prometheus)
# Headless Chromium renders `roster report -o html` in test/packaging/report-html.test.ts.
command -v chromium >/dev/null || missing+=(chromium)
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
bash "$here/../test/packaging/grafana/build.sh" >/dev/null
