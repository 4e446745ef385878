/*
 * filterchain.c: passing a filter's output down the response-body chain
 * (filterchain.h).  Which filters make up a chain is bodyfilter.c's
 * decision; this file only moves bytes from one stage to the next.
 */
#include <event2/buffer.h>

#include "portico/filterchain.h"

int
filterchain_forward(struct filter *f, const char *data, size_t len, struct evbuffer *out)
{
	if (len == 0)
		return 0;
	if (f->next != NULL)
		return f->next->ops->write(f->next, data, len, out);
	return evbuffer_add(out, data, len) == 0 ? 0 : -1;
}

int
filterchain_forward_finish(struct filter *f, struct evbuffer *out)
{
	return f->next != NULL ? f->next->ops->finish(f->next, out) : 0;
}

void
filterchain_free_next(struct filter *f)
{
	if (f->next != NULL)
		f->next->ops->free(f->next);
	f->next = NULL;
}
