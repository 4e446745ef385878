#!/bin/bash
# Golden cases for `portico -t`.
#
# Usage: tests/conf/run.sh PATH/TO/portico
#
# Each directory here holding an `expected` file is a case.  The binary runs
# from inside the case directory as
#
#     portico -t -c portico.yaml
#
# (or with the arguments in the case's `args` file, when there is one), so
# file names in messages read "portico.yaml:LINE:COL: ...".  Standard output
# and standard error are merged (2>&1) and compared byte for byte with
# `expected`: for an invalid file that is the error line, for a valid one the
# warnings followed by "portico.yaml: configuration OK".  The exit status is
# checked too: 0 when `expected` ends with "configuration OK", else 1.
#
# One line per case, then "N passed, M failed"; the exit status is non-zero
# when any case failed.  To (re)write a case's `expected` after a deliberate
# change of wording, run the command above in its directory and review the
# diff before committing it.
set -u

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/portico" >&2
	exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
passed=0
failed=0

for dir in "$here"/*/; do
	dir=${dir%/}
	name=$(basename "$dir")
	[ -f "$dir/expected" ] || continue
	args=(-c portico.yaml)
	if [ -f "$dir/args" ]; then
		read -r -a args <"$dir/args"
	fi
	actual=$(cd "$dir" && "$bin" -t "${args[@]}" 2>&1)
	status=$?
	want=$(cat "$dir/expected")
	want_status=1
	case "$want" in
	*": configuration OK") want_status=0 ;;
	esac
	if [ "$actual" == "$want" ] && [ "$status" -eq "$want_status" ]; then
		echo "ok   $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name (exit status $status, expected $want_status)"
		diff -u <(printf '%s\n' "$want") <(printf '%s\n' "$actual") | sed 's/^/     /'
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
