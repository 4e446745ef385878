/*
 * test_path.c: path normalization (SPEC section 3) and percent-encoding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "portico/path.h"

/* Normalizes `in` (of length len) and checks the result against `want`. */
static void
check_len(const char *in, size_t len, const char *want)
{
	char *out = malloc(len + 1);
	const char *err = NULL;
	size_t n = 12345;
	int rc;

	assert_non_null(out);
	rc = path_normalize(in, len, out, &n, &err);
	if (want == NULL) {
		if (rc != -1)
			fail_msg("\"%s\": expected an error, got \"%s\"", in, out);
		assert_non_null(err);
	} else {
		if (rc != 0)
			fail_msg("\"%s\": unexpected error: %s", in, err);
		assert_string_equal(out, want);
		assert_int_equal(n, strlen(want));
		assert_true(n <= len);
	}
	free(out);
}

static void
check(const char *in, const char *want)
{
	check_len(in, strlen(in), want);
}

static void
test_plain_paths_unchanged(void **state)
{
	(void)state;
	check("/", "/");
	check("/a", "/a");
	check("/a/b/c.html", "/a/b/c.html");
	check("/a/", "/a/");
	check("/a;b=c/d:e@f!$&'()*+,=", "/a;b=c/d:e@f!$&'()*+,=");
	check("/..a/b../...", "/..a/b../...");
	check("/.a/a./.../.b.", "/.a/a./.../.b.");
}

static void
test_unreserved_escapes_decoded(void **state)
{
	(void)state;
	check("/%41%42%7a", "/ABz");
	check("/%2D%2e%5F%7E", "/-._~");
	check("/%30%39", "/09");
	check("/a%2Db", "/a-b");
}

static void
test_other_escapes_upper_cased(void **state)
{
	(void)state;
	check("/%3f", "/%3F");
	check("/%3a%40", "/%3A%40");
	check("/%c3%a9t%C3%A9", "/%C3%A9t%C3%A9");
	check("/a%20b", "/a%20b");
	check("/%25", "/%25");
	check("/%2541", "/%2541"); /* no double decoding */
	check("/%0a%0D", "/%0A%0D");
	check("/%23", "/%23");
	check("/%3F%2b", "/%3F%2B");
}

static void
test_dot_segments_rfc3986(void **state)
{
	(void)state;
	check("/a/b/c/./../../g", "/a/g");
	check("/mid/content=5/../6", "/mid/6");
	check("/a/./b", "/a/b");
	check("/./a", "/a");
	check("/a/.", "/a/");
	check("/a/b/..", "/a/");
	check("/a/b/../", "/a/");
	check("/a/b/../c", "/a/c");
	check("/.", "/");
	check("/./", "/");
	check("/a/..", "/");
	check("/a/../", "/");
	check("/a/b/../../c/./d/..", "/c/");
	check("/a/./././b", "/a/b");
}

static void
test_encoded_dots_count(void **state)
{
	(void)state;
	check("/%2e", "/");
	check("/a/%2E%2e/b", "/b");
	check("/a/.%2E/b", "/b");
	check("/a/%2e/b", "/a/b");
	check("/a/b/%2e%2e", "/a/");
	check("/%2e%2e", NULL);
	check("/a/%2E%2E/%2E%2E/x", NULL);
	check("/%2e%2e%2e", "/...");
}

static void
test_slash_runs_kept(void **state)
{
	(void)state;
	check("//", "//");
	check("//a///b", "//a///b");
	check("/a//", "/a//");
	check("/a//./b", "/a//b");
	check("/a//../b", "/a/b"); /* ".." removes the empty segment */
	check("/a/b//..", "/a/b/");
	check("//..", "/");
	check("///../..", "/");
	check("//../../..", NULL);
}

static void
test_climbing_above_root(void **state)
{
	(void)state;
	check("/..", NULL);
	check("/../", NULL);
	check("/../a", NULL);
	check("/a/../..", NULL);
	check("/a/../../b", NULL);
	check("/a/b/../../../c", NULL);
	check("/./..", NULL);
}

static void
test_refused_bytes_and_escapes(void **state)
{
	(void)state;
	check("", NULL);
	check("a/b", NULL);
	check("*", NULL);
	check("%2Fa", NULL);
	check("/a%2Fb", NULL);
	check("/a%2fb", NULL);
	check("/a%5Cb", NULL);
	check("/a%5cb", NULL);
	check("/a%00", NULL);
	check("/%", NULL);
	check("/a%", NULL);
	check("/%G1", NULL);
	check("/%1G", NULL);
	check("/%1", NULL);
	check("/a%4", NULL);
	check("/%%41", NULL);
	check("/a#b", NULL);
	check("/#", NULL);
	check("/a\x01", NULL);
	check("/a\tb", NULL);
	check("/a\rb", NULL);
	check("/a\nb", NULL);
	check("/a\x1f", NULL);
	check("/a\x7f", NULL);
	check_len("/a\0b", 4, NULL);
	/* A raw backslash would go upstream as %5C, which is refused itself. */
	check("/a\\b", NULL);
	check("/internal/..\\..\\secret", NULL);
	/* Other bytes that are not control bytes pass through untouched. */
	check("/a b", "/a b");
	check("/\xc3\xa9", "/\xc3\xa9");
	check("/a?b", "/a?b");
}

static void
test_error_has_reason(void **state)
{
	char out[16];
	size_t n;
	const char *err = NULL;

	(void)state;
	assert_int_equal(path_normalize("/a%2Fb", 6, out, &n, &err), -1);
	assert_non_null(strstr(err, "2F"));
	assert_int_equal(path_normalize("/..", 3, out, &n, &err), -1);
	assert_non_null(strstr(err, ".."));
	assert_int_equal(path_normalize("x", 1, out, &n, &err), -1);
	assert_non_null(strstr(err, "/"));
}

static void
test_idempotent(void **state)
{
	static const char *const inputs[] = {
	    "/a/b/c/./../../g", "/%2e%2E/",	 "/a//../b", "/%c3%a9/%41",
	    "//a/./b/..",	"/a/%2e%2e/%7e", "/x/%2E",   "/%7Euser/./x/",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		char a[64], b[64];
		size_t na, nb;
		const char *err;

		if (path_normalize(inputs[i], strlen(inputs[i]), a, &na, &err) == -1)
			continue;
		assert_int_equal(path_normalize(a, na, b, &nb, &err), 0);
		assert_string_equal(a, b);
	}
}

static void
check_encode(const char *in, size_t len, bool keep_slash, const char *want)
{
	struct buf b;

	buf_init(&b);
	buf_adds(&b, "pre:");
	path_encode(&b, in, len, keep_slash);
	assert_true(strncmp(b.data, "pre:", 4) == 0);
	assert_string_equal(b.data + 4, want);
	buf_free(&b);
}

static void
test_encode(void **state)
{
	(void)state;
	check_encode("abc", 3, true, "abc");
	check_encode("/a/b", 4, true, "/a/b");
	check_encode("/a/b", 4, false, "%2Fa%2Fb");
	check_encode("a b?c#d", 7, true, "a%20b%3Fc%23d");
	check_encode("\r\n", 2, true, "%0D%0A");
	check_encode("a\0b", 3, true, "a%00b");
	check_encode("%41%2f", 6, true, "%41%2f");
	check_encode("%", 1, true, "%25");
	check_encode("%4", 2, true, "%254");
	check_encode("%zz", 3, true, "%25zz");
	check_encode("\xc3\xa9", 2, true, "%C3%A9");
	check_encode("\"<>\\^`{|}[]", 11, true, "%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D");
	check_encode("-._~!$&'()*+,;=:@", 17, true, "-._~!$&'()*+,;=:@");
	check_encode("", 0, true, "");
}

static void
test_is_pchar(void **state)
{
	int count = 0;

	(void)state;
	for (int c = 0; c < 256; c++)
		count += path_is_pchar((unsigned char)c);
	/* 66 unreserved, 11 sub-delims, ":" and "@" */
	assert_int_equal(count, 79);
	assert_true(path_is_pchar('a'));
	assert_true(path_is_pchar('Z'));
	assert_true(path_is_pchar('7'));
	assert_true(path_is_pchar('~'));
	assert_true(path_is_pchar('@'));
	assert_true(path_is_pchar(';'));
	assert_false(path_is_pchar('%'));
	assert_false(path_is_pchar('/'));
	assert_false(path_is_pchar('?'));
	assert_false(path_is_pchar('#'));
	assert_false(path_is_pchar(' '));
	assert_false(path_is_pchar('\0'));
	assert_false(path_is_pchar(0x80));
	assert_false(path_is_pchar(0xff));
}

/* path_normalize_rule(): `want` the normalized rule, or NULL and the error offset `off`. */
static void
check_rule(const char *in, const char *want, size_t want_off)
{
	size_t len = strlen(in), n = 0, off = 999;
	char *out = malloc(len + 1);
	const char *err = NULL;
	int rc;

	assert_non_null(out);
	rc = path_normalize_rule(in, len, out, &n, &off, &err);
	if (want != NULL) {
		if (rc != 0)
			fail_msg("\"%s\": unexpected error: %s", in, err);
		assert_string_equal(out, want);
		assert_int_equal(n, strlen(want));
	} else {
		if (rc != -1)
			fail_msg("\"%s\": expected an error, got \"%s\"", in, out);
		assert_non_null(err);
		if (off != want_off)
			fail_msg("\"%s\": error \"%s\" at %zu, expected at %zu", in, err, off,
				 want_off);
	}
	free(out);
}

static void
test_rule_paths(void **state)
{
	(void)state;
	check_rule("/t%7Eu", "/t~u", 0); /* as requests for it are normalized */
	check_rule("/t%7eu/%3a/%2D", "/t~u/%3A/-", 0);
	check_rule("/a//b/", "/a//b/", 0);
	check_rule("/", "/", 0);
	check_rule("/a.b/..c/...", "/a.b/..c/...", 0); /* not dot segments */
	check_rule("/caf\xc3\xa9", "/caf\xc3\xa9", 0);
	check_rule("/a/%2Fb", NULL, 3);
	check_rule("/a/%2fb", NULL, 3);
	check_rule("/a/%5C", NULL, 3);
	check_rule("/a/%00", NULL, 3);
	check_rule("/a/%zz", NULL, 3);
	check_rule("/a/%4", NULL, 3);
	check_rule("/a/../b", NULL, 3);
	check_rule("/a/./b", NULL, 3);
	check_rule("/a/.", NULL, 3);
	check_rule("/a/..", NULL, 3);
	check_rule("/./", NULL, 1);
	check_rule("/a/%2e%2E/b", NULL, 3);
	check_rule("/a/.%2e", NULL, 3);
	check_rule("/a b", NULL, 2);
	check_rule("/a#b", NULL, 2);
	check_rule("/a?b", NULL, 2);
	check_rule("/a\tb", NULL, 2);
	check_rule("/a\\b", NULL, 2);
	check_rule("/a\x7f", NULL, 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_paths_unchanged),
	    cmocka_unit_test(test_unreserved_escapes_decoded),
	    cmocka_unit_test(test_other_escapes_upper_cased),
	    cmocka_unit_test(test_dot_segments_rfc3986),
	    cmocka_unit_test(test_encoded_dots_count),
	    cmocka_unit_test(test_slash_runs_kept),
	    cmocka_unit_test(test_climbing_above_root),
	    cmocka_unit_test(test_refused_bytes_and_escapes),
	    cmocka_unit_test(test_error_has_reason),
	    cmocka_unit_test(test_idempotent),
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_is_pchar),
	    cmocka_unit_test(test_rule_paths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
