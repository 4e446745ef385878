#!/bin/sh
# HTML rewriting benchmark: instructions per request (callgrind, whole
# request included: every user-space instruction the proxy process runs
# between the first and the last of REQUESTS keep-alive requests, divided by
# REQUESTS) for a 50 KiB page with 40 links (bench/html/page.py):
#
#   portico   rewriting, identity and gzip (upstream sends gzip, client accepts it)
#   portico   proxying the same page untouched
#   nginx     sub_filter (one process), identity and gzip (gzip on, level 1)
#   apache    mod_proxy_html, identity and INFLATE;proxy-html;DEFLATE
#
# For portico also the filter's own cost: callgrind's inclusive cost of the
# chain's entry points (bodyfilter_setup and the head filter's write, finish
# and free), and build/bench_html's: the filter alone on the page, and the
# four ways of passing its unchanged spans to an evbuffer.  Then memory per rewriting connection: resident memory growth of
# a native portico over CONNS connections held mid-body (stall.py).
#
#   bench/html/run.sh [PORTICO_BINARY]      (env: REQUESTS=20 CONNS=200 RUN_NGINX=1 RUN_APACHE=1 KEEP=1)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
portico=${1:-$top/build/portico}
requests=${REQUESTS:-20}
conns=${CONNS:-200}
apache=${RUN_APACHE:-1}
nginx=${RUN_NGINX:-1}
"$top/scripts/deps.sh" "$here/packages.txt"

. "$here/../common.sh"
bench_work html-bench

up=28390 p_portico=28391 p_nginx=28392 p_apache=28393 p_stall=28394 p_mem=28395
mkdir -p "$work/www/public" "$work/up" "$work/ng" "$work/ap"
chmod 755 "$work" "$work/www" "$work/www/public"
/usr/bin/python3 "$here/page.py" >"$work/www/public/page.html"
gzip -6 -n -k "$work/www/public/page.html"
chmod 644 "$work/www/public/"*
subst() {
	sed -e "s|@WORK@|$work|g" -e "s|@UP@|$1|g" -e "s|@PORT@|$2|g" "$3" >"$4"
}
subst $up 0 "$here/upstream-nginx.conf" "$work/up.conf"
subst $up $p_nginx "$here/nginx.conf" "$work/ng.conf"
subst $up $p_apache "$here/apache.conf" "$work/ap.conf"
subst $up $p_portico "$here/portico.yaml" "$work/portico.yaml"
subst $p_stall $p_mem "$here/portico.yaml" "$work/portico-mem.yaml"

nginx -p "$work/up" -c "$work/up.conf" -e "$work/up/error.log" &
pids="$pids $!"

# measure NAME PID URL [gzip]: one callgrind dump of REQUESTS requests.
measure() {
	ae=""
	[ "${4:-}" = gzip ] && ae="Accept-Encoding: gzip"
	urls=""
	for i in $(seq 1 "$requests"); do urls="$urls -o /dev/null $3"; done
	curl -fsS -H "$ae" -o /dev/null "$3" -o /dev/null "$3" -o /dev/null "$3"
	callgrind_control --zero "$2" >/dev/null 2>&1
	# shellcheck disable=SC2086
	curl -fsS -H "$ae" $urls
	callgrind_control --dump="$1" "$2" >/dev/null 2>&1
	f=$(ls -t "$work"/cg.* | head -1)
	ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f")
	echo "$1 $((ir / requests)) $f" >>"$work/results"
	printf '%-26s %10d Ir/request\n' "$1" $((ir / requests))
}

# The filter's own cost in a portico dump: inclusive Ir of the chain's entry points.
filter_cost() { # dump head-write head-finish head-free
	callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$1" 2>/dev/null |
		awk -v fns="bodyfilter_setup $2 $3 $4" -v n="$requests" '
		BEGIN { split(fns, want, " ") }
		$1 ~ /^[0-9,]+$/ {
			for (f = 2; f <= NF; f++) for (i in want) if ($f ~ (":" want[i] "$")) {
				v = $1; gsub(",", "", v); s += v; delete want[i]
			}
		}
		END { printf "%d", s / n }'
}

check_rewritten() { # url [gzip]
	if [ "${2:-}" = gzip ]; then
		curl -fsS -H "Accept-Encoding: gzip" "$1" | gunzip >"$work/check.html"
	else
		curl -fsS "$1" >"$work/check.html"
	fi
	n=$(grep -o 'href="/internal/docs' "$work/check.html" | wc -l)
	[ "$n" -eq 40 ] || { echo "$1: $n of 40 links rewritten" >&2; exit 1; }
}

cg="valgrind --tool=callgrind --dump-instr=no --callgrind-out-file=$work/cg.%p"
echo "== instructions per request ($requests keep-alive requests, $(wc -c <"$work/www/public/page.html") byte page)"
bench_wait_http $up /public/page.html

$cg "$portico" -c "$work/portico.yaml" 2>"$work/portico.err" &
pid=$!
pids="$pids $pid"
bench_wait_http $p_portico /plain/page.html
check_rewritten "http://127.0.0.1:$p_portico/internal/page.html"
check_rewritten "http://127.0.0.1:$p_portico/internal/page.html" gzip
measure portico-plain "$pid" "http://127.0.0.1:$p_portico/plain/page.html"
measure portico-rewrite "$pid" "http://127.0.0.1:$p_portico/internal/page.html"
f_id=$(filter_cost "$(awk '$1 == "portico-rewrite" {print $3}' "$work/results")" \
	html_write html_finish html_free)
measure portico-rewrite-gzip "$pid" "http://127.0.0.1:$p_portico/internal/page.html" gzip
f_gz=$(filter_cost "$(awk '$1 == "portico-rewrite-gzip" {print $3}' "$work/results")" \
	gunzip_write gunzip_finish gzip_free)
kill "$pid"
wait "$pid" 2>/dev/null || true

if [ "$nginx" = 1 ]; then
	$cg nginx -p "$work/ng" -c "$work/ng.conf" -e "$work/ng/error.log" 2>"$work/ng.err" &
	pid=$!
	pids="$pids $pid"
	bench_wait_http $p_nginx /plain/page.html
	check_rewritten "http://127.0.0.1:$p_nginx/internal/page.html"
	measure nginx-plain "$pid" "http://127.0.0.1:$p_nginx/plain/page.html"
	measure nginx-sub_filter "$pid" "http://127.0.0.1:$p_nginx/internal/page.html"
	measure nginx-sub_filter-gzip "$pid" "http://127.0.0.1:$p_nginx/internal/page.html" gzip
	kill "$pid"
	wait "$pid" 2>/dev/null || true
fi

if [ "$apache" = 1 ]; then
	$cg apache2 -X -d "$work/ap" -f "$work/ap.conf" 2>"$work/ap.err" &
	pid=$!
	pids="$pids $pid"
	bench_wait_http $p_apache /plain/page.html
	check_rewritten "http://127.0.0.1:$p_apache/internal/page.html"
	measure apache-proxy_html "$pid" "http://127.0.0.1:$p_apache/internal/page.html"
	measure apache-proxy_html-gzip "$pid" \
		"http://127.0.0.1:$p_apache/internal-gz/page.html" gzip
	kill "$pid"
	wait "$pid" 2>/dev/null || true
fi

ir() { awk -v n="$1" '$1 == n {print $2}' "$work/results"; }
echo "portico filter alone: identity $f_id Ir/request, gzip $f_gz Ir/request"
[ "$nginx" = 1 ] && awk -v r="$(ir portico-rewrite)" -v g="$(ir portico-rewrite-gzip)" \
	-v p="$(ir portico-plain)" -v s="$(ir nginx-sub_filter)" -v sg="$(ir nginx-sub_filter-gzip)" \
	'BEGIN { printf "ratios: rewrite/nginx sub_filter %.2fx (target <= 0.2x), " \
		 "rewrite/plain %.2fx (target <= 3x), gzip rewrite/nginx sub_filter+gzip %.2fx\n",
		 r / s, r / p, g / sg }'

bench_html=$(dirname "$portico")/bench_html
if [ -x "$bench_html" ]; then
	echo "== the filter alone and the ways to output its spans (bench_html, Ir per page)"
	valgrind --tool=callgrind --callgrind-out-file="$work/cg.bench_html" \
		"$bench_html" "$work/www/public/page.html" 10 >/dev/null 2>&1
	callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$work/cg.bench_html" 2>/dev/null |
		awk '$1 ~ /^[0-9,]+$/ { for (i = 2; i <= NF; i++) if ($i ~ /:(rewrite_page|spans_[a-z]+)$/) {
			v = $1; gsub(",", "", v); f = $i; sub(/.*:/, "", f)
			printf "%-26s %10d Ir/page\n", f, v / 10 } }'
fi

echo "== memory per rewriting connection ($conns connections held mid-body)"
for mode in identity gzip; do
	"$portico" -c "$work/portico-mem.yaml" 2>"$work/portico-mem.err" &
	mpid=$!
	i=0
	until [ -e /proc/$mpid ] && ss -ltn | grep -q ":$p_mem "; do
		i=$((i + 1)); [ $i -lt 100 ] || { echo "portico does not listen" >&2; exit 1; }
		sleep 0.1
	done
	arg=""
	[ $mode = gzip ] && arg=gzip
	kib=$(/usr/bin/python3 "$here/stall.py" "$work/www/public/page.html" "$mpid" \
		$p_mem $p_stall /internal/page.html "$conns" $arg)
	printf '%-26s %10s KiB/connection\n' "portico-rewrite-$mode" "$kib"
	kill $mpid
	wait $mpid 2>/dev/null || true
done
