/*
 * test_access.c: parsing of access rules and the first-match decision over
 * IPv4, IPv6 and IPv4-mapped IPv6 client addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "portico/access.h"

/* Builds a sockaddr for a numeric address of either family. */
static const struct sockaddr *
addr_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

/* Parses "allow X" / "deny X" lines into a list. */
static void
list_of(struct access_list *l, const char *const *rules, size_t n)
{
	l->rules = calloc(n ? n : 1, sizeof(*l->rules));
	l->n = n;
	for (size_t i = 0; i < n; i++) {
		bool allow = strncmp(rules[i], "allow ", 6) == 0;
		const char *text = strchr(rules[i], ' ') + 1;
		const char *err = NULL;

		assert_int_equal(access_rule_parse(text, allow, &l->rules[i], &err), 0);
	}
}

static bool
allowed(const struct access_list *l, const char *client)
{
	struct sockaddr_storage ss;

	return access_is_allowed(l, addr_of(client, &ss));
}

struct parse_case {
	const char *in;
	int family; /* 0: "all" */
	const char *net;
	unsigned prefix;
};

static const struct parse_case parse_good[] = {
    {"all", 0, NULL, 0},
    {"ALL", 0, NULL, 0},
    {"192.0.2.1", AF_INET, "192.0.2.1", 32},
    {"10.0.0.0/8", AF_INET, "10.0.0.0", 8},
    {"10.1.2.3/8", AF_INET, "10.0.0.0", 8},
    {"192.0.2.77/26", AF_INET, "192.0.2.64", 26},
    {"0.0.0.0/0", AF_INET, "0.0.0.0", 0},
    {"255.255.255.255/0", AF_INET, "0.0.0.0", 0},
    {"192.0.2.1/32", AF_INET, "192.0.2.1", 32},
    {"::1", AF_INET6, "::1", 128},
    {"2001:db8::/32", AF_INET6, "2001:db8::", 32},
    {"2001:db8:ffff::1/33", AF_INET6, "2001:db8:8000::", 33},
    {"::/0", AF_INET6, "::", 0},
    {"fe80::1/128", AF_INET6, "fe80::1", 128},
    {"::ffff:10.0.0.0/104", AF_INET, "10.0.0.0", 8},
    {"::ffff:192.0.2.1", AF_INET, "192.0.2.1", 32},
};

static void
test_parse_good(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_good) / sizeof(parse_good[0]); i++) {
		const struct parse_case *c = &parse_good[i];
		struct access_rule r;
		uint8_t want[16] = {0};
		const char *err = NULL;

		print_message("%s\n", c->in);
		assert_int_equal(access_rule_parse(c->in, false, &r, &err), 0);
		assert_false(r.allow);
		assert_int_equal(r.all, c->family == 0);
		if (c->family == 0)
			continue;
		assert_int_equal(r.family, c->family);
		assert_int_equal(r.prefix, c->prefix);
		assert_int_equal(inet_pton(c->family, c->net, want), 1);
		assert_memory_equal(r.addr, want, c->family == AF_INET ? 4 : 16);
	}
}

static const char *const parse_bad[] = {
    "",
    "al",
    "everyone",
    "10.0.0.0/33",
    "2001:db8::/129",
    "10.0.0.0/",
    "10.0.0.0/-1",
    "10.0.0.0/+8",
    "10.0.0.0/8x",
    "10.0.0.0/0008",
    "10.0.0.0/8/8",
    "/8",
    "10.0.0",
    "10.0.0.256",
    "10.0.0.1 ",
    " 10.0.0.1",
    "[::1]",
    "::1::2",
    "example.com",
    "10.0.0.0/8 deny",
    "2001:db8::/ 32",
};

static void
test_parse_bad(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_bad) / sizeof(parse_bad[0]); i++) {
		struct access_rule r;
		const char *err = NULL;

		print_message("\"%s\"\n", parse_bad[i]);
		assert_int_equal(access_rule_parse(parse_bad[i], true, &r, &err), -1);
		assert_non_null(err);
	}
}

static void
test_prefix_error_names_range(void **state)
{
	struct access_rule r;
	const char *err = NULL;

	(void)state;
	assert_int_equal(access_rule_parse("10.0.0.0/33", true, &r, &err), -1);
	assert_non_null(strstr(err, "0..32"));
	assert_int_equal(access_rule_parse("::/200", true, &r, &err), -1);
	assert_non_null(strstr(err, "0..128"));
}

static void
test_null_list_allows(void **state)
{
	(void)state;
	assert_true(allowed(NULL, "192.0.2.1"));
	assert_true(allowed(NULL, "2001:db8::1"));
}

static void
test_empty_list_denies(void **state)
{
	struct access_list l = {NULL, 0};

	(void)state;
	assert_false(allowed(&l, "192.0.2.1"));
	assert_false(allowed(&l, "::1"));
}

static void
test_no_match_denies(void **state)
{
	static const char *const rules[] = {"allow 10.0.0.0/8", "allow 2001:db8::/32"};
	struct access_list l;

	(void)state;
	list_of(&l, rules, 2);
	assert_true(allowed(&l, "10.200.1.1"));
	assert_true(allowed(&l, "2001:db8:1::5"));
	assert_false(allowed(&l, "11.0.0.1"));
	assert_false(allowed(&l, "2001:db9::1"));
	access_list_free(&l);
	assert_null(l.rules);
	assert_int_equal(l.n, 0);
}

static void
test_first_match_wins(void **state)
{
	static const char *const rules[] = {"deny 10.1.0.0/16", "allow 10.0.0.0/8", "deny all"};
	struct access_list l;
	struct sockaddr_storage ss;

	(void)state;
	list_of(&l, rules, 3);
	assert_false(allowed(&l, "10.1.2.3"));
	assert_true(allowed(&l, "10.2.2.3"));
	assert_false(allowed(&l, "192.0.2.1"));
	assert_false(allowed(&l, "::1"));
	assert_int_equal(access_first_match(&l, addr_of("10.1.2.3", &ss)), 0);
	assert_int_equal(access_first_match(&l, addr_of("10.2.2.3", &ss)), 1);
	assert_int_equal(access_first_match(&l, addr_of("::1", &ss)), 2);
	assert_int_equal(access_first_match(NULL, addr_of("::1", &ss)), -1);
	access_list_free(&l);
}

static void
test_allow_all_then_deny(void **state)
{
	static const char *const rules[] = {"allow all", "deny 192.0.2.1"};
	struct access_list l;

	(void)state;
	list_of(&l, rules, 2);
	assert_true(allowed(&l, "192.0.2.1"));
	assert_true(allowed(&l, "2001:db8::1"));
	access_list_free(&l);
}

static void
test_single_address(void **state)
{
	static const char *const rules[] = {"allow 192.0.2.1", "allow ::1"};
	struct access_list l;

	(void)state;
	list_of(&l, rules, 2);
	assert_true(allowed(&l, "192.0.2.1"));
	assert_false(allowed(&l, "192.0.2.2"));
	assert_false(allowed(&l, "192.0.2.0"));
	assert_true(allowed(&l, "::1"));
	assert_false(allowed(&l, "::2"));
	access_list_free(&l);
}

static void
test_odd_prefixes(void **state)
{
	static const char *const rules[] = {"allow 192.0.2.64/26", "allow 2001:db8:8000::/33"};
	struct access_list l;

	(void)state;
	list_of(&l, rules, 2);
	assert_false(allowed(&l, "192.0.2.63"));
	assert_true(allowed(&l, "192.0.2.64"));
	assert_true(allowed(&l, "192.0.2.127"));
	assert_false(allowed(&l, "192.0.2.128"));
	assert_false(allowed(&l, "2001:db8:7fff::1"));
	assert_true(allowed(&l, "2001:db8:8000::1"));
	assert_true(allowed(&l, "2001:db8:ffff:ffff::1"));
	access_list_free(&l);
}

static void
test_zero_prefix_matches_family_only(void **state)
{
	static const char *const rules[] = {"allow 0.0.0.0/0"};
	static const char *const rules6[] = {"allow ::/0"};
	struct access_list l;

	(void)state;
	list_of(&l, rules, 1);
	assert_true(allowed(&l, "203.0.113.9"));
	assert_false(allowed(&l, "2001:db8::1"));
	assert_true(allowed(&l, "::ffff:203.0.113.9"));
	access_list_free(&l);
	list_of(&l, rules6, 1);
	assert_true(allowed(&l, "2001:db8::1"));
	assert_false(allowed(&l, "203.0.113.9"));
	assert_false(allowed(&l, "::ffff:203.0.113.9"));
	access_list_free(&l);
}

static void
test_v4mapped_client(void **state)
{
	static const char *const rules[] = {"deny 10.0.0.5", "allow 10.0.0.0/8"};
	struct access_list l;

	(void)state;
	list_of(&l, rules, 2);
	assert_true(allowed(&l, "::ffff:10.1.1.1"));
	assert_false(allowed(&l, "::ffff:10.0.0.5"));
	assert_false(allowed(&l, "::ffff:11.0.0.1"));
	/* IPv4-compatible (::a.b.c.d) is not IPv4-mapped. */
	assert_false(allowed(&l, "::10.1.1.1"));
	access_list_free(&l);
}

static void
test_v4mapped_rule(void **state)
{
	static const char *const rules[] = {"allow ::ffff:10.0.0.0/104"};
	struct access_list l;

	(void)state;
	list_of(&l, rules, 1);
	assert_true(allowed(&l, "10.9.9.9"));
	assert_true(allowed(&l, "::ffff:10.9.9.9"));
	assert_false(allowed(&l, "11.9.9.9"));
	access_list_free(&l);
}

static void
test_other_family_matches_only_all(void **state)
{
	static const char *const deny_v4[] = {"allow 0.0.0.0/0", "allow ::/0"};
	static const char *const allow_all[] = {"allow all"};
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	struct access_list l;

	(void)state;
	list_of(&l, deny_v4, 2);
	assert_false(access_is_allowed(&l, (const struct sockaddr *)&un));
	access_list_free(&l);
	list_of(&l, allow_all, 1);
	assert_true(access_is_allowed(&l, (const struct sockaddr *)&un));
	access_list_free(&l);
}

static void
test_format(void **state)
{
	static const char *const in[] = {"all", "10.1.2.3/8",	      "192.0.2.1", "2001:db8::1/64",
					 "::1", "::ffff:10.0.0.0/104"};
	static const char *const want[] = {"allow: all",       "deny: 10.0.0.0/8",
					   "allow: 192.0.2.1", "deny: 2001:db8::/64",
					   "allow: ::1",       "deny: 10.0.0.0/8"};

	(void)state;
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		struct access_rule r;
		const char *err;
		struct buf b;

		buf_init(&b);
		assert_int_equal(access_rule_parse(in[i], i % 2 == 0, &r, &err), 0);
		access_rule_format(&r, &b);
		assert_string_equal(b.data, want[i]);
		buf_free(&b);
	}
}

/* Lists of addresses and blocks (proxy_protocol, forwarded.trusted) take no "all". */
static void
test_cidr_parse(void **state)
{
	struct access_rule r;
	const char *err = NULL;

	(void)state;
	assert_int_equal(access_cidr_parse("10.0.0.0/8", &r, &err), 0);
	assert_true(r.allow);
	assert_int_equal(r.prefix, 8);
	assert_int_equal(access_cidr_parse("2001:db8::1", &r, &err), 0);
	assert_int_equal(r.prefix, 128);
	assert_int_equal(access_cidr_parse("all", &r, &err), -1);
	assert_non_null(strstr(err, "0.0.0.0/0"));
	assert_false(r.all);
	assert_int_equal(access_cidr_parse("lb.example.com", &r, &err), -1);
	assert_string_equal(err, "expected an IPv4 or IPv6 address or a CIDR block");
	assert_int_equal(access_cidr_parse("10.0.0.0/40", &r, &err), -1);
	assert_non_null(strstr(err, "0..32"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_good),
	    cmocka_unit_test(test_parse_bad),
	    cmocka_unit_test(test_prefix_error_names_range),
	    cmocka_unit_test(test_null_list_allows),
	    cmocka_unit_test(test_empty_list_denies),
	    cmocka_unit_test(test_no_match_denies),
	    cmocka_unit_test(test_first_match_wins),
	    cmocka_unit_test(test_allow_all_then_deny),
	    cmocka_unit_test(test_single_address),
	    cmocka_unit_test(test_odd_prefixes),
	    cmocka_unit_test(test_zero_prefix_matches_family_only),
	    cmocka_unit_test(test_v4mapped_client),
	    cmocka_unit_test(test_v4mapped_rule),
	    cmocka_unit_test(test_other_family_matches_only_all),
	    cmocka_unit_test(test_format),
	    cmocka_unit_test(test_cidr_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
