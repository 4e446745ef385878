/*
 * filterchain.h: the plumbing every response-body filter (filter.h) uses to
 * pass its output down the chain: to the next filter, or into the evbuffer
 * the caller gave when it is the last one.  The filters include this, never
 * the chain selector (bodyfilter.h), so that calls run one way: the
 * exchange -> bodyfilter (builds the chain) -> the filters -> this.
 */
#ifndef PORTICO_FILTERCHAIN_H
#define PORTICO_FILTERCHAIN_H

#include <stddef.h>

#include "portico/filter.h"

struct evbuffer;

/* Passes output to f->next, or appends it to `out` when f is the last.  0 or -1. */
int filterchain_forward(struct filter *f, const char *data, size_t len, struct evbuffer *out);
/* Finishes f->next (0 when f is the last).  0 or -1. */
int filterchain_forward_finish(struct filter *f, struct evbuffer *out);
/* Frees f->next and what follows it. */
void filterchain_free_next(struct filter *f);

#endif
