#!/bin/sh
# Source limits that keep the tree readable (STYLE.md), checked in CI as a
# ctest entry:
#   - no file under src/ or include/ over 1,500 lines;
#   - no function over 100 lines (from its opening "{" in column 0 to its
#     closing "}" in column 0, the tree's clang-format style);
#   - no <assert.h> or assert() in src/: PORTICO_ASSERT (util.h) stays
#     compiled in every build type.
# Prints every violation and exits 1 when there is one.
#
#   scripts/check-source.sh [SOURCE_DIR]
set -eu
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$top"
max_file=1500
max_func=100
status=0

files=$(find src include -name '*.[ch]' | sort)
for f in $files; do
	n=$(wc -l <"$f")
	if [ "$n" -gt "$max_file" ]; then
		echo "$f: $n lines (at most $max_file)"
		status=1
	fi
done

# A function's name is on the line before its "{" (or on the one before that
# when the parameters wrap); its body ends at the next "}" in column 0.
long=$(awk -v max="$max_func" '
	FNR == 1 { prev = ""; prev2 = "" }
	/^\{/ {
		start = FNR; name = prev
		if (name !~ /\(/) name = prev2
		sub(/\(.*/, "", name); sub(/.*[ *]/, "", name)
	}
	/^\}/ && start {
		len = FNR - start - 1
		if (len > max) printf "%s:%d: %s: %d lines (at most %d)\n", FILENAME, start, name, len, max
		start = 0
	}
	{ prev2 = prev; prev = $0 }
' $files)
if [ -n "$long" ]; then
	echo "$long"
	status=1
fi

asserts=$(grep -nE '#[[:space:]]*include[[:space:]]*<assert\.h>|(^|[^A-Za-z0-9_])assert[[:space:]]*\(' \
	$(find src -name '*.[ch]' | sort) || true)
if [ -n "$asserts" ]; then
	echo "$asserts" | sed 's/$/  (use PORTICO_ASSERT from util.h)/'
	status=1
fi

[ "$status" -eq 0 ] && echo "source limits: $(echo "$files" | wc -l) files, none over $max_file lines, no function over $max_func, no assert()"
exit "$status"
