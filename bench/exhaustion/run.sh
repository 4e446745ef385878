#!/bin/sh
# File-descriptor exhaustion: portico with an open-file limit of 256 receives
# 1,000 idle connections (more than fit) and holds them for 10 s.  Prints the
# CPU portico used over those 10 s (from /proc/PID/stat), the error-log lines
# written, and whether /healthz and a proxied request answer during and after.
#
#   bench/exhaustion/run.sh [PORTICO_BINARY]     (env: CONNS=1000 NOFILE=256 SECONDS=10 LOWER=start|running)
#
# LOWER=running lowers the limit only once portico runs, so accept(2) itself
# fails with EMFILE (at start-up portico would cap its clients to fit).
# Uses fixed ports 18611-18613: run under flock /tmp/portico-bench.lock.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
exec /usr/bin/python3 "$here/flood.py" "${1:-$top/build/portico}"
