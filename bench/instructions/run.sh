#!/bin/bash
# User-space instructions and system calls per proxied request: portico and
# nginx (proxy_pass, upstream keepalive, one worker) in front of the same
# upstream (an nginx outside the measurement), in the same run.
#
#   bench/instructions/run.sh [PORTICO_BINARY...]   (env: N=2001 N_BIG=501 KEEP=1)
#
# For each proxy and body size (1 KiB and 100 KiB) the proxy runs under
# callgrind twice: once for 1 request and once for N keep-alive requests on
# one connection (curl URL globbing); (Ir(N) - Ir(1)) / (N - 1) is what one
# more request costs, start-up and shutdown cancelled out.  Counts are
# deterministic (no lock needed).  System calls come the same way from
# `strace -f -c` (every thread), without callgrind: one client on one
# connection, so nothing is batched.
#
# Several portico binaries may be given (before and after a change): each is
# measured in the same run.  KEEP=1 keeps the work directory (callgrind and
# strace outputs) for a closer look.  Use Release builds:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DPORTICO_TESTS=OFF
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
[ $# -gt 0 ] || set -- "$top/build-rel/portico"
n_small=${N:-2001}
n_big=${N_BIG:-501}
"$top/scripts/deps.sh" "$here/packages.txt"
. "$here/../common.sh" # bench_wait_tcp, bench_wait_closed, callgrind_ir

work=$(mktemp -d /tmp/portico-instr.XXXXXX)
upstream_pid=""
cleanup() {
	[ -z "$upstream_pid" ] || kill "$upstream_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Ports of our own, away from bench/proxy's.
up=${PORT_BASE:-18190}
px=$((up + 1))
mkdir -p "$work/www" "$work/up" "$work/ng"
chmod 755 "$work" "$work/www" # nginx workers run as an unprivileged user
head -c 1024 /dev/zero | tr '\0' x >"$work/www/small.txt"
head -c 102400 /dev/zero | tr '\0' x >"$work/www/big.txt"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" "$here/../proxy/upstream-nginx.conf" >"$work/up.conf"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" -e "s|@PORT@|$px|g" \
	"$here/proxy-nginx.conf" >"$work/ng.conf"
sed -e "s|@UP@|$up|g" -e "s|@PORT@|$px|g" "$here/../proxy/portico.yaml" >"$work/portico.yaml"

nginx -p "$work/up" -c "$work/up.conf" -e "$work/up/error.log" &
upstream_pid=$!

bench_wait_tcp "$up"

proxy_cmd() { # name binary
	case $1 in
	nginx) echo "nginx -p $work/ng -c $work/ng.conf -e $work/ng/error.log" ;;
	*) echo "$2 -c $work/portico.yaml" ;;
	esac
}

# `count` requests for `file` on one connection through the proxy started
# under the wrapper; then a graceful stop (SIGTERM; nginx: SIGQUIT).
one_run() { # wrapper... -- name binary file count
	local wrap=() name bin file count pid sig=TERM
	while [ "$1" != "--" ]; do wrap+=("$1"); shift; done
	shift
	name=$1 bin=$2 file=$3 count=$4
	# shellcheck disable=SC2046
	"${wrap[@]}" $(proxy_cmd "$name" "$bin") 2>>"$work/proxy.err" &
	pid=$!
	bench_wait_tcp "$px"
	curl -sSf "http://127.0.0.1:$px/$file?[1-$count]" >/dev/null ||
		{ echo "curl through $name failed" >&2; exit 1; }
	[ "$name" = nginx ] && sig=QUIT
	# strace runs the proxy as its child; valgrind runs it in its own process.
	target=$pid
	[ "${wrap[0]}" = strace ] && target=$(pgrep -P "$pid")
	kill -s "$sig" "$target"
	wait "$pid" || true
	# The port must be free before the next run binds it.
	bench_wait_closed "$px"
}

measure_ir() { # name binary file n -> instructions per extra request
	local a b
	rm -f "$work"/cg.*
	one_run valgrind -q --tool=callgrind --callgrind-out-file="$work/cg.1" -- "$1" "$2" "$3" 1
	one_run valgrind -q --tool=callgrind --callgrind-out-file="$work/cg.n" -- "$@"
	a=$(callgrind_ir "$work/cg.1")
	b=$(callgrind_ir "$work/cg.n")
	echo $(((b - a) / ($4 - 1)))
}

measure_sys() { # name binary file n -> system calls per extra request (and by call)
	local total='$NF == "total" {print $4}'
	one_run strace -f -c -o "$work/st.1" -- "$1" "$2" "$3" 1
	one_run strace -f -c -o "$work/st.n" -- "$@"
	awk -v n="$4" -v a="$(awk "$total" "$work/st.1")" -v b="$(awk "$total" "$work/st.n")" \
		'BEGIN {printf "%.2f (", (b - a) / (n - 1)}'
	awk -v n="$4" 'NR > 2 && $1 !~ /^-/ && $NF != "total" && $4 > n / 4 {
		printf "%s%s %.2f", sep, $NF, $4 / n; sep = ", " } END {print ")"}' "$work/st.n"
}

label_of() { # the last three parts of a path
	echo "$1" | awk -F/ '{print (NF >= 3 ? $(NF-2) "/" : "") $(NF-1) "/" $NF}'
}

printf '%-32s %-6s %11s %9s   %s\n' proxy body "Ir/request" "vs nginx" "syscalls/request"
for size in 1KiB 100KiB; do
	if [ $size = 1KiB ]; then file=small.txt n=$n_small; else file=big.txt n=$n_big; fi
	ng=$(measure_ir nginx - "$file" "$n")
	printf '%-32s %-6s %11s %9s   %s\n' nginx "$size" "$ng" "1.00x" \
		"$(measure_sys nginx - "$file" "$n")"
	for bin in "$@"; do
		pi=$(measure_ir portico "$bin" "$file" "$n")
		printf '%-32s %-6s %11s %9s   %s\n' "$(label_of "$bin")" "$size" "$pi" \
			"$(awk -v a="$pi" -v b="$ng" 'BEGIN {printf "%.2fx", a / b}')" \
			"$(measure_sys portico "$bin" "$file" "$n")"
	done
done
