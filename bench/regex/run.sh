#!/bin/bash
# What regex rules cost per proxied request: portico with the prefix rule
# "/" alone, then with NREGEX rules `match: ^/svcN/item/([0-9]+)$` (distinct
# literal prefixes, so the pre-filter in route.c leaves them all untried)
# in front of it, and, for scale, a few rules with no literal prefix
# (`match: /svcN/item/...`, each tried on every request).  Requests end at
# "/", as bench_route --regex's do.
#
#   bench/regex/run.sh [PORTICO_BINARY]   (env: N=501 NREGEX=2000 NOPEN=20 KEEP=1)
#
# As bench/instructions/run.sh: the proxy runs under callgrind once for 1
# request and once for N keep-alive requests on one connection (curl URL
# globbing); (Ir(N) - Ir(1)) / (N - 1) is one more request's cost.  Counts
# are deterministic.  Use a Release build:
#   cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release -DPORTICO_TESTS=OFF
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
portico=${1:-$top/build-rel/portico}
n=${N:-501}
nregex=${NREGEX:-2000}
nopen=${NOPEN:-20}
"$top/scripts/deps.sh" "$here/packages.txt"

. "$here/../common.sh"
bench_work regex

up=18651 px=18652
mkdir -p "$work/www" "$work/up"
chmod 755 "$work" "$work/www"
head -c 1024 /dev/zero | tr '\0' x >"$work/www/small.txt"
sed -e "s|@WORK@|$work|g" -e "s|@UP@|$up|g" "$here/../proxy/upstream-nginx.conf" >"$work/up.conf"
nginx -p "$work/up" -c "$work/up.conf" -e "$work/up/error.log" &
pids="$pids $!"

config() { # name count anchor
	{
		printf 'listen:\n  - 127.0.0.1:%s\nworkers: 1\nlog:\n  access: off\n  level: warn\n' $px
		printf 'access:\n  - allow: 127.0.0.0/8\nroutes:\n'
		for ((i = 0; i < $2; i++)); do
			printf '  - match: %s/svc%d/item/([0-9]+)$\n    pass: http://127.0.0.1:%s/item/$1\n' \
				"$3" $i $up
		done
		printf '  - path: /\n    pass: http://127.0.0.1:%s/\n' $up
	} >"$work/$1.yaml"
	"$portico" -t -c "$work/$1.yaml" >/dev/null
}

ir() { # config requests -> Ir of the whole run
	local pid
	valgrind -q --tool=callgrind --callgrind-out-file="$work/cg" \
		"$portico" -c "$work/$1.yaml" 2>>"$work/proxy.err" &
	pid=$!
	pids="$pids $pid"
	bench_wait_tcp $px
	curl -sSf "http://127.0.0.1:$px/small.txt?[1-$2]" >/dev/null
	kill -TERM $pid
	wait $pid || true
	bench_wait_closed $px
	callgrind_ir "$work/cg"
}

per_request() { # config -> Ir per extra request
	local a b
	a=$(ir "$1" 1)
	b=$(ir "$1" "$n")
	echo $(((b - a) / (n - 1)))
}

bench_wait_tcp $up
config one 0 "^"
config prefixed "$nregex" "^"
config open "$nopen" ""
one=$(per_request one)
printf '%-46s %10s %8s\n' "routes (requests end at \"/\")" "Ir/request" ratio
printf '%-46s %10s %8s\n' 'path: / alone' "$one" 1.000
for c in prefixed open; do
	v=$(per_request $c)
	if [ $c = prefixed ]; then label="$nregex regexes with a literal prefix + /"; else
		label="$nopen regexes without a literal prefix + /"; fi
	printf '%-46s %10s %8s\n' "$label" "$v" "$(awk -v a="$v" -v b="$one" 'BEGIN {printf "%.3f", a / b}')"
done
