#!/bin/sh
# Installs what wsbeat needs to build and test, from Debian 12's own packages only.
# Idempotent: does nothing when every package is already installed.
set -eu

PKGS="build-essential cmake pkg-config git
libwebsockets-dev libwebsockets-evlib-ev libwebsockets-test-server
libconfig-dev libc-ares-dev libssl-dev libsystemd-dev libcmocka-dev
python3 python3-websockets python3-pytest python3-prometheus-client openssl procps
clang libclang-rt-14-dev
systemd-container debootstrap dpkg-dev"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing; run as root to install them" >&2
	exit 1
fi
echo "deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
