#!/bin/sh
# Quick start: installs what is missing, builds, starts a local WebSocket server on
# 127.0.0.1:9001 and runs wsbeat on conf/demo.conf against it in the foreground: each feed's
# subscribe, every heartbeat answer (with its round trip) and every message show in the log.
# Stop with Ctrl-C (exit 0). DURATION=N stops it after N seconds.
set -eu
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh

# In a session of its own, so that Ctrl-C reaches wsbeat (which closes its feeds cleanly)
# and not the server under it; the trap stops the server at the end.
setsid ./build/tests/wsbeat-testsrv --listen 127.0.0.1:9001 --reply ping=pong --quiet-frames \
	--send-every 1000 '{"ticker":"demo","price":1}' --events /dev/null &
srv=$!
# Ctrl-C is for wsbeat: the shell only waits for it (a no-op trap keeps SIGINT's default for
# the children), then stops the server on the way out; wsbeat's own status is the script's.
trap ':' INT
trap 'exit 143' TERM HUP
trap 'kill "$srv" 2>/dev/null || :' EXIT

echo "wsbeat: running on conf/demo.conf against ws://127.0.0.1:9001 (Ctrl-C stops)" >&2
if [ -n "${DURATION:-}" ]; then
	timeout -s TERM "$DURATION" ./build/wsbeat -c conf/demo.conf || [ $? -eq 124 ]
else
	./build/wsbeat -c conf/demo.conf
fi
