/*
 * chunked.c: chunked body decoding (chunked.h).  An llhttp response parser
 * is fed a fixed head that announces a chunked body, so that what follows
 * is parsed by llhttp's own chunk grammar, strict as for any message; its
 * body callback appends the data.
 */
#include <string.h>

#include <event2/buffer.h>

#include "portico/chunked.h"

static const char preamble[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
	struct chunked *c = p->data;

	c->total += len;
	evbuffer_add(c->out, at, len);
	return 0;
}

static int
on_message_complete(llhttp_t *p)
{
	struct chunked *c = p->data;

	c->done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void
chunked_init(struct chunked *c)
{
	memset(c, 0, sizeof(*c));
	llhttp_init(&c->parser, HTTP_RESPONSE, &settings);
	c->parser.data = c;
	/* Cannot fail: the parser now expects the first chunk size. */
	llhttp_execute(&c->parser, preamble, sizeof(preamble) - 1);
}

enum chunked_result
chunked_decode_bytes(struct chunked *c, const char *p, size_t len, struct evbuffer *out,
		     size_t *used)
{
	llhttp_errno_t err;

	*used = 0;
	if (c->done)
		return CHUNKED_DONE;
	c->out = out;
	err = llhttp_execute(&c->parser, p, len);
	c->out = NULL;
	if (err == HPE_OK) {
		*used = len;
		return CHUNKED_MORE;
	}
	if (err == HPE_PAUSED && c->done) {
		*used = (size_t)(llhttp_get_error_pos(&c->parser) - p);
		return CHUNKED_DONE;
	}
	return CHUNKED_ERROR;
}

enum chunked_result
chunked_decode(struct chunked *c, struct evbuffer *in, struct evbuffer *out)
{
	enum chunked_result r = CHUNKED_MORE;
	struct evbuffer_iovec v[4];
	size_t consumed, used;
	int n;

	while (r == CHUNKED_MORE && evbuffer_get_length(in) > 0) {
		n = evbuffer_peek(in, -1, NULL, v, 4);
		consumed = 0;
		for (int i = 0; i < n && i < 4 && r == CHUNKED_MORE; i++) {
			r = chunked_decode_bytes(c, v[i].iov_base, v[i].iov_len, out, &used);
			consumed += used;
		}
		evbuffer_drain(in, consumed);
	}
	return r;
}

const char *
chunked_error(const struct chunked *c)
{
	return llhttp_errno_name(llhttp_get_errno(&c->parser));
}
