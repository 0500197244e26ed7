#!/bin/sh
# Builds the Debian package with exactly the commands of the README's "Install" section, into
# DIR (default build-deb): CTest's package.deb, the fixture of integration.test_deb and
# systemd.deb, which take DIR/wsbeat_*.deb from it.
#
#   tests/systemd/package.sh [DIR]
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${1:-$SRC/build-deb}
rm -rf "$DIR"
cmake -S "$SRC" -B "$DIR" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF
cmake --build "$DIR" -j2
cd "$DIR"
cpack -G DEB
ls "$DIR"/wsbeat_*.deb
