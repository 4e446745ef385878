#!/bin/sh
# Installs what is missing, builds portico twice (plain, and with AddressSanitizer
# and UndefinedBehaviorSanitizer) and runs every test suite in both builds:
# cmocka unit tests, golden configuration cases, end-to-end tests.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/deps.sh"

werror=OFF
[ "${CI:-}" = true ] && werror=ON
jobs=$(nproc)

run() { # build-dir, extra cmake options...
	dir=$1
	shift
	cmake -S "$top" -B "$top/$dir" -DPORTICO_WERROR=$werror "$@" >/dev/null
	cmake --build "$top/$dir" -j"$jobs"
	(cd "$top/$dir" && ctest --output-on-failure -j"$jobs")
}

run build
run build-sanitize -DPORTICO_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
