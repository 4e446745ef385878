/*
 * bodyfilter.h: deciding whether a response body is rewritten (SPEC
 * section 6.3) and building its filter chain: decode (gzip/deflate) ->
 * HTML rewrite -> encode (gzip), each stage only when needed.  Also the
 * header helpers the caller needs for the headers that change with it.
 * The plumbing the filters share lives in filterchain.h.
 */
#ifndef PORTICO_BODYFILTER_H
#define PORTICO_BODYFILTER_H

#include <stdbool.h>
#include <stddef.h>

#include "portico/filter.h"
#include "portico/route.h"
#include "portico/util.h"

struct evbuffer;

/*
 * What to do with the response when res->filter is not NULL.  The caller:
 *   - installs res->filter as the body filter (req->filter) and, when done
 *     with the response, calls res->filter->ops->free(res->filter) once,
 *     which frees the whole chain;
 *   - removes Content-Length and re-frames the body (chunked for HTTP/1.1
 *     clients, close-delimited for HTTP/1.0), since its length changes;
 *   - removes every Content-Encoding header, then adds
 *     "Content-Encoding: gzip" when res->content_encoding is "gzip";
 *   - replaces a strong ETag by its weak form (bodyfilter_weaken_etag);
 *   - removes Accept-Ranges (byte ranges of the rewritten body are not
 *     those of the upstream's);
 *   - when res->vary_accept_encoding, makes Vary list Accept-Encoding
 *     (bodyfilter_vary_merge; adds "Vary: Accept-Encoding" when absent).
 * When res->filter is NULL every header and the body pass untouched.
 *
 * The chain appends plain body bytes to the evbuffer given to write() and
 * finish(): the caller frames them (a chunk per call when chunked), and
 * sends the last chunk only after finish() returned 0.  A -1 from write()
 * or finish() (corrupt or truncated compressed body) means the body cannot
 * be completed: close the client connection without the last chunk.
 */
struct bodyfilter_result {
	struct filter *filter;	      /* the chain's head, or NULL: nothing to do */
	const char *content_encoding; /* "gzip", or NULL: no Content-Encoding */
	bool drop_content_length;     /* always true with a filter */
	bool weaken_etag;	      /* always true with a filter */
	bool drop_accept_ranges;      /* always true with a filter */
	bool vary_accept_encoding;    /* the encoding sent depends on Accept-Encoding */
};

/*
 * Called once the upstream response head is parsed, for a response that
 * has a body (not HEAD, 1xx, 204, 304) and is not a 206 (a byte range of
 * a page cannot be rewritten: it passes untouched).  `r` is the
 * route; `content_type` and `content_encoding` are the header values
 * (NULL or length 0 when absent; several Content-Encoding headers joined
 * with ", "), `client_accepts_gzip` is bodyfilter_accepts_gzip() of the
 * request's Accept-Encoding.  Filters when the route has html with at
 * least one map, the type is text/html or application/xhtml+xml (any
 * case, parameters allowed) and the coding is absent, identity, gzip,
 * x-gzip or deflate (anything else, several codings included, passes
 * untouched).  Fills `res` (see above).  Returns 0; res->filter is NULL
 * when nothing applies.
 */
int bodyfilter_setup(const struct route *r, const char *content_type, size_t ctlen,
		     const char *content_encoding, size_t celen, bool client_accepts_gzip,
		     struct bodyfilter_result *res);

/*
 * The same decision without building the chain (res->filter stays NULL):
 * for a HEAD request or a 304, whose headers should say what the body of a
 * GET would be.  True when the headers change as described above.
 */
bool bodyfilter_headers(const struct route *r, const char *content_type, size_t ctlen,
			const char *content_encoding, size_t celen, bool client_accepts_gzip,
			struct bodyfilter_result *res);

/*
 * For the request toward the upstream on a route with html: appends to
 * `out` the client's Accept-Encoding (`v`, NULL when absent) keeping only
 * the codings the body filters can decode (gzip, x-gzip, deflate, identity,
 * with their parameters), so that an HTML answer never comes in a coding
 * that would have to pass unrewritten (br, zstd...), and a non-HTML answer
 * is still in a coding the client accepts.  False when nothing is left:
 * then send no Accept-Encoding (the upstream answers identity).
 */
bool bodyfilter_upstream_accept_encoding(const char *v, size_t len, struct buf *out);

/* True when the type (before any ";") is text/html or application/xhtml+xml. */
bool bodyfilter_is_html(const char *content_type, size_t len);

/*
 * True when an Accept-Encoding value accepts gzip: "gzip" or "x-gzip"
 * listed with q > 0, or else "*" with q > 0.  q=0 refuses.  NULL: false.
 */
bool bodyfilter_accepts_gzip(const char *accept_encoding, size_t len);

/*
 * Appends to `out` the ETag value to send: `"abc"` becomes `W/"abc"`; a
 * weak or malformed value is appended unchanged.  True when it changed.
 */
bool bodyfilter_weaken_etag(const char *v, size_t len, struct buf *out);

/*
 * Appends to `out` the Vary value to send given the upstream's (`v`, NULL
 * when absent): "Accept-Encoding" when absent or empty, unchanged when it
 * is "*" or already lists Accept-Encoding, else `v` + ", Accept-Encoding".
 * True when it changed.
 */
bool bodyfilter_vary_merge(const char *v, size_t len, struct buf *out);

#endif
