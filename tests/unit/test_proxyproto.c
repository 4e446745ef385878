/*
 * test_proxyproto.c: PROXY protocol versions 1 and 2: valid headers with
 * their addresses and lengths, every malformed form the parser refuses with
 * its reason, and truncation: every proper prefix of a valid header asks for
 * more, every prefix of an invalid one is never accepted, and bytes after a
 * header are never taken.
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

#include "portico/proxyproto.h"

#define SIG	"\r\n\r\n\0\r\nQUIT\n"
#define SIG_LEN 12

/* "v1 192.0.2.1:5 198.51.100.2:80", "v2 [2001:db8::1]:1 [::1]:2" or "v1 local". */
static void
describe(const struct proxyproto_header *h, char *out, size_t size)
{
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];

	if (h->local) {
		snprintf(out, size, "v%u local", h->version);
		return;
	}
	if (h->src.ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&h->src;
		const struct sockaddr_in *d = (const struct sockaddr_in *)&h->dst;

		assert_int_equal(d->sin_family, AF_INET);
		inet_ntop(AF_INET, &s->sin_addr, src, sizeof(src));
		inet_ntop(AF_INET, &d->sin_addr, dst, sizeof(dst));
		snprintf(out, size, "v%u %s:%u %s:%u", h->version, src, ntohs(s->sin_port), dst,
			 ntohs(d->sin_port));
		return;
	}
	const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&h->src;
	const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)&h->dst;

	assert_int_equal(h->src.ss_family, AF_INET6);
	assert_int_equal(d->sin6_family, AF_INET6);
	inet_ntop(AF_INET6, &s->sin6_addr, src, sizeof(src));
	inet_ntop(AF_INET6, &d->sin6_addr, dst, sizeof(dst));
	snprintf(out, size, "v%u [%s]:%u [%s]:%u", h->version, src, ntohs(s->sin6_port), dst,
		 ntohs(d->sin6_port));
}

/*
 * Checks the whole input and every prefix of it: a valid header of `len`
 * bytes is MORE below len and the same DONE from len on (bytes after it are
 * never part of it); an invalid input is never DONE, and once a prefix is
 * INVALID every longer one is too.  Returns the answer for the whole input.
 */
static enum proxyproto_status
parse_all_prefixes(const uint8_t *p, size_t n, struct proxyproto_header *h, const char **reason)
{
	enum proxyproto_status full = proxyproto_parse(p, n, h, reason);
	bool invalid_seen = false;

	for (size_t k = 0; k < n; k++) {
		struct proxyproto_header hk;
		const char *rk = NULL;
		enum proxyproto_status st = proxyproto_parse(p, k, &hk, &rk);

		if (full == PROXYPROTO_DONE && k < h->len) {
			assert_int_equal(st, PROXYPROTO_MORE);
		} else if (full == PROXYPROTO_DONE) {
			assert_int_equal(st, PROXYPROTO_DONE);
			assert_memory_equal(&hk, h, sizeof(hk));
		} else {
			assert_int_not_equal(st, PROXYPROTO_DONE);
			if (invalid_seen)
				assert_int_equal(st, PROXYPROTO_INVALID);
			invalid_seen = st == PROXYPROTO_INVALID;
			if (st == PROXYPROTO_INVALID)
				assert_non_null(rk);
		}
	}
	return full;
}

struct v1_case {
	const char *in;
	const char *want; /* describe() of a valid header, or a substring of the reason */
	size_t len;	  /* header length of a valid one; 0 for an invalid one */
};

#define V6MAX "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

static const struct v1_case v1_good[] = {
    {"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n",
     "v1 192.168.0.1:56324 192.168.0.11:443", 47},
    {"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", "v1 0.0.0.0:0 255.255.255.255:65535", 44},
    {"PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n", "v1 10.0.0.1:1 10.0.0.2:2", 34},
    {"PROXY TCP6 2001:db8::1 2001:DB8::2 1 2\r\n", "v1 [2001:db8::1]:1 [2001:db8::2]:2", 40},
    {"PROXY TCP6 :: ::1 0 80\r\n", "v1 [::]:0 [::1]:80", 24},
    {"PROXY TCP6 " V6MAX " " V6MAX " 65535 65535\r\n", "v1 [" V6MAX "]:65535 [" V6MAX "]:65535",
     104},
    {"PROXY UNKNOWN\r\n", "v1 local", 15},
    {"PROXY UNKNOWN \r\n", "v1 local", 16},
    {"PROXY UNKNOWN anything at all, ignored\r\n", "v1 local", 40},
    {"PROXY UNKNOWN " V6MAX " " V6MAX " 65535 65535\r\n", "v1 local", 107},
};

static const struct v1_case v1_bad[] = {
    {"GET / HTTP/1.1\r\n\r\n", "not a PROXY protocol header", 0},
    {"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header", 0},
    {"PROXY\r\n", "not a PROXY protocol header", 0},
    {"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header", 0},
    {"PROXY \r\n", "expected TCP4, TCP6 or UNKNOWN", 0},
    {"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "expected TCP4, TCP6 or UNKNOWN", 0},
    {"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n", "LF without CR", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "CR not followed by LF", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", "CR not followed by LF", 0},
    {"PROXY TCP4\r\n", "SRC DST SPORT DPORT", 0},
    {"PROXY TCP4 \r\n", "SRC DST SPORT DPORT", 0},
    {"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "SRC DST SPORT DPORT", 0},
    {"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "SRC DST SPORT DPORT", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", "SRC DST SPORT DPORT", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "SRC DST SPORT DPORT", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "SRC DST SPORT DPORT", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "port", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1 00\r\n", "port", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "port", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n", "port", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n", "port", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x50\r\n", "port", 0},
    {"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP4 1.2.3.4. 5.6.7.8 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP4 1.2.3.4 5.6.7.8x 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP4 ::1 ::2 1 2\r\n", "canonical IPv4", 0},
    {"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "IPv6", 0},
    {"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", "IPv6", 0},
    {"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "IPv6", 0},
    {"PROXY TCP6 :::1 ::1 1 2\r\n", "IPv6", 0},
    {"PROXY TCP6 12345::1 ::1 1 2\r\n", "IPv6", 0},
    {"PROXY TCP6 1::2::3 ::1 1 2\r\n", "IPv6", 0},
    {"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "IPv6", 0},
    {"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol is not", 0},
    {"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n", "protocol is not", 0},
    {"PROXY UNKNOWNX\r\n", "protocol is not", 0},
    {"PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", "printable", 0},
    {"PROXY UNKNOWN \x80\r\n", "printable", 0},
    {"PROXY UNKNOWN \x7f\r\n", "printable", 0},
};

static void
test_v1_valid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(v1_good) / sizeof(v1_good[0]); i++) {
		const struct v1_case *c = &v1_good[i];
		struct proxyproto_header h;
		const char *reason = NULL;
		char text[160];

		print_message("%s", c->in);
		assert_int_equal(
		    parse_all_prefixes((const uint8_t *)c->in, strlen(c->in), &h, &reason),
		    PROXYPROTO_DONE);
		assert_int_equal(h.len, c->len);
		describe(&h, text, sizeof(text));
		assert_string_equal(text, c->want);
	}
}

static void
test_v1_invalid(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(v1_bad) / sizeof(v1_bad[0]); i++) {
		const struct v1_case *c = &v1_bad[i];
		struct proxyproto_header h;
		const char *reason = NULL;

		print_message("%s\n", c->in);
		assert_int_equal(
		    parse_all_prefixes((const uint8_t *)c->in, strlen(c->in), &h, &reason),
		    PROXYPROTO_INVALID);
		assert_non_null(reason);
		if (strstr(reason, c->want) == NULL)
			fail_msg("reason \"%s\" does not say \"%s\"", reason, c->want);
	}
}

/* A line of `len` bytes before `end`: "PROXY UNKNOWN " and as many "a". */
static size_t
long_line(char *out, size_t len, const char *end)
{
	memset(out, 'a', len);
	memcpy(out, "PROXY UNKNOWN ", 14);
	strcpy(out + len, end);
	return len + strlen(end);
}

/* 107 bytes with the CRLF are accepted; the CRLF must come by then. */
static void
test_v1_length_bound(void **state)
{
	char line[128];
	struct proxyproto_header h;
	const char *reason = NULL;
	size_t n;

	(void)state;
	n = long_line(line, 105, "\r\n");
	assert_int_equal(parse_all_prefixes((uint8_t *)line, n, &h, &reason), PROXYPROTO_DONE);
	assert_int_equal(h.len, 107);
	/* The CRLF would end at byte 108. */
	n = long_line(line, 106, "\r\n");
	assert_int_equal(parse_all_prefixes((uint8_t *)line, n, &h, &reason), PROXYPROTO_INVALID);
	assert_non_null(strstr(reason, "no CRLF within 107"));
	/* 107 bytes and no CR at all: refused without waiting for more. */
	n = long_line(line, 107, "");
	assert_int_equal(parse_all_prefixes((uint8_t *)line, n, &h, &reason), PROXYPROTO_INVALID);
	assert_non_null(strstr(reason, "no CRLF within 107"));
	assert_int_equal(proxyproto_parse(line, 106, &h, &reason), PROXYPROTO_MORE);
}

/* A bad byte is refused when it arrives, before any CRLF. */
static void
test_v1_refused_early(void **state)
{
	static const char *const early[] = {"G", "PROXY TCP4 1.2.3.4\n", "PROXY TCP4 1.2\t",
					    "PROXY TCP4 1.2.3.4\rX", "PROXX"};
	struct proxyproto_header h;
	const char *reason = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(early) / sizeof(early[0]); i++)
		assert_int_equal(proxyproto_parse(early[i], strlen(early[i]), &h, &reason),
				 PROXYPROTO_INVALID);
	/* ...while a line that is still valid so far waits, up to 106 bytes. */
	assert_int_equal(proxyproto_parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", 31, &h, &reason),
			 PROXYPROTO_MORE);
	assert_int_equal(proxyproto_parse("PROXY", 5, &h, &reason), PROXYPROTO_MORE);
	assert_int_equal(proxyproto_parse("", 0, &h, &reason), PROXYPROTO_MORE);
}

/* A version 2 header: signature, version/command, family, length, body. */
static size_t
v2(uint8_t *out, uint8_t vercmd, uint8_t family, const void *body, size_t len)
{
	memcpy(out, SIG, SIG_LEN);
	out[12] = vercmd;
	out[13] = family;
	out[14] = (uint8_t)(len >> 8);
	out[15] = (uint8_t)len;
	if (len)
		memcpy(out + 16, body, len);
	return 16 + len;
}

#define TCP4_BODY "\x01\x02\x03\x04\x05\x06\x07\x08\x03\xe8\x01\xbb"
#define TCP6_BODY                                                                                  \
	"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"                                               \
	"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x01"                                                       \
	"\xff\xff\x00\x50"

struct v2_case {
	const char *name;
	uint8_t vercmd, family;
	const char *body;
	size_t len;	  /* bytes of body */
	const char *want; /* describe() of a valid header, or a substring of the reason */
	bool valid;
};

#define TLVS                                                                                       \
	"\x01\x00\x02h2"                                                                           \
	"\x02\x00\x0fwww.example.com"                                                              \
	"\x04\x00\x00"                                                                             \
	"\x20\x00\x0c\x01\0\0\0\0\x21\x00\x04TLS1"

static const struct v2_case v2_cases[] = {
    {"tcp4", 0x21, 0x11, TCP4_BODY, 12, "v2 1.2.3.4:1000 5.6.7.8:443", true},
    {"tcp6", 0x21, 0x21, TCP6_BODY, 36, "v2 [2001:db8::1]:65535 [::1]:80", true},
    {"tcp4 with TLVs", 0x21, 0x11, TCP4_BODY TLVS, 12 + sizeof(TLVS) - 1,
     "v2 1.2.3.4:1000 5.6.7.8:443", true},
    {"tcp6 with TLVs", 0x21, 0x21, TCP6_BODY TLVS, 36 + sizeof(TLVS) - 1,
     "v2 [2001:db8::1]:65535 [::1]:80", true},
    {"local, no block", 0x20, 0x00, "", 0, "v2 local", true},
    {"local with addresses", 0x20, 0x11, TCP4_BODY, 12, "v2 local", true},
    {"local with anything after", 0x20, 0x00, "\x01\x02", 2, "v2 local", true},
    {"proxy unspec", 0x21, 0x00, "", 0, "v2 local", true},
    {"proxy unspec with bytes", 0x21, 0x00, "\xff\xff\xff", 3, "v2 local", true},
    {"udp4", 0x21, 0x12, TCP4_BODY, 12, "v2 local", true},
    {"udp6", 0x21, 0x22, TCP6_BODY, 36, "v2 local", true},
    {"inet, unspec transport", 0x21, 0x10, "\x01", 1, "v2 local", true},
    {"version 1 nibble", 0x11, 0x11, TCP4_BODY, 12, "version nibble", false},
    {"version 3 nibble", 0x31, 0x11, TCP4_BODY, 12, "version nibble", false},
    {"command 2", 0x22, 0x11, TCP4_BODY, 12, "command", false},
    {"command 15", 0x2f, 0x11, TCP4_BODY, 12, "command", false},
    {"family 4", 0x21, 0x41, TCP4_BODY, 12, "address family", false},
    {"family 15", 0x21, 0xf1, TCP4_BODY, 12, "address family", false},
    {"transport 3", 0x21, 0x13, TCP4_BODY, 12, "transport", false},
    {"tcp4 block short", 0x21, 0x11, TCP4_BODY, 11, "address block shorter", false},
    {"tcp6 block short", 0x21, 0x21, TCP6_BODY, 12, "address block shorter", false},
    {"tcp4 empty block", 0x21, 0x11, "", 0, "address block shorter", false},
    {"TLV header cut", 0x21, 0x11, TCP4_BODY "\x01\x00", 14, "TLV", false},
    {"TLV one byte", 0x21, 0x11, TCP4_BODY "\x04", 13, "TLV", false},
    {"TLV value past the end", 0x21, 0x11, TCP4_BODY "\x01\x00\x03h2", 17, "TLV", false},
    {"TLV then a stray byte", 0x21, 0x11, TCP4_BODY "\x01\x00\x02h2\x00", 18, "TLV", false},
    {"TLV length 0xffff", 0x21, 0x21, TCP6_BODY "\x05\xff\xff", 39, "TLV", false},
};

static void
test_v2_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(v2_cases) / sizeof(v2_cases[0]); i++) {
		const struct v2_case *c = &v2_cases[i];
		uint8_t buf[512];
		size_t n = v2(buf, c->vercmd, c->family, c->body, c->len);
		struct proxyproto_header h;
		const char *reason = NULL;
		char text[160];

		print_message("%s\n", c->name);
		/* Request bytes after the header are never part of it. */
		memcpy(buf + n, "GET / HTTP/1.1\r\n", 16);
		if (!c->valid) {
			assert_int_equal(parse_all_prefixes(buf, n, &h, &reason),
					 PROXYPROTO_INVALID);
			if (strstr(reason, c->want) == NULL)
				fail_msg("reason \"%s\" does not say \"%s\"", reason, c->want);
			continue;
		}
		assert_int_equal(parse_all_prefixes(buf, n + 16, &h, &reason), PROXYPROTO_DONE);
		assert_int_equal(h.len, n);
		assert_int_equal(h.version, 2);
		describe(&h, text, sizeof(text));
		assert_string_equal(text, c->want);
	}
}

static void
test_v2_unix(void **state)
{
	uint8_t body[216], buf[256];
	struct proxyproto_header h;
	const char *reason = NULL;
	size_t n;

	(void)state;
	memset(body, 'a', sizeof(body));
	n = v2(buf, 0x21, 0x31, body, sizeof(body));
	assert_int_equal(parse_all_prefixes(buf, n, &h, &reason), PROXYPROTO_DONE);
	assert_true(h.local);
	assert_int_equal(h.len, 232);
	n = v2(buf, 0x21, 0x32, body, sizeof(body) - 1);
	assert_int_equal(proxyproto_parse(buf, n, &h, &reason), PROXYPROTO_INVALID);
	assert_non_null(strstr(reason, "address block shorter"));
}

/* The announced length is bounded as soon as the 16 fixed bytes are in. */
static void
test_v2_length_bound(void **state)
{
	static uint8_t buf[PROXYPROTO_V2_MAX_LEN + 16];
	size_t fill = PROXYPROTO_V2_MAX_LEN - 16 - 12;
	struct proxyproto_header h;
	const char *reason = NULL;

	(void)state;
	/* Exactly the bound: the addresses and one NOOP TLV that fills the rest. */
	memset(buf, 0, sizeof(buf));
	memcpy(buf, SIG "\x21\x11", 14);
	buf[14] = (uint8_t)((12 + fill) >> 8);
	buf[15] = (uint8_t)(12 + fill);
	memcpy(buf + 16, TCP4_BODY, 12);
	buf[28] = 0x04;
	buf[29] = (uint8_t)((fill - 3) >> 8);
	buf[30] = (uint8_t)(fill - 3);
	assert_int_equal(proxyproto_parse(buf, PROXYPROTO_V2_MAX_LEN - 1, &h, &reason),
			 PROXYPROTO_MORE);
	assert_int_equal(proxyproto_parse(buf, PROXYPROTO_V2_MAX_LEN, &h, &reason),
			 PROXYPROTO_DONE);
	assert_int_equal(h.len, PROXYPROTO_V2_MAX_LEN);
	/* One byte more is refused from the fixed part alone. */
	buf[15] = (uint8_t)(12 + fill + 1);
	assert_int_equal(proxyproto_parse(buf, 16, &h, &reason), PROXYPROTO_INVALID);
	assert_non_null(strstr(reason, "longer than 4096"));
	buf[14] = buf[15] = 0xff;
	assert_int_equal(proxyproto_parse(buf, 16, &h, &reason), PROXYPROTO_INVALID);
}

/* Version 2 is refused at the first byte that cannot belong to it. */
static void
test_v2_refused_early(void **state)
{
	struct proxyproto_header h;
	const char *reason = NULL;

	(void)state;
	assert_int_equal(proxyproto_parse("\r\n\r\n\x01", 5, &h, &reason), PROXYPROTO_INVALID);
	assert_int_equal(proxyproto_parse("\r\n\r\n\0\r\nQUIT\r", 12, &h, &reason),
			 PROXYPROTO_INVALID);
	assert_int_equal(proxyproto_parse(SIG "\x22", 13, &h, &reason), PROXYPROTO_INVALID);
	assert_int_equal(proxyproto_parse(SIG "\x21\x14", 14, &h, &reason), PROXYPROTO_INVALID);
	assert_int_equal(proxyproto_parse(SIG "\x21", 13, &h, &reason), PROXYPROTO_MORE);
	assert_int_equal(proxyproto_parse(SIG "\x21\x11\x00", 15, &h, &reason), PROXYPROTO_MORE);
	/* A version 1 line is not taken for a version 2 header, nor the reverse. */
	assert_int_equal(proxyproto_parse("\r\nPROXY", 7, &h, &reason), PROXYPROTO_INVALID);
}

/* DONE fills every field; MORE and INVALID leave the caller's header alone. */
static void
test_result_untouched_unless_done(void **state)
{
	struct proxyproto_header h, before;
	const char *reason = "unchanged";

	(void)state;
	memset(&h, 0xa5, sizeof(h));
	before = h;
	assert_int_equal(proxyproto_parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 2", 30, &h, &reason),
			 PROXYPROTO_MORE);
	assert_string_equal(reason, "unchanged");
	assert_int_equal(proxyproto_parse("PROXY TCP4 1.2.3.4 5.6.7.8 1 02\r\n", 33, &h, &reason),
			 PROXYPROTO_INVALID);
	assert_memory_equal(&h, &before, sizeof(h));
	assert_int_equal(proxyproto_parse("PROXY UNKNOWN\r\n", 15, &h, &reason), PROXYPROTO_DONE);
	assert_true(h.local);
	assert_int_equal(h.src.ss_family, 0);
	assert_int_equal(h.dst.ss_family, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v1_valid),
	    cmocka_unit_test(test_v1_invalid),
	    cmocka_unit_test(test_v1_length_bound),
	    cmocka_unit_test(test_v1_refused_early),
	    cmocka_unit_test(test_v2_cases),
	    cmocka_unit_test(test_v2_unix),
	    cmocka_unit_test(test_v2_length_bound),
	    cmocka_unit_test(test_v2_refused_early),
	    cmocka_unit_test(test_result_untouched_unless_done),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
