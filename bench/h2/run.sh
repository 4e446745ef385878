#!/bin/sh
# HTTP/2 benchmark: h2load against portico (h2c), nginx (http2, h2c) and
# portico over HTTP/1.1, one worker each, in front of the same upstream (an
# nginx serving a small file); runs are interleaved so drift of the machine
# hits each alike.  Then the resident memory per idle HTTP/2 (and HTTP/1.1)
# connection, and with CALLGRIND=1 portico's instructions per request.
#
#   bench/h2/run.sh [PORTICO_BINARY]
#       env: ROUNDS=3 DURATION=10 CONNS=50 STREAMS=10 IDLE=1000 CALLGRIND=0
#
# Wall-clock numbers: run it alone (flock /tmp/portico-bench.lock, taken here).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
portico=${1:-$top/build/portico}
rounds=${ROUNDS:-3}
duration=${DURATION:-10}
conns=${CONNS:-50}
streams=${STREAMS:-10}
idle=${IDLE:-1000}
body_size=${BODY_SIZE:-1024}
if [ -z "${PORTICO_BENCH_LOCKED:-}" ]; then
	export PORTICO_BENCH_LOCKED=1
	exec flock /tmp/portico-bench.lock "$0" "$@"
fi
"$top/scripts/deps.sh" "$here/packages.txt"

. "$here/../common.sh"
bench_work bench-h2

up=18700 p_portico=18701 p_nginx=18702
mkdir -p "$work/www" "$work/up" "$work/ng"
chmod 755 "$work" "$work/www" # nginx workers run as an unprivileged user
head -c "$body_size" /dev/zero | tr '\0' x >"$work/www/small.txt"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" "$here/upstream-nginx.conf" >"$work/up.conf"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" -e "s|@PORT@|$p_nginx|g" \
	"$here/proxy-nginx.conf" >"$work/ng.conf"
sed -e "s|@UP@|$up|g" -e "s|@PORT@|$p_portico|g" "$here/portico.yaml" >"$work/portico.yaml"

$pin_load nginx -p "$work/up" -c "$work/up.conf" -e "$work/up/error.log" &
pids="$pids $!"
$pin_proxy nginx -p "$work/ng" -c "$work/ng.conf" -e "$work/ng/error.log" &
pids="$pids $!"
$pin_proxy "$portico" -c "$work/portico.yaml" 2>"$work/portico.err" &
portico_pid=$!
pids="$pids $portico_pid"

bench_wait_http $up /small.txt
bench_wait_http $p_portico /small.txt --http2-prior-knowledge
bench_wait_http $p_nginx /small.txt --http2-prior-knowledge

# name port h2load-options
run_one() {
	out=$($pin_load h2load -D "$duration" -c "$conns" $3 "http://127.0.0.1:$2/small.txt" 2>&1)
	rps=$(echo "$out" | awk '/^finished in/ {print $4}')
	ok=$(echo "$out" | awk '/^requests:/ {print $8, "ok", $10, "failed"}')
	printf '%-14s %-6s %-12s %s\n' "$1" "$r" "$rps" "$ok"
	echo "$1 $rps" >>"$work/results"
}

echo "h2load -c $conns, $streams streams per connection (HTTP/1.1: 1), ${duration}s, ${body_size} B body"
echo "proxy          round  req/s        requests"
for r in $(seq 1 "$rounds"); do
	run_one portico-h2 $p_portico "-m $streams"
	run_one nginx-h2 $p_nginx "-m $streams"
	run_one portico-h1 $p_portico "--h1 -m 1"
done
echo "median req/s:"
for name in portico-h2 nginx-h2 portico-h1; do
	awk -v n="$name" '$1 == n {print $2}' "$work/results" | sort -n |
		awk -v n="$name" '{a[NR] = $1} END {printf "  %-14s %s\n", n, a[int((NR + 1) / 2)]}'
done

# A fresh portico for each kind, so that neither reuses what the other freed.
idle_portico() {
	sed -e "s|@UP@|$up|g" -e "s|@PORT@|$1|g" "$here/portico.yaml" >"$work/idle$1.yaml"
	$pin_proxy "$portico" -c "$work/idle$1.yaml" 2>>"$work/portico.err" &
	ip=$!
	pids="$pids $ip"
	bench_wait_http "$1" /small.txt --http2-prior-knowledge
	python3 "$here/idle.py" $ip "$1" "$idle" "$2"
	kill $ip
	wait $ip 2>/dev/null || true
}
echo "resident memory per idle connection:"
printf 'portico '; idle_portico 18707 h2
printf 'portico '; idle_portico 18708 h1
mkdir -p "$work/ng2"
sed -e "s|@WORK@/ng/|@WORK@/ng2/|" -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" -e "s|@PORT@|18709|g" \
	"$here/proxy-nginx.conf" >"$work/ng2.conf"
$pin_proxy nginx -p "$work/ng2" -c "$work/ng2.conf" -e "$work/ng2/error.log" &
pids="$pids $!"
bench_wait_http 18709 /small.txt --http2-prior-knowledge
ngw=$(pgrep -P "$(cat "$work/ng2/nginx.pid")" | head -1)
printf 'nginx   '; python3 "$here/idle.py" "$ngw" 18709 "$idle" h2

# Instructions per request under callgrind: h2load with n and then 2n
# requests; the difference over n leaves out start-up and shut-down.
cg_portico() { # run port
	sed -e "s|@UP@|$up|g" -e "s|@PORT@|$2|g" "$here/portico.yaml" >"$work/cg$1.yaml"
	valgrind --tool=callgrind --callgrind-out-file="$work/cg$1.out" \
		"$portico" -c "$work/cg$1.yaml" 2>/dev/null &
	cg=$!
	pids="$pids $cg"
}
cg_nginx() { # run port
	mkdir -p "$work/cgng$1"
	sed -e "s|@WORK@/ng/|@WORK@/cgng$1/|" -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" \
		-e "s|@PORT@|$2|g" "$here/proxy-nginx.conf" >"$work/cgng$1.conf"
	valgrind --tool=callgrind --callgrind-out-file="$work/cg$1.out" \
		nginx -p "$work/cgng$1" -c "$work/cgng$1.conf" -e "$work/cgng$1/error.log" \
		-g "master_process off;" 2>/dev/null &
	cg=$!
	pids="$pids $cg"
}
# label server(portico|nginx) h2load-options
callgrind_per_request() {
	n=20000
	for k in 1 2; do
		port=$((18703 + k))
		"cg_$2" "$k" "$port"
		bench_wait_http $port /small.txt --http2-prior-knowledge
		h2load -n $((n * k)) -c "$conns" $3 "http://127.0.0.1:$port/small.txt" >/dev/null 2>&1
		kill -TERM $cg
		wait $cg 2>/dev/null || true
		callgrind_ir "$work/cg$k.out" >"$work/ir$k"
	done
	echo "  $1: $((($(cat "$work/ir2") - $(cat "$work/ir1")) / n)) instructions per request"
}
if [ "${CALLGRIND:-0}" = 1 ] && command -v valgrind >/dev/null; then
	echo "under callgrind, h2load -c $conns:"
	callgrind_per_request "portico HTTP/2, -m $streams" portico "-m $streams"
	callgrind_per_request "nginx   HTTP/2, -m $streams" nginx "-m $streams"
	callgrind_per_request "portico HTTP/1.1" portico "--h1 -m 1"
fi
