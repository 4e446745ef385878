/*
 * fuzz_proxyproto.c: proxyproto_parse() on arbitrary bytes, fed as a
 * connection would deliver them: in one piece, and split in two at every
 * point (the caller parses what it has after each read).  Checked on every
 * input: a split never changes the outcome (status, header bytes, addresses,
 * reason); a prefix shorter than a complete header asks for more; once a
 * prefix is refused, so is every longer one; a header never claims bytes it
 * was not given, nor more than the protocol's bound; a version 1 header ends
 * in CRLF; carried addresses are IPv4 or IPv6, both of the same family.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/proxyproto.h"

struct outcome {
	enum proxyproto_status st;
	struct proxyproto_header h;
	const char *reason;
};

static void
parse(const uint8_t *data, size_t n, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->st = proxyproto_parse(data, n, &o->h, &o->reason);
}

static void
check_same(const struct outcome *a, const struct outcome *b)
{
	if (a->st != b->st)
		abort();
	if (a->st == PROXYPROTO_DONE && memcmp(&a->h, &b->h, sizeof(a->h)) != 0)
		abort();
	if (a->st == PROXYPROTO_INVALID && a->reason != b->reason)
		abort();
}

static void
check_header(const uint8_t *data, size_t size, const struct outcome *o)
{
	const struct proxyproto_header *h = &o->h;

	if (o->st == PROXYPROTO_INVALID && o->reason == NULL)
		abort();
	if (o->st != PROXYPROTO_DONE)
		return;
	if (h->len == 0 || h->len > size || h->len > PROXYPROTO_MAX_LEN)
		abort();
	if (h->version == 1 && (h->len > PROXYPROTO_V1_MAX_LEN || h->len < 8 ||
				memcmp(data + h->len - 2, "\r\n", 2) != 0))
		abort();
	if (h->version != 1 && (h->version != 2 || h->len < 16))
		abort();
	if (h->local && (h->src.ss_family != 0 || h->dst.ss_family != 0))
		abort();
	if (!h->local && ((h->src.ss_family != AF_INET && h->src.ss_family != AF_INET6) ||
			  h->src.ss_family != h->dst.ss_family))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Beyond the bound plus one byte every answer is final. */
	size_t limit = size < PROXYPROTO_MAX_LEN + 1 ? size : PROXYPROTO_MAX_LEN + 1;
	struct outcome whole, first, second;
	bool refused = false;

	parse(data, size, &whole);
	check_header(data, size, &whole);
	for (size_t k = 0; k <= limit; k++) {
		/* First read: k bytes.  A final answer must be the whole input's. */
		parse(data, k, &first);
		check_header(data, k, &first);
		if (first.st == PROXYPROTO_MORE) {
			if (refused)
				abort();
			if (whole.st == PROXYPROTO_DONE && k >= whole.h.len)
				abort();
			/* Second read: the rest arrives. */
			parse(data, size, &second);
			check_same(&second, &whole);
			continue;
		}
		refused = first.st == PROXYPROTO_INVALID;
		check_same(&first, &whole);
	}
	return 0;
}
