# bench/common.sh: sourced by the benchmarks that start processes of their own.
#
# bench_work NAME   a work directory, /tmp/portico-NAME.XXXXXX, in $work; on
#                   exit every process listed in $pids is stopped and the
#                   directory removed (kept, and named, when KEEP is set).
# pin_proxy, pin_load
#                   the proxy under test on CPU 1, the load and the upstream
#                   on CPU 0, when the machine has two CPUs (else empty).
# bench_wait_tcp PORT
#                   until PORT accepts a TCP connection (no request is sent);
#                   exits after a minute.
# bench_wait_http PORT PATH [CURL-OPTION...]
#                   until a GET of PATH on PORT succeeds; exits after a minute.
# bench_wait_closed PORT
#                   until PORT no longer accepts (the next run may bind it).
# callgrind_ir FILE the instructions a callgrind output counts, every thread.

bench_cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

bench_work() {
	work=$(mktemp -d "/tmp/portico-$1.XXXXXX")
	pids=""
	trap bench_cleanup EXIT INT TERM
}

pin_proxy="" pin_load=""
if [ "$(nproc)" -ge 2 ]; then
	pin_proxy="taskset -c 1"
	pin_load="taskset -c 0"
fi

bench_wait_tcp() {
	for _ in $(seq 600); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 does not answer" >&2
	exit 1
}

bench_wait_http() {
	bench_url="http://127.0.0.1:$1$2" # no local variables in sh: a name of its own
	shift 2
	for _ in $(seq 600); do
		curl -fs "$@" -o /dev/null "$bench_url" && return 0
		sleep 0.1
	done
	echo "$bench_url does not answer" >&2
	exit 1
}

bench_wait_closed() {
	while (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do sleep 0.1; done
}

callgrind_ir() {
	awk '/^summary:/ {print $2; found = 1; exit} /^totals:/ {t = $2}
	     END {if (!found) print t}' "$1"
}
