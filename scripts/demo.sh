#!/bin/sh
# Installs what is missing, builds portico, starts the bundled demo upstream
# (conf/demo_upstream.py on 127.0.0.1:8081, the "internal" site) and runs
# portico in the foreground with conf/portico.yaml on 127.0.0.1:8080.
# Try, from another terminal:
#   curl -i localhost:8080/internal/
#   curl -i localhost:8080/internal/old        (Location rewritten to /internal/next)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"
cmake -S "$top" -B "$top/build" >/dev/null
cmake --build "$top/build" -j"$(nproc)" --target portico

"$top/build/portico" -t -c "$top/conf/portico.yaml"
"$top/build/portico" route -c "$top/conf/portico.yaml" /internal/logo.png

python3 "$top/conf/demo_upstream.py" --port 8081 &
upstream=$!
trap 'kill $upstream 2>/dev/null' EXIT INT TERM
echo "demo upstream on 127.0.0.1:8081; portico on http://127.0.0.1:8080/internal/" >&2
"$top/build/portico" -c "$top/conf/portico.yaml"
