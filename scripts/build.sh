#!/bin/sh
# Configures and builds wsbeat into build/ (or $BUILD_DIR) with warnings as errors.
# Extra arguments go to cmake's configure step (e.g. -DWSBEAT_SANITIZE=ON).
set -eu
cd "$(dirname "$0")/.."
dir=${BUILD_DIR:-build}
cmake -S . -B "$dir" -DWSBEAT_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
