#!/bin/sh
# Side-by-side proxy benchmark: portico, nginx and HAProxy, each with one
# worker, in front of the same upstream (an nginx serving a small file), driven
# by wrk with keep-alive.  Runs are interleaved (portico, nginx, haproxy,
# portico, ...) so drift of the machine hits every proxy alike.
#
#   bench/proxy/run.sh [PORTICO_BINARY]        (env: ROUNDS=3 DURATION=10 CONNS=50)
#
# Prints one line per run and a summary of the medians.  Proxies run on CPU 1,
# wrk and the upstream on CPU 0, when the machine has two CPUs.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
portico=${1:-$top/build/portico}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
conns=${CONNS:-50}
body_size=${BODY_SIZE:-1024}
"$top/scripts/deps.sh" "$here/packages.txt"

. "$here/../common.sh"
bench_work bench

up=18090 p_portico=18091 p_nginx=18092 p_haproxy=18093
mkdir -p "$work/www" "$work/up" "$work/ng"
chmod 755 "$work" "$work/www" # nginx workers run as an unprivileged user
head -c "$body_size" /dev/zero | tr '\0' x >"$work/www/small.txt"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" "$here/upstream-nginx.conf" >"$work/up.conf"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" -e "s|@PORT@|$p_nginx|g" \
	"$here/proxy-nginx.conf" >"$work/ng.conf"
sed -e "s|@UP@|$up|g" -e "s|@PORT@|$p_haproxy|g" "$here/haproxy.cfg" >"$work/haproxy.cfg"
sed -e "s|@UP@|$up|g" -e "s|@PORT@|$p_portico|g" "$here/portico.yaml" >"$work/portico.yaml"

$pin_load nginx -p "$work/up" -c "$work/up.conf" -e "$work/up/error.log" &
pids="$pids $!"
$pin_proxy nginx -p "$work/ng" -c "$work/ng.conf" -e "$work/ng/error.log" &
pids="$pids $!"
$pin_proxy haproxy -f "$work/haproxy.cfg" -q &
pids="$pids $!"
$pin_proxy "$portico" -c "$work/portico.yaml" 2>"$work/portico.err" &
pids="$pids $!"

for p in $up $p_portico $p_nginx $p_haproxy; do bench_wait_http $p /small.txt; done

echo "proxy    round  req/s      p50        p99"
for r in $(seq 1 "$rounds"); do
	for name in portico nginx haproxy; do
		eval port=\$p_$name
		out=$($pin_load wrk -t1 -c"$conns" -d"${duration}s" --latency \
			"http://127.0.0.1:$port/small.txt")
		rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
		p50=$(echo "$out" | awk '$1 == "50%" {print $2}')
		p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
		errs=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
		printf '%-8s %-6s %-10s %-10s %-10s %s\n' "$name" "$r" "$rps" "$p50" "$p99" "$errs"
		echo "$name $rps" >>"$work/results"
	done
done
echo "median req/s:"
for name in portico nginx haproxy; do
	awk -v n="$name" '$1 == n {print $2}' "$work/results" | sort -n |
		awk -v n="$name" '{a[NR] = $1} END {printf "  %-8s %s\n", n, a[int((NR + 1) / 2)]}'
done
