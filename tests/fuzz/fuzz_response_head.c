/*
 * fuzz_response_head.c: upstream response heads (head.h), checked and
 * framed, on arbitrary bytes.  The first byte chooses where the input is
 * split in two reads and whether the request was HEAD; the verdict must not
 * depend on the split.  Invariants: a refusal is a 502 with a reason; an
 * accepted head has a status from 100 to 599, fields inside the head and
 * valid, and a body framing that agrees with its fields.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/head.h"

#define LIMIT 8192

struct verdict {
	enum head_result r;
	int status;
	size_t len;
	int framing;
};

static struct verdict
parse(struct head *h, const uint8_t *data, size_t size, size_t split, bool head_request)
{
	struct evbuffer *in = evbuffer_new();
	struct verdict v = {0};

	head_reset(h, HEAD_RESPONSE);
	evbuffer_add(in, data, split);
	v.r = head_feed(h, in, LIMIT, 0);
	if (v.r == HEAD_MORE) {
		evbuffer_add(in, data + split, size - split);
		v.r = head_feed(h, in, LIMIT, 0);
	}
	if (v.r == HEAD_DONE && (v.status = head_check_response(h)) == 0)
		v.framing = head_response_body(h, head_request);
	else if (v.r == HEAD_ERROR)
		v.status = h->error;
	v.len = h->bytes.len;
	evbuffer_free(in);
	return v;
}

static void
check_accepted(const struct head *h, bool head_request)
{
	const char *b = h->bytes.data;

	if (h->status < 100 || h->status > 599 || h->bytes.len > LIMIT)
		abort();
	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		if ((size_t)f->name + f->name_len > h->bytes.len ||
		    (size_t)f->value + f->value_len > h->bytes.len ||
		    !http_name_is_valid(b + f->name, f->name_len) ||
		    !http_value_is_valid(b + f->value, f->value_len))
			abort();
	}
	if ((head_request || h->status == 204 || h->status == 304) && h->body != HEAD_BODY_NONE)
		abort();
	if (h->body == HEAD_BODY_LENGTH && !h->framing.has_length)
		abort();
	if (h->body == HEAD_BODY_EOF && h->keep_alive)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct head a, b;
	struct verdict va, vb;
	bool head_request;

	if (size == 0)
		return 0;
	head_request = data[0] & 1;
	head_init(&a);
	head_init(&b);
	va = parse(&a, data + 1, size - 1, (size - 1) * (data[0] >> 1) / 128, head_request);
	vb = parse(&b, data + 1, size - 1, size - 1, head_request);
	if (va.r != vb.r || va.status != vb.status || va.framing != vb.framing ||
	    (va.r == HEAD_DONE && va.len != vb.len))
		abort();
	if (va.status != 0 && (va.status != 502 || a.why == NULL))
		abort();
	if (va.r == HEAD_DONE && va.status == 0 && va.framing == 0)
		check_accepted(&a, head_request);
	head_free(&a);
	head_free(&b);
	return 0;
}
