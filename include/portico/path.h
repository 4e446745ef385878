/*
 * path.h: request path normalization (SPEC section 3) and percent-encoding.
 */
#ifndef PORTICO_PATH_H
#define PORTICO_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "portico/util.h"

/*
 * Normalizes the path of an origin-form request target (no query, no
 * fragment): decodes percent-encoded unreserved characters, upper-cases the
 * hex digits of the remaining escapes, resolves "." and ".." segments (RFC
 * 3986 section 5.2.4).  `out` must hold len + 1 bytes; the result is never
 * longer than the input and is NUL-terminated.  Returns 0, or -1 with *err
 * set to a static reason for a 400: not starting with "/", %2F, %5C, %00, an
 * invalid escape, a control byte, a raw "\", "#", or ".." above the root.
 */
int path_normalize(const char *in, size_t len, char *out, size_t *outlen, const char **err);

/*
 * Normalizes a routing rule's path as path_normalize() does a request's, so
 * that "/t%7Eu" becomes "/t~u", which requests for "/t%7Eu" are normalized
 * to.  A rule that could never match is refused: besides what
 * path_normalize() refuses, a space, a "?" and a "." or ".." segment
 * (requests reach routing with them resolved).  Returns 0, or -1 with *err
 * set and *off the byte offset in `in` where the problem starts.
 */
int path_normalize_rule(const char *in, size_t len, char *out, size_t *outlen, size_t *off,
			const char **err);

/*
 * Appends `len` bytes of `p` to `b`, percent-encoding every byte that is not
 * an RFC 3986 pchar, "/" (when keep_slash), or part of a valid "%XX" escape.
 */
void path_encode(struct buf *b, const char *p, size_t len, bool keep_slash);

/*
 * Appends `len` bytes of `p` to `b` as query data: every byte but the
 * unreserved ones, "!$'()*,:@/?" and valid "%XX" escapes is percent-encoded,
 * so "&", "=", "+", ";", space and "#" cannot split or end a parameter.
 */
void path_encode_query(struct buf *b, const char *p, size_t len);

/* True when byte c is an RFC 3986 pchar other than '%' (unreserved, sub-delims, ':', '@'). */
bool path_is_pchar(unsigned char c);

#endif
