#!/bin/bash
# Golden cases for `portico import`.
#
# Usage: tests/import/run.sh PATH/TO/portico
#
# Each directory here holding an apache2.conf is a case.  The binary runs
# from inside the case directory, with an empty environment but PATH (so
# that no ${VAR} of the caller's environment leaks in), as
#
#     portico import [ARGS] -o OUT apache2.conf
#
# where ARGS come from the case's `args` file.  Compared byte for byte:
# OUT with `expected.yaml` (absent for cases whose configuration cannot be
# read: then nothing may be written), standard error with `expected.stderr`,
# and the exit status with `status` (0 when there is none).  The case's
# absolute directory reads @CASE@ in both (certificate paths are absolute).
# Every YAML written must then pass `portico -t`.
#
# The cases whose result has `upstreams:` groups (SPEC section 12) are
# listed in UPSTREAM_CASES.  When the binary does not accept `upstreams:`
# yet (checked by running -t on a small file that has one), their -t check
# is skipped with a message, and so is the line of their import report that
# says the result does not pass -t (with the exit status it brings).
#
# One line per case, then "N passed, M failed"; the exit status is non-zero
# when any case failed.  PORTICO_REGENERATE=1 rewrites the expected files
# from the current output: review the diff before committing it.
set -u

UPSTREAM_CASES="08-balancer"

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/portico" >&2
	exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

cat >"$tmp/probe.yaml" <<'EOF'
listen: ["127.0.0.1:1"]
upstreams:
  probe:
    servers: ["127.0.0.1:1"]
routes:
  - path: /
    pass: http://probe/
EOF
upstreams=yes
"$bin" -t -c "$tmp/probe.yaml" >/dev/null 2>&1 || upstreams=no

is_upstream_case() {
	case " $UPSTREAM_CASES " in
	*" $1 "*) return 0 ;;
	esac
	return 1
}

# Reads stdin, writes it with the case directory and the output file named.
normalize() {
	sed -e "s|$1|@CASE@|g" -e "s|$tmp/out.yaml|@OUT@|g"
}

for dir in "$here"/*/; do
	dir=${dir%/}
	name=$(basename "$dir")
	[ -f "$dir/apache2.conf" ] || continue
	args=()
	if [ -f "$dir/args" ]; then
		read -r -a args <"$dir/args"
	fi
	rm -f "$tmp/out.yaml"
	(cd "$dir" && env -i PATH="$PATH" "$bin" import "${args[@]}" -o "$tmp/out.yaml" apache2.conf) \
		2>"$tmp/stderr.raw"
	status=$?
	want_status=$(cat "$dir/status" 2>/dev/null || echo 0)
	normalize "$dir" <"$tmp/stderr.raw" >"$tmp/stderr"
	skip_t=""
	if is_upstream_case "$name" && [ "$upstreams" = no ]; then
		skip_t="portico -t does not accept upstreams: yet (SPEC section 12)"
		grep -v '^portico import: the result does not pass portico -t: ' "$tmp/stderr" \
			>"$tmp/stderr.kept"
		mv "$tmp/stderr.kept" "$tmp/stderr"
		[ "$status" -eq 1 ] && status=$want_status
	fi
	if [ -f "$tmp/out.yaml" ]; then
		normalize "$dir" <"$tmp/out.yaml" >"$tmp/out.norm"
	fi
	if [ "${PORTICO_REGENERATE:-}" = 1 ]; then
		cp "$tmp/stderr" "$dir/expected.stderr"
		if [ -f "$tmp/out.yaml" ]; then
			cp "$tmp/out.norm" "$dir/expected.yaml"
		else
			rm -f "$dir/expected.yaml"
		fi
	fi
	problems=""
	if [ "$status" -ne "$want_status" ]; then
		problems="$problems exit status $status, expected $want_status;"
	fi
	if ! diff -u "$dir/expected.stderr" "$tmp/stderr" >"$tmp/diff"; then
		problems="$problems standard error differs;"
		sed 's/^/     /' "$tmp/diff" >"$tmp/report"
	else
		: >"$tmp/report"
	fi
	if [ -f "$dir/expected.yaml" ] && [ ! -f "$tmp/out.yaml" ]; then
		problems="$problems no YAML written;"
	elif [ ! -f "$dir/expected.yaml" ] && [ -f "$tmp/out.yaml" ]; then
		problems="$problems YAML written where none was expected;"
	elif [ -f "$tmp/out.yaml" ] && ! diff -u "$dir/expected.yaml" "$tmp/out.norm" >"$tmp/diff"; then
		problems="$problems YAML differs;"
		sed 's/^/     /' "$tmp/diff" >>"$tmp/report"
	fi
	if [ -f "$tmp/out.yaml" ] && [ -z "$skip_t" ] &&
		! "$bin" -t -c "$tmp/out.yaml" >"$tmp/t.out" 2>&1; then
		problems="$problems the YAML does not pass portico -t;"
		sed 's/^/     /' "$tmp/t.out" >>"$tmp/report"
	fi
	if [ -z "$problems" ]; then
		echo "ok   $name${skip_t:+ (skipped -t: $skip_t)}"
		passed=$((passed + 1))
	else
		echo "FAIL $name:$problems"
		cat "$tmp/report"
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
