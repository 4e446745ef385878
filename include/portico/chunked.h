/*
 * chunked.h: decoding a chunked message body (RFC 9112 section 7.1), for
 * request bodies from clients and response bodies from upstreams.  The
 * grammar is llhttp's in strict mode (chunk sizes, extensions, the last
 * chunk, trailer fields, which are checked and dropped), so a body is
 * accepted exactly when the request or response parser would accept it.
 *
 * A decoder streams: it keeps its state between calls, so the body may
 * arrive in any number of pieces and the output is the same however it is
 * split.  Data bytes are appended to the caller's evbuffer, which frames
 * them again as it needs (re-chunked toward an upstream or a client).
 */
#ifndef PORTICO_CHUNKED_H
#define PORTICO_CHUNKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

struct evbuffer;

struct chunked {
	llhttp_t parser;
	struct evbuffer *out; /* during chunked_decode() */
	uint64_t total;	      /* data bytes decoded so far */
	bool done;
};

enum chunked_result {
	CHUNKED_MORE,  /* everything given was consumed; the body goes on */
	CHUNKED_DONE,  /* the body ended (last chunk and trailers); what follows stays */
	CHUNKED_ERROR, /* malformed framing */
};

void chunked_init(struct chunked *c);
/*
 * Consumes `len` bytes of the body: appends the data to `out` and sets
 * *used to the bytes consumed (all of them unless the body ended inside).
 */
enum chunked_result chunked_decode_bytes(struct chunked *c, const char *p, size_t len,
					 struct evbuffer *out, size_t *used);
/* The same over what `in` holds; drains what it consumed. */
enum chunked_result chunked_decode(struct chunked *c, struct evbuffer *in, struct evbuffer *out);
/* Why the framing was refused (llhttp's error name). */
const char *chunked_error(const struct chunked *c);

#endif
