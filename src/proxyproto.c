/*
 * proxyproto.c: the PROXY protocol header, versions 1 and 2 (haproxy's
 * doc/proxy-protocol.txt), parsed from the bytes received so far.
 *
 * Version 1 is read strictly: "PROXY", single spaces, TCP4 or TCP6 with
 * canonical addresses (no leading zeros in IPv4 octets or ports, IPv6 in
 * hex-and-colon form only) or UNKNOWN followed by anything printable, and a
 * CRLF within 107 bytes.  Bytes are checked as they arrive, so a stray LF,
 * a lone CR or a control byte is refused before the line is complete.
 * Version 2 checks the signature, version, command, family and transport
 * before the announced length, bounds that length, and walks the TLVs after
 * the addresses so that each one fits exactly; their contents are ignored.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "portico/proxyproto.h"

#define PP_NOT_PROXY PROXYPROTO_NOT_PROXY

static const uint8_t pp_v2_signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
					    0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A span of the version 1 line, read token by token. */
struct pp_line {
	const uint8_t *p;
	size_t pos, end;
};

static enum proxyproto_status
pp_invalid(const char **reason, const char *why)
{
	*reason = why;
	return PROXYPROTO_INVALID;
}

/* The next token up to a space or the end of the line; the space is consumed. */
static int
pp_token(struct pp_line *l, const uint8_t **tok, size_t *len)
{
	size_t start = l->pos;

	while (l->pos < l->end && l->p[l->pos] != ' ')
		l->pos++;
	*tok = l->p + start;
	*len = l->pos - start;
	if (l->pos < l->end)
		l->pos++; /* the separating space */
	return *len > 0 ? 0 : -1;
}

static bool
pp_is_last(const struct pp_line *l)
{
	return l->pos == l->end && l->p[l->end - 1] != ' ';
}

static bool
pp_token_is(const uint8_t *tok, size_t len, const char *word)
{
	return len == strlen(word) && memcmp(tok, word, len) == 0;
}

/* A decimal number without leading zeros, at most `max`. */
static int
pp_decimal(const uint8_t *s, size_t len, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (len == 0 || len > 5 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* Four decimal octets in [0..255], no leading zeros, separated by single dots. */
static int
pp_ipv4(const uint8_t *s, size_t len, struct in_addr *out)
{
	uint8_t octets[4];
	size_t start = 0, part = 0;

	for (size_t i = 0; i <= len; i++) {
		unsigned v;

		if (i < len && s[i] != '.')
			continue;
		if (part == 4 || pp_decimal(s + start, i - start, 255, &v) < 0)
			return -1;
		octets[part++] = (uint8_t)v;
		start = i + 1;
	}
	if (part != 4)
		return -1;
	memcpy(&out->s_addr, octets, 4);
	return 0;
}

/* Hex groups and colons only (no embedded dotted quad), 128 bits in all. */
static int
pp_ipv6(const uint8_t *s, size_t len, struct in6_addr *out)
{
	char text[INET6_ADDRSTRLEN];

	if (len >= sizeof(text))
		return -1;
	for (size_t i = 0; i < len; i++) {
		bool hex = (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
			   (s[i] >= 'A' && s[i] <= 'F');

		if (!hex && s[i] != ':')
			return -1;
	}
	memcpy(text, s, len);
	text[len] = '\0';
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

static int
pp_v1_address(int family, const uint8_t *s, size_t len, unsigned port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		return pp_ipv4(s, len, &s4->sin_addr);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)port);
	return pp_ipv6(s, len, &s6->sin6_addr);
}

/* "SRC DST SPORT DPORT" after "PROXY TCP4 " or "PROXY TCP6 ". */
static enum proxyproto_status
pp_v1_tcp(struct pp_line *l, int family, struct proxyproto_header *h, const char **reason)
{
	const uint8_t *src, *dst, *sp, *dp;
	size_t srclen, dstlen, splen, dplen;
	unsigned sport, dport;

	if (pp_token(l, &src, &srclen) < 0 || pp_token(l, &dst, &dstlen) < 0 ||
	    pp_token(l, &sp, &splen) < 0 || pp_token(l, &dp, &dplen) < 0 || !pp_is_last(l))
		return pp_invalid(reason, "version 1: expected \"SRC DST SPORT DPORT\" separated "
					  "by single spaces");
	if (pp_decimal(sp, splen, 65535, &sport) < 0 || pp_decimal(dp, dplen, 65535, &dport) < 0)
		return pp_invalid(reason, "version 1: a port is not a number in 0..65535 without "
					  "leading zeros");
	if (pp_v1_address(family, src, srclen, sport, &h->src) < 0 ||
	    pp_v1_address(family, dst, dstlen, dport, &h->dst) < 0)
		return pp_invalid(reason, family == AF_INET
					      ? "version 1: an address is not a canonical IPv4 "
						"address"
					      : "version 1: an address is not an IPv6 address");
	return PROXYPROTO_DONE;
}

/* The complete line, `len` bytes before its CRLF. */
static enum proxyproto_status
pp_v1_line(const uint8_t *p, size_t len, struct proxyproto_header *h, const char **reason)
{
	struct pp_line l = {.p = p, .pos = 6, .end = len};
	struct proxyproto_header r;
	const uint8_t *proto;
	size_t protolen;
	enum proxyproto_status st;

	memset(&r, 0, sizeof(r));
	r.version = 1;
	r.len = len + 2;
	if (len <= 6 || pp_token(&l, &proto, &protolen) < 0)
		return pp_invalid(reason, "version 1: expected TCP4, TCP6 or UNKNOWN after "
					  "\"PROXY \"");
	if (pp_token_is(proto, protolen, "UNKNOWN")) {
		/* Whatever follows "UNKNOWN " is ignored, as the protocol says. */
		r.local = true;
		*h = r;
		return PROXYPROTO_DONE;
	}
	if (pp_token_is(proto, protolen, "TCP4"))
		st = pp_v1_tcp(&l, AF_INET, &r, reason);
	else if (pp_token_is(proto, protolen, "TCP6"))
		st = pp_v1_tcp(&l, AF_INET6, &r, reason);
	else
		return pp_invalid(reason, "version 1: protocol is not TCP4, TCP6 or UNKNOWN");
	if (st == PROXYPROTO_DONE)
		*h = r;
	return st;
}

static enum proxyproto_status
pp_v1(const uint8_t *p, size_t n, struct proxyproto_header *h, const char **reason)
{
	static const char prefix[] = "PROXY ";
	size_t lim = n < PROXYPROTO_V1_MAX_LEN ? n : PROXYPROTO_V1_MAX_LEN;

	for (size_t i = 0; i < lim; i++) {
		if (i < sizeof(prefix) - 1 && p[i] != (uint8_t)prefix[i])
			return pp_invalid(reason, PP_NOT_PROXY);
		if (p[i] == '\r') {
			if (i + 2 > PROXYPROTO_V1_MAX_LEN)
				break;
			if (i + 1 == n)
				return PROXYPROTO_MORE;
			if (p[i + 1] != '\n')
				return pp_invalid(reason, "version 1: CR not followed by LF");
			return pp_v1_line(p, i, h, reason);
		}
		if (p[i] == '\n')
			return pp_invalid(reason, "version 1: LF without CR");
		if (p[i] < 0x20 || p[i] > 0x7e)
			return pp_invalid(reason,
					  "version 1: a byte that is not printable US-ASCII");
	}
	if (lim == PROXYPROTO_V1_MAX_LEN)
		return pp_invalid(reason, "version 1: no CRLF within 107 bytes");
	return PROXYPROTO_MORE;
}

/* The TLVs between the addresses and the end of the header must tile it exactly. */
static int
pp_v2_tlvs(const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		size_t vlen;

		if (len - off < 3)
			return -1;
		vlen = (size_t)p[off + 1] << 8 | p[off + 2];
		if (vlen > len - off - 3)
			return -1;
		off += 3 + vlen;
	}
	return 0;
}

static void
pp_v2_addresses(const uint8_t *a, unsigned family, struct proxyproto_header *h)
{
	if (family == 1) {
		struct sockaddr_in *src = (struct sockaddr_in *)(void *)&h->src;
		struct sockaddr_in *dst = (struct sockaddr_in *)(void *)&h->dst;

		src->sin_family = dst->sin_family = AF_INET;
		memcpy(&src->sin_addr, a, 4);
		memcpy(&dst->sin_addr, a + 4, 4);
		memcpy(&src->sin_port, a + 8, 2);
		memcpy(&dst->sin_port, a + 10, 2);
		return;
	}
	struct sockaddr_in6 *src = (struct sockaddr_in6 *)(void *)&h->src;
	struct sockaddr_in6 *dst = (struct sockaddr_in6 *)(void *)&h->dst;

	src->sin6_family = dst->sin6_family = AF_INET6;
	memcpy(&src->sin6_addr, a, 16);
	memcpy(&dst->sin6_addr, a + 16, 16);
	memcpy(&src->sin6_port, a + 32, 2);
	memcpy(&dst->sin6_port, a + 34, 2);
}

/* The complete version 2 header of 16 + `len` bytes, a PROXY command. */
static enum proxyproto_status
pp_v2_proxy(const uint8_t *p, size_t len, struct proxyproto_header *h, const char **reason)
{
	static const size_t address_len[4] = {0, 12, 36, 216};
	unsigned family = p[13] >> 4, transport = p[13] & 0x0f;
	struct proxyproto_header r;
	size_t alen;

	memset(&r, 0, sizeof(r));
	r.version = 2;
	r.len = 16 + len;
	/* UNSPEC family or transport: nothing to read, the rest is opaque. */
	alen = transport == 0 ? 0 : address_len[family];
	if (len < alen)
		return pp_invalid(reason, "version 2: address block shorter than its family needs");
	if (alen > 0 && pp_v2_tlvs(p + 16 + alen, len - alen) < 0)
		return pp_invalid(reason, "version 2: a TLV does not fit the header");
	if ((family == 1 || family == 2) && transport == 1)
		pp_v2_addresses(p + 16, family, &r);
	else
		r.local = true; /* UDP, UNIX or UNSPEC: the connection's own addresses */
	*h = r;
	return PROXYPROTO_DONE;
}

static enum proxyproto_status
pp_v2(const uint8_t *p, size_t n, struct proxyproto_header *h, const char **reason)
{
	size_t sig = n < sizeof(pp_v2_signature) ? n : sizeof(pp_v2_signature);
	size_t len;

	if (memcmp(p, pp_v2_signature, sig) != 0)
		return pp_invalid(reason, PP_NOT_PROXY);
	if (n < 13)
		return PROXYPROTO_MORE;
	if (p[12] >> 4 != 2)
		return pp_invalid(reason, "version 2: version nibble is not 2");
	if ((p[12] & 0x0f) > 1)
		return pp_invalid(reason, "version 2: command is neither LOCAL nor PROXY");
	if (n < 14)
		return PROXYPROTO_MORE;
	if (p[13] >> 4 > 3)
		return pp_invalid(reason, "version 2: unknown address family");
	if ((p[13] & 0x0f) > 2)
		return pp_invalid(reason, "version 2: unknown transport protocol");
	if (n < 16)
		return PROXYPROTO_MORE;
	len = (size_t)p[14] << 8 | p[15];
	if (16 + len > PROXYPROTO_V2_MAX_LEN)
		return pp_invalid(reason, "version 2: header longer than 4096 bytes");
	if (n < 16 + len)
		return PROXYPROTO_MORE;
	if ((p[12] & 0x0f) == 0) {
		/* LOCAL: a health check from the balancer itself; the block is skipped. */
		memset(h, 0, sizeof(*h));
		h->version = 2;
		h->len = 16 + len;
		h->local = true;
		return PROXYPROTO_DONE;
	}
	return pp_v2_proxy(p, len, h, reason);
}

enum proxyproto_status
proxyproto_parse(const void *buf, size_t n, struct proxyproto_header *h, const char **reason)
{
	const uint8_t *p = buf;

	if (n == 0)
		return PROXYPROTO_MORE;
	if (p[0] == 'P')
		return pp_v1(p, n, h, reason);
	if (p[0] == pp_v2_signature[0])
		return pp_v2(p, n, h, reason);
	return pp_invalid(reason, PP_NOT_PROXY);
}
