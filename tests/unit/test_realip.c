/*
 * test_realip.c: the client address behind trusted forwarders: trusted and
 * untrusted peers, the rightmost untrusted X-Forwarded-For entry across one
 * or several fields, every entry trusted, empty entries, ports, and entries
 * that are not addresses (the walk stops there, as in nginx).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "portico/realip.h"

static const struct sockaddr *
addr_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(40000);
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(40000);
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return (const struct sockaddr *)ss;
}

/* "192.0.2.1", "192.0.2.1:80", "2001:db8::1" or "[2001:db8::1]:80". */
static void
format(const struct sockaddr_storage *ss, char *out, size_t size)
{
	char text[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		unsigned port = ntohs(s4->sin_port);

		inet_ntop(AF_INET, &s4->sin_addr, text, sizeof(text));
		if (port)
			snprintf(out, size, "%s:%u", text, port);
		else
			snprintf(out, size, "%s", text);
		return;
	}
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	unsigned port = ntohs(s6->sin6_port);

	assert_int_equal(ss->ss_family, AF_INET6);
	inet_ntop(AF_INET6, &s6->sin6_addr, text, sizeof(text));
	if (port)
		snprintf(out, size, "[%s]:%u", text, port);
	else
		snprintf(out, size, "%s", text);
}

struct realip_case {
	const char *peer;
	const char *trusted; /* space-separated CIDRs; NULL: no list */
	const char *xff[3];  /* field values in order, NULL-terminated */
	const char *want;    /* format() of the client */
	bool forwarded, malformed;
};

#define PEER "192.0.2.200:40000" /* format() of an untrusted peer 192.0.2.200 */
#define LB   "10.0.0.1:40000"	 /* format() of the trusted peer 10.0.0.1 */

static const struct realip_case cases[] = {
    /* The peer is not trusted: its X-Forwarded-For is not believed. */
    {"192.0.2.200", "10.0.0.0/8", {"203.0.113.9"}, PEER, false, false},
    {"192.0.2.200", NULL, {"203.0.113.9"}, PEER, false, false},
    {"192.0.2.200", "", {"203.0.113.9"}, PEER, false, false},
    /* Trusted peer, no header or nothing in it. */
    {"10.0.0.1", "10.0.0.0/8", {NULL}, LB, false, false},
    {"10.0.0.1", "10.0.0.0/8", {""}, LB, false, false},
    {"10.0.0.1", "10.0.0.0/8", {" , ,"}, LB, false, false},
    /* The rightmost entry that is not trusted. */
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9"}, "203.0.113.9", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9, 10.0.0.2"}, "203.0.113.9", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"198.51.100.7, 203.0.113.9, 10.0.0.2"}, "203.0.113.9", true, false},
    {"10.0.0.1",
     "10.0.0.0/8 172.16.0.0/12",
     {"198.51.100.7, 172.16.5.5, 10.0.0.2"},
     "198.51.100.7",
     true,
     false},
    /* Every entry trusted: the leftmost. */
    {"10.0.0.1", "10.0.0.0/8", {"10.0.0.3, 10.0.0.2"}, "10.0.0.3", true, false},
    /* Several fields form one list, in order. */
    {"10.0.0.1",
     "10.0.0.0/8",
     {"198.51.100.7, 203.0.113.9", "10.0.0.5"},
     "203.0.113.9",
     true,
     false},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9", "10.0.0.5, 10.0.0.6"}, "203.0.113.9", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9", "", "10.0.0.6"}, "203.0.113.9", true, false},
    /* Empty entries and whitespace are skipped. */
    {"10.0.0.1", "10.0.0.0/8", {",, 203.0.113.9 ,,"}, "203.0.113.9", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9,\t10.0.0.2"}, "203.0.113.9", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9,10.0.0.2"}, "203.0.113.9", true, false},
    /* Ports and IPv6 forms. */
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9:5678"}, "203.0.113.9:5678", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"2001:db8::1"}, "2001:db8::1", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"[2001:db8::1]"}, "2001:db8::1", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"[2001:db8::1]:443"}, "[2001:db8::1]:443", true, false},
    {"2001:db8:ff::1",
     "2001:db8:ff::/48",
     {"203.0.113.9, 2001:db8:ff::2"},
     "203.0.113.9",
     true,
     false},
    /* An IPv4-mapped peer matches an IPv4 rule; so does a mapped entry. */
    {"::ffff:10.0.0.1", "10.0.0.0/8", {"203.0.113.9"}, "203.0.113.9", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9, ::ffff:10.0.0.2"}, "203.0.113.9", true, false},
    /* Not an address: the walk stops; the last address reached stands. */
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9, unknown"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9, unknown, 10.0.0.2"}, "10.0.0.2", true, true},
    {"10.0.0.1", "10.0.0.0/8", {"unknown, 203.0.113.9"}, "203.0.113.9", true, false},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9", "_hidden"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"www.example.com"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9:"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9:65536"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9:http"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"[2001:db8::1"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"[2001:db8::1]x"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"[2001:db8::1]:"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"[203.0.113.9]"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.9.1"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"203.0.113.256"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"2001:db8::1:80:1:2:3:4:5"}, LB, false, true},
    {"10.0.0.1", "10.0.0.0/8", {"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.2555"}, LB, false, true},
};

/* Builds an access list of allow rules from "CIDR CIDR ...". */
static void
trusted_of(const char *spec, struct access_list *l, struct access_rule *rules, size_t cap)
{
	char copy[256];
	size_t n = 0;

	l->rules = rules;
	l->n = 0;
	snprintf(copy, sizeof(copy), "%s", spec);
	for (char *save = NULL, *t = strtok_r(copy, " ", &save); t;
	     t = strtok_r(NULL, " ", &save)) {
		const char *err = NULL;

		assert_true(n < cap);
		assert_int_equal(access_rule_parse(t, true, &rules[n++], &err), 0);
	}
	l->n = n;
}

static void
test_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct realip_case *c = &cases[i];
		struct access_rule rules[4];
		struct access_list trusted;
		struct realip_value xff[3];
		struct sockaddr_storage peer;
		struct realip_result r;
		char got[80];
		size_t n = 0;

		print_message("peer %s, trusted %s, first field \"%s\"\n", c->peer,
			      c->trusted ? c->trusted : "(none)", c->xff[0] ? c->xff[0] : "");
		if (c->trusted)
			trusted_of(c->trusted, &trusted, rules, 4);
		for (; n < 3 && c->xff[n]; n++)
			xff[n] = (struct realip_value){c->xff[n], strlen(c->xff[n])};
		memset(&r, 0xa5, sizeof(r));
		realip_client(addr_of(c->peer, &peer), c->trusted ? &trusted : NULL, xff, n, &r);
		format(&r.client, got, sizeof(got));
		assert_string_equal(got, c->want);
		assert_int_equal(r.forwarded, c->forwarded);
		assert_int_equal(r.malformed, c->malformed);
	}
}

/* Values are read only within their length: no NUL needed, nothing past it. */
static void
test_values_are_not_strings(void **state)
{
	static const char buf[] = "203.0.113.9, 10.0.0.2198.51.100.7";
	struct access_rule rules[1];
	struct access_list trusted;
	struct realip_value xff = {buf, 21}; /* "203.0.113.9, 10.0.0.2" */
	struct sockaddr_storage peer;
	struct realip_result r;
	char got[80];

	(void)state;
	trusted_of("10.0.0.0/8", &trusted, rules, 1);
	realip_client(addr_of("10.0.0.1", &peer), &trusted, &xff, 1, &r);
	format(&r.client, got, sizeof(got));
	assert_string_equal(got, "203.0.113.9");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cases),
	    cmocka_unit_test(test_values_are_not_strings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
