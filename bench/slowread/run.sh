#!/bin/sh
# Slow readers and download throughput (limits.buffer).
#
#   bench/slowread/run.sh [PORTICO_BINARY [BEFORE_BINARY]]
#       env: CONNS=1000 ATTACK=40 ROUNDS=5 (BUFFER=96KiB sets limits.buffer of
#       PORTICO_BINARY; BEFORE_BINARY runs with its defaults)
#
# 1. Memory: slowhttptest -X opens CONNS connections that each ask for a
#    1 MiB file and read it slowly (32 bytes every 5 s, 512-1024 byte
#    windows).  Prints portico's resident memory (VmRSS) before, at its
#    peak during the attack, and 5 s after the attack ended, and the peak
#    growth divided by the client connections open at that moment
#    (portico_client_connections on /metrics).
# 2. Throughput: a 100 MiB download through portico with curl, ROUNDS runs,
#    interleaved with BEFORE_BINARY when given; prints the medians.
#
# Fixed ports 18621-18624: run under flock /tmp/portico-bench.lock.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
portico=${1:-$top/build/portico}
before=${2:-}
conns=${CONNS:-1000}
attack=${ATTACK:-40}
rounds=${ROUNDS:-5}
"$top/scripts/deps.sh" "$here/packages.txt"

. "$here/../common.sh"
bench_work slowread

up=18621 port=18622 admin=18623 port_before=18624 admin_before=18625
mkdir -p "$work/www" "$work/up"
chmod 755 "$work" "$work/www"
head -c 1048576 /dev/urandom >"$work/www/1m.bin"
head -c 104857600 /dev/urandom >"$work/www/100m.bin"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" "$here/upstream-nginx.conf" >"$work/up.conf"
$pin_load nginx -p "$work/up" -c "$work/up.conf" -e "$work/up/error.log" &
pids="$pids $!"

start_portico() { # binary port admin name
	sed -e "s|@UP@|$up|g" -e "s|@PORT@|$2|g" -e "s|@ADMIN@|$3|g" "$here/portico.yaml" >"$work/$4.yaml"
	if [ -n "${BUFFER:-}" ] && [ "$4" = new ]; then
		printf 'limits:\n  buffer: %s\n' "$BUFFER" >>"$work/$4.yaml"
	fi
	$pin_proxy "$1" -c "$work/$4.yaml" 2>"$work/$4.err" &
	pids="$pids $!"
	eval "pid_$4=$!"
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
clients() {
	curl -fsS "http://127.0.0.1:$1/metrics" | awk '$1 == "portico_client_connections" {print $2}'
}

start_portico "$portico" $port $admin new
bench_wait_http $up /1m.bin
bench_wait_http $port /1m.bin

# --- 1. slow readers -----------------------------------------------------------------
rss0=$(rss_kib "$pid_new")
$pin_load slowhttptest -X -c "$conns" -r "$conns" -w 512 -y 1024 -n 5 -z 32 -k 1 \
	-l "$attack" -u "http://127.0.0.1:$port/1m.bin" -p 10 >"$work/slowhttptest.out" 2>&1 &
slow=$!
peak=0 peak_clients=0
while kill -0 $slow 2>/dev/null; do
	r=$(rss_kib "$pid_new")
	n=$(clients $admin)
	[ "$r" -le "$peak" ] || peak=$r
	[ "$n" -le "$peak_clients" ] || peak_clients=$n
	sleep 0.5
done
wait $slow || true
sleep 5
rss_after=$(rss_kib "$pid_new")
echo "slow readers: $conns x 1 MiB, slowhttptest -X -c $conns -w 512 -y 1024 -n 5 -z 32 -k 1 -l $attack"
echo "  rss before:  $rss0 KiB"
echo "  rss peak:    $peak KiB; at most $peak_clients client connections open"
if [ "$peak_clients" -gt 0 ]; then
	echo "  per reader:  $(((peak - rss0) / peak_clients)) KiB"
fi
echo "  rss after:   $rss_after KiB (5 s after the attack)"

# --- 2. throughput -------------------------------------------------------------------
if [ -n "$before" ]; then
	start_portico "$before" $port_before $admin_before before
	bench_wait_http $port_before /1m.bin
fi
dl() { # port -> MiB/s
	$pin_load curl -fsS -o /dev/null -w '%{speed_download}\n' "http://127.0.0.1:$1/100m.bin" |
		awk '{printf "%.1f\n", $1 / 1048576}'
}
: >"$work/tp"
for r in $(seq 1 "$rounds"); do
	echo "new $(dl $port)" >>"$work/tp"
	[ -z "$before" ] || echo "before $(dl $port_before)" >>"$work/tp"
done
echo "100 MiB download (curl, $rounds interleaved runs), MiB/s:"
for name in new before; do
	grep -q "^$name " "$work/tp" || continue
	awk -v n="$name" '$1 == n {print $2}' "$work/tp" | sort -n | tr '\n' ' ' |
		awk -v n="$name" '{printf "  %-7s median %s  (runs: %s)\n", n, $(int((NF + 1) / 2)), $0}'
done
