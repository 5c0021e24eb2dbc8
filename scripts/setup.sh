#!/usr/bin/env bash
# Installs what the tests and `roster dev` need and builds the control plane once:
# Debian's slapd and ldap-utils; for the packaging checks lua5.1, promtool and helm (built from
# its Go module); then kube-apiserver, etcd and kubectl from their pinned Go modules. Binaries
# are cached under the user's cache directory, keyed by version.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapsearch >/dev/null || missing+=(ldap-utils)
command -v openssl >/dev/null || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian's packages" >&2
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# Debian's postinst starts a system slapd on :389; the tests run their own on a free port.
if [ -n "${missing[*]}" ] && command -v systemctl >/dev/null; then systemctl stop slapd >/dev/null 2>&1 || true; fi
pkill -x slapd -u root -f '/usr/sbin/slapd -h ldap:/// ldapi:///' >/dev/null 2>&1 || true

bash "$here/setup-packaging.sh"
bash "$here/../test/controlplane/build.sh" >/dev/null
