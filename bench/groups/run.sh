#!/bin/bash
# What balancing costs per request: portico in front of one upstream, then
# in front of a group of three servers (the same nginx on three ports), for
# each balance method, under callgrind.
#
#   bench/groups/run.sh [PORTICO_BINARY]   (env: N=2001 KEEP=1 PORT_BASE=18290)
#
# As bench/instructions/run.sh: the proxy runs once for 1 request and once
# for N keep-alive requests on one connection (curl URL globbing);
# (Ir(N) - Ir(1)) / (N - 1) is what one more request costs, start-up and
# shutdown cancelled out.  Counts are deterministic (no lock needed).  Use a
# Release build:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DPORTICO_TESTS=OFF
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
bin=${1:-$top/build-rel/portico}
n=${N:-2001}
"$top/scripts/deps.sh" "$top/bench/instructions/packages.txt"
. "$here/../common.sh" # bench_wait_tcp, bench_wait_closed, callgrind_ir

work=$(mktemp -d /tmp/portico-groups.XXXXXX)
upstream_pid=""
cleanup() {
	[ -z "$upstream_pid" ] || kill "$upstream_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT INT TERM

base=${PORT_BASE:-18290}
up1=$base up2=$((base + 1)) up3=$((base + 2)) px=$((base + 3))
mkdir -p "$work/www" "$work/up"
chmod 755 "$work" "$work/www"
head -c 1024 /dev/zero | tr '\0' x >"$work/www/small.txt"
cat >"$work/up.conf" <<CONF
worker_processes 1;
daemon off;
pid $work/up/nginx.pid;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$up1 backlog=4096;
		listen 127.0.0.1:$up2 backlog=4096;
		listen 127.0.0.1:$up3 backlog=4096;
		root $work/www;
	}
}
CONF
nginx -p "$work/up" -c "$work/up.conf" -e "$work/up/error.log" &
upstream_pid=$!

bench_wait_tcp "$up1"

config() { # name -> the portico.yaml of that variant
	printf 'listen: ["127.0.0.1:%s"]\nworkers: 1\nlog: {access: off, level: warn}\n' "$px"
	case $1 in
	single)
		printf 'routes:\n  - path: /\n    pass: http://127.0.0.1:%s/\n' "$up1"
		return ;;
	round_robin) extra="" ;;
	least_conn) extra="    balance: least_conn" ;;
	hash) extra=$'    balance: hash\n    hash: header:X-User' ;;
	esac
	printf 'upstreams:\n  app:\n    servers: ["127.0.0.1:%s", "127.0.0.1:%s", "127.0.0.1:%s"]\n' \
		"$up1" "$up2" "$up3"
	[ -z "$extra" ] || printf '%s\n' "$extra"
	printf 'routes:\n  - path: /\n    pass: http://app/\n'
}

one_run() { # variant count
	config "$1" >"$work/portico.yaml"
	valgrind -q --tool=callgrind --callgrind-out-file="$work/cg.$2" \
		"$bin" -c "$work/portico.yaml" 2>>"$work/proxy.err" &
	local pid=$!
	bench_wait_tcp "$px"
	curl -sSf -H 'X-User: user-42' "http://127.0.0.1:$px/small.txt?[1-$2]" >/dev/null ||
		{ echo "curl through $1 failed" >&2; exit 1; }
	kill -TERM "$pid"
	wait "$pid" || true
	bench_wait_closed "$px"
}

printf '%-14s %11s %9s\n' upstream "Ir/request" "vs single"
single=""
for v in single round_robin least_conn hash; do
	one_run "$v" 1
	one_run "$v" "$n"
	ir=$(( ($(callgrind_ir "$work/cg.$n") - $(callgrind_ir "$work/cg.1")) / (n - 1) ))
	[ -n "$single" ] || single=$ir
	printf '%-14s %11s %+9d\n' "$v" "$ir" $((ir - single))
done
