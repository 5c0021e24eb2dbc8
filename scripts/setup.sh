#!/usr/bin/env bash
# Installs what the tests and `roster dev` need and builds the control plane once:
# Debian's slapd and ldap-utils, Samba's AD DC (samba, samba-ad-dc, samba-ad-provision); for the
# packaging checks lua5.1, promtool, helm and argocd (built from their Go modules); then kube-apiserver, etcd
# and kubectl from their pinned Go modules. Binaries are cached under the user's cache directory,
# keyed by version.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
command -v slapd >/dev/null || [ -x /usr/sbin/slapd ] || missing+=(slapd)
command -v ldapsearch >/dev/null || missing+=(ldap-utils)
command -v openssl >/dev/null || missing+=(openssl)
# Samba's AD DC for the Active Directory tests (test/harness/samba.ts); winbind is its dependency.
samba_missing=()
[ -x /usr/sbin/samba ] || samba_missing+=(samba)
command -v samba-tool >/dev/null || samba_missing+=(samba-common-bin)
dpkg -s samba-ad-dc >/dev/null 2>&1 || samba_missing+=(samba-ad-dc)
[ -d /usr/share/samba/setup/ad-schema ] || samba_missing+=(samba-ad-provision)
missing+=("${samba_missing[@]}")
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
# Samba's postinst may start smbd, nmbd, winbind or samba-ad-dc; the tests run their own samba.
if [ ${#samba_missing[@]} -gt 0 ] && command -v systemctl >/dev/null; then
  systemctl disable --now smbd nmbd winbind samba-ad-dc >/dev/null 2>&1 || true
fi

bash "$here/setup-packaging.sh"
bash "$here/../test/controlplane/build.sh" >/dev/null
# The strict SCIM test server (test/harness/scim-strict, on the elimity-com/scim Go library).
bash "$here/../test/harness/scim-strict/build.sh" >/dev/null
