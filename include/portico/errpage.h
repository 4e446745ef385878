/*
 * errpage.h: the small HTML responses portico generates itself (SPEC
 * section 9): status, reason and request id.
 */
#ifndef PORTICO_ERRPAGE_H
#define PORTICO_ERRPAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct stream_field;

/*
 * Appends a complete response (head and body) to `out`.  `close` adds
 * "Connection: close"; `keep_alive_10` adds "Connection: keep-alive" for an
 * HTTP/1.0 client that asked for it.  `head_only` omits the body (HEAD).
 * Returns the number of body bytes.
 */
uint64_t errpage_write(struct evbuffer *out, int status, const char *reqid, bool close,
		       bool keep_alive_10, bool head_only);
/* The same with "Retry-After: `retry_after`" (seconds) when it is not 0 (a 503, SPEC 12). */
uint64_t errpage_write_retry(struct evbuffer *out, int status, const char *reqid, bool close,
			     bool keep_alive_10, bool head_only, unsigned retry_after);

/* The page's body for `status` into `out` (ERRPAGE_BODY_MAX bytes); its length. */
#define ERRPAGE_BODY_MAX 512
size_t errpage_body(char *out, size_t cap, int status, const char *reqid);

/*
 * The page's fields besides its framing, in `f` (ERRPAGE_FIELDS_MAX):
 * Content-Type, Cache-Control, X-Request-Id and, when `retry` is not
 * empty, Retry-After.  Returns how many; both protocols write these.
 */
#define ERRPAGE_FIELDS_MAX 4
size_t errpage_fields(struct stream_field *f, const char *reqid, const char *retry);

#endif
