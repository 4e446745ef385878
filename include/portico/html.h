/*
 * html.h: the streaming HTML URL rewriter (SPEC section 6.3,
 * ProxyHTMLURLMap), a response-body filter (filter.h).
 *
 * Only the values of URL-bearing attributes are rewritten: href, src,
 * action, formaction, poster, data (on <object>), cite, background,
 * longdesc, usemap, manifest, xlink:href, each candidate URL of srcset and
 * the url= part of <meta http-equiv="refresh" content=...>.  With
 * `extended`, url(...) and @import targets in <style> elements and style=""
 * attributes too.  A value is rewritten when it starts with a map's `from`
 * at a segment boundary (the next byte is the end, "/", "?" or "#", or
 * `from` ends with "/"); that prefix becomes `to`.  Maps are tried in order,
 * the first match wins.  Every other byte passes unchanged.
 *
 * The output does not depend on how the input is split into writes.  The
 * filter holds at most one tag split across writes (HTML_TAG_MAX bytes; a
 * longer tag passes through unchanged), one CSS statement of a <style>
 * element in extended mode (same limit) and, when another filter follows
 * it, a staging buffer for its output.  When it is the last filter, the
 * bytes it passes unchanged are copied once, span by span, straight from
 * its input into the output evbuffer.
 */
#ifndef PORTICO_HTML_H
#define PORTICO_HTML_H

#include <stdbool.h>
#include <stddef.h>

#include "portico/filter.h"
#include "portico/route.h"
#include "portico/util.h"

#define HTML_TAG_MAX (16 * 1024)
/* What html_filter_retained() never exceeds, whatever the input. */
#define HTML_RETAINED_MAX (8 * HTML_TAG_MAX)

/*
 * The maps compiled for matching, once per configuration snapshot and
 * shared, read-only, by every response of every worker.
 */
struct html_urlmap;

struct html_urlmap_entry {
	char *from, *to;
	size_t from_len, to_len;
};

/* Compiles `maps` (copied: they need not outlive it). */
struct html_urlmap *html_urlmap_new(const struct route_html_map *maps, size_t n);
void html_urlmap_free(struct html_urlmap *m);
/* The first map (in order) whose `from` starts `s` at a segment boundary, or NULL. */
const struct html_urlmap_entry *html_urlmap_match(const struct html_urlmap *m, const char *s,
						  size_t len);
/* True when no map can match anything (none, or every `from` empty). */
bool html_urlmap_is_empty(const struct html_urlmap *m);

/*
 * A filter rewriting with `map`, which must outlive the filter (the
 * snapshot the response holds keeps it).  Its output goes to the next
 * filter of the chain, or to the evbuffer given to write/finish when it is
 * the last.  free() releases the rest of the chain.
 */
struct filter *html_filter_new_shared(const struct html_urlmap *map, bool extended);

/* The same with its own compiled copy of `maps`. */
struct filter *html_filter_new(const struct route_html_map *maps, size_t n, bool extended);

/* Bytes of memory the filter keeps between writes (its buffers' capacity). */
size_t html_filter_retained(const struct filter *f);

/*
 * Appends to `out` the URL `s` rewritten by the first matching map, or `s`
 * unchanged.  True when a map matched.
 */
bool html_rewrite_url(const struct route_html_map *maps, size_t n, const char *s, size_t len,
		      struct buf *out);

#endif
