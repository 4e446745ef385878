#!/bin/sh
# Builds the libFuzzer targets (clang, AddressSanitizer and
# UndefinedBehaviorSanitizer) in build-fuzz and runs every
# tests/fuzz/fuzz_*.c for a bounded time each.
#
# Usage: scripts/fuzz.sh [TARGET...]     (default: every tests/fuzz/fuzz_*.c)
# Environment: FUZZ_SECONDS  seconds per target (default 30)
#
# Each target starts from a copy of its seed corpus (tests/fuzz/corpus/NAME,
# for fuzz_NAME.c) in a temporary directory, so the committed corpus is never
# modified, and uses tests/fuzz/fuzz_NAME.dict (or NAME.dict) when there is
# one; the HTTP head and chunked targets use tests/fuzz/http.dict.  One
# line per target gives the executions; a crash, a sanitizer report, a leak
# or a timeout fails the script, and the input that caused it is kept in
# build-fuzz/crashes/fuzz_NAME/ (replay it with build-fuzz/fuzz_NAME FILE;
# add it to the corpus as a regression test).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build-fuzz
seconds=${FUZZ_SECONDS:-30}
jobs=$(nproc)

case $seconds in
'' | *[!0-9]*)
	echo "fuzz.sh: FUZZ_SECONDS must be a whole number of seconds, got \"$seconds\"" >&2
	exit 2
	;;
esac

targets=""
if [ $# -gt 0 ]; then
	targets=$*
else
	for src in "$top"/tests/fuzz/fuzz_*.c; do
		[ -e "$src" ] || continue
		targets="$targets $(basename "$src" .c)"
	done
fi
if [ -z "$targets" ]; then
	echo "fuzz.sh: no tests/fuzz/fuzz_*.c target" >&2
	exit 1
fi

CC=clang cmake -S "$top" -B "$build" -DPORTICO_FUZZ=ON -DPORTICO_TESTS=OFF \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086 # one word per target
cmake --build "$build" -j"$jobs" --target $targets

work=$(mktemp -d "${TMPDIR:-/tmp}/portico-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$build/logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
failed=""
total=0

for name in $targets; do
	short=${name#fuzz_}
	corpus=$work/$name
	crashes=$build/crashes/$name
	log=$build/logs/$name.log
	rm -rf "$crashes"
	mkdir -p "$corpus" "$crashes"
	if [ -d "$top/tests/fuzz/corpus/$short" ]; then
		cp -R "$top/tests/fuzz/corpus/$short/." "$corpus/"
	fi
	set -- -max_total_time="$seconds" -timeout=25 -print_final_stats=1 \
		-artifact_prefix="$crashes/"
	http_dict=
	case $short in # the targets that read HTTP heads and bodies share one
	request_head | response_head | head_scan | chunked) http_dict=$top/tests/fuzz/http.dict ;;
	esac
	for dict in "$top/tests/fuzz/$name.dict" "$top/tests/fuzz/$short.dict" $http_dict; do
		if [ -f "$dict" ]; then
			set -- "$@" -dict="$dict"
			break
		fi
	done
	if "$build/$name" "$@" "$corpus" >"$log" 2>&1; then
		status=ok
	else
		status=FAILED
		failed="$failed $name"
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	total=$((total + ${execs:-0}))
	printf '%-16s %12s executions in %ss  %s\n' "$name" "${execs:-?}" "$seconds" "$status"
	if [ "$status" = FAILED ]; then
		tail -n 60 "$log" >&2
		echo "$name: input kept in $crashes/:" >&2
		ls -l "$crashes" >&2
	fi
done

echo "fuzz: $total executions in total; logs in $build/logs"
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed" >&2
	exit 1
fi
