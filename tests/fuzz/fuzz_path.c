/*
 * fuzz_path.c: path_normalize() on arbitrary bytes.  Invariants checked on
 * every accepted input: the output is never longer than the input, starts
 * with "/", holds no "." or ".." segment and no control byte or "#", keeps
 * only upper-case escapes of reserved bytes, and normalizing it again gives
 * the same bytes.  path_normalize_rule() accepts only what path_normalize()
 * accepts, its offset of an error lies inside the input, and a rule it
 * accepted is accepted again unchanged (a normalized rule matches itself).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/path.h"

static void
check_segments(const char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t end = i + 1;

		while (end < n && p[end] != '/')
			end++;
		if (end - i == 2 && p[i + 1] == '.')
			abort();
		if (end - i == 3 && p[i + 1] == '.' && p[i + 2] == '.')
			abort();
		i = end;
	}
}

static void
check_bytes(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c < 0x20 || c == 0x7f || c == '#')
			abort();
		if (c == '%') {
			if (i + 2 >= n || hex_value((unsigned char)p[i + 1]) < 0 ||
			    hex_value((unsigned char)p[i + 2]) < 0)
				abort();
			if ((p[i + 1] >= 'a' && p[i + 1] <= 'f') ||
			    (p[i + 2] >= 'a' && p[i + 2] <= 'f'))
				abort();
		}
	}
}

/* The rule form of the same input. */
static void
check_rule(const char *in, size_t size, const char *plain, size_t plain_len, bool plain_ok)
{
	char *out = malloc(size + 1), *again = malloc(size + 1);
	const char *err = NULL;
	size_t n = 0, m = 0, off = 0;

	if (out == NULL || again == NULL)
		abort();
	if (path_normalize_rule(in, size, out, &n, &off, &err) == 0) {
		if (!plain_ok || n != plain_len || memcmp(out, plain, n) != 0)
			abort();
		if (path_normalize_rule(out, n, again, &m, &off, &err) != 0 || m != n ||
		    memcmp(out, again, n) != 0)
			abort();
	} else if (err == NULL || (off >= size && size > 0)) {
		abort();
	}
	free(out);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *out = malloc(size + 1), *again = malloc(size + 1);
	const char *err = NULL;
	size_t n = 0, m = 0;
	bool ok;

	if (out == NULL || again == NULL)
		abort();
	ok = path_normalize((const char *)data, size, out, &n, &err) == 0;
	check_rule((const char *)data, size, out, n, ok);
	if (ok) {
		if (n > size || n == 0 || out[0] != '/' || out[n] != '\0')
			abort();
		check_segments(out, n);
		check_bytes(out, n);
		if (path_normalize(out, n, again, &m, &err) != 0)
			abort();
		if (m != n || memcmp(out, again, n) != 0)
			abort();
	} else if (err == NULL) {
		abort();
	}
	free(out);
	free(again);
	return 0;
}
