/*
 * filter.h: the response-body filter interface.  A filter takes body bytes
 * and appends what the client gets to an evbuffer; HTML rewriting and gzip
 * plug in here.  The plain path pays nothing: a request with no filter has
 * a NULL filter pointer and its body moves between evbuffers untouched.
 */
#ifndef PORTICO_FILTER_H
#define PORTICO_FILTER_H

#include <stddef.h>

struct evbuffer;

struct filter;

struct filter_ops {
	const char *name;
	/*
	 * Consumes `len` bytes of body and appends output to `out`.  Keeps at
	 * most a bounded carry-over between calls.  0, or -1 on a fatal error
	 * (the response is then cut).
	 */
	int (*write)(struct filter *f, const char *data, size_t len, struct evbuffer *out);
	/* End of the body: flushes the carry-over into `out`.  0 or -1. */
	int (*finish)(struct filter *f, struct evbuffer *out);
	void (*free)(struct filter *f);
};

struct filter {
	const struct filter_ops *ops;
	struct filter *next; /* the next filter in the chain, or NULL */
};

#endif
