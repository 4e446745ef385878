/*
 * fuzz_request_head.c: request heads (head.h) with the checks of SPEC
 * section 9, on arbitrary bytes.  The first byte chooses where the input is
 * split in two reads; the result must not depend on it.  Invariants on
 * every input: a verdict with a status and a reason when refused; fields
 * that lie inside the head; a head within its limit; and for an accepted
 * request a valid authority when there is one, an origin starting with "/"
 * (or empty), and framing that agrees with the fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/head.h"

#define LIMIT	   4096
#define MAX_FIELDS 32

struct verdict {
	enum head_result r;
	int status;
	size_t len;
	unsigned nfields;
};

static struct verdict
parse(struct head *h, const uint8_t *data, size_t size, size_t split)
{
	struct evbuffer *in = evbuffer_new();
	struct verdict v = {0};

	head_reset(h, HEAD_REQUEST);
	evbuffer_add(in, data, split);
	v.r = head_feed(h, in, LIMIT, MAX_FIELDS);
	if (v.r == HEAD_MORE) {
		evbuffer_add(in, data + split, size - split);
		v.r = head_feed(h, in, LIMIT, MAX_FIELDS);
	}
	if (v.r == HEAD_DONE)
		v.status = head_check_request(h);
	else if (v.r == HEAD_ERROR)
		v.status = h->error;
	v.len = h->bytes.len;
	v.nfields = h->nfields;
	evbuffer_free(in);
	return v;
}

static void
check_accepted(const struct head *h)
{
	const char *b = h->bytes.data;

	if (h->bytes.len > LIMIT || h->nfields > MAX_FIELDS || h->why != NULL)
		abort();
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		if ((size_t)f->name + f->name_len > h->bytes.len ||
		    (size_t)f->value + f->value_len > h->bytes.len ||
		    !http_name_is_valid(b + f->name, f->name_len) ||
		    !http_value_is_valid(b + f->value, f->value_len))
			abort();
	}
	if (h->authority_len > 0 && !http_host_is_valid(b + h->authority, h->authority_len))
		abort();
	if (h->origin_len > 0 && b[h->origin] != '/' && b[h->origin] != '?')
		abort();
	if (h->minor >= 1 && h->authority_len == 0)
		abort();
	if ((h->body == HEAD_BODY_CHUNKED) != (h->framing.has_te && !h->framing.has_length))
		abort();
	if (h->upgrade && h->body != HEAD_BODY_NONE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct head a, b;
	struct verdict va, vb;

	if (size == 0)
		return 0;
	head_init(&a);
	head_init(&b);
	va = parse(&a, data + 1, size - 1, (size - 1) * data[0] / 256);
	vb = parse(&b, data + 1, size - 1, size - 1);
	/* However the bytes arrive, the same verdict. */
	if (va.r != vb.r || va.status != vb.status ||
	    (va.r == HEAD_DONE && (va.len != vb.len || va.nfields != vb.nfields)))
		abort();
	if (va.r == HEAD_DONE && va.status == 0)
		check_accepted(&a);
	if (va.status != 0 &&
	    (a.why == NULL || (va.status != 400 && va.status != 405 && va.status != 414 &&
			       va.status != 431 && va.status != 501 && va.status != 505)))
		abort();
	head_free(&a);
	head_free(&b);
	return 0;
}
