/*
 * path.c: request path normalization (SPEC section 3) and the
 * percent-encoding of paths sent upstream.
 *
 * Normalization runs in two passes over the caller's output buffer: first the
 * bytes and escapes are checked and unreserved escapes decoded (so "%2E"
 * counts as "."), then "." and ".." segments are removed in place.  Runs of
 * "/" are kept as they are: an empty segment is a segment like any other.
 */
#include <stdint.h>
#include <string.h>

#include "portico/path.h"

static const char hexdigits[] = "0123456789ABCDEF";

static bool
is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 pchar without escapes: unreserved, sub-delims, ':' and '@'. */
static const uint8_t pchar[256] = {
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,  ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,  ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1,  ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1,  ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1,  ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,  ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['0'] = 1, ['1'] = 1,  ['2'] = 1, ['3'] = 1,
    ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,  ['-'] = 1, ['.'] = 1,
    ['_'] = 1, ['~'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
    ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1, [':'] = 1,  ['@'] = 1};

bool
path_is_pchar(unsigned char c)
{
	return pchar[c] != 0;
}

/* True when p[i] starts a "%XX" escape with two hex digits inside len. */
static bool
is_escape(const char *p, size_t len, size_t i)
{
	return p[i] == '%' && i + 2 < len && hex_value((unsigned char)p[i + 1]) >= 0 &&
	       hex_value((unsigned char)p[i + 2]) >= 0;
}

/* Checks one escape at in[i] and writes its normalized form at out[*w]. */
static int
decode_escape(const char *in, size_t len, size_t i, char *out, size_t *w, const char **err)
{
	int v;

	if (!is_escape(in, len, i)) {
		*err = "invalid percent escape";
		return -1;
	}
	v = hex_value((unsigned char)in[i + 1]) * 16 + hex_value((unsigned char)in[i + 2]);
	if (v == 0 || v == '/' || v == '\\') {
		*err = v == 0	  ? "encoded NUL (%00) in path"
		       : v == '/' ? "encoded slash (%2F) in path"
				  : "encoded backslash (%5C) in path";
		return -1;
	}
	if (is_unreserved((unsigned char)v)) {
		out[(*w)++] = (char)v;
		return 0;
	}
	out[(*w)++] = '%';
	out[(*w)++] = hexdigits[v >> 4];
	out[(*w)++] = hexdigits[v & 15];
	return 0;
}

/* First pass: validates bytes and escapes, decodes unreserved escapes. */
static int
decode_path(const char *in, size_t len, char *out, size_t *outlen, const char **err)
{
	size_t w = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		size_t run = i;

		/* The usual bytes, copied as a run. */
		while (run < len && (pchar[(unsigned char)in[run]] || in[run] == '/'))
			run++;
		if (run > i) {
			memcpy(out + w, in + i, run - i);
			w += run - i;
			i = run - 1;
			continue;
		}
		if (c == '%') {
			if (decode_escape(in, len, i, out, &w, err) == -1)
				return -1;
			i += 2;
		} else if (c < 0x20 || c == 0x7f) {
			*err = "control byte in path";
			return -1;
		} else if (c == '\\') {
			/* Sent on as %5C, which is refused above: Windows upstreams split at it. */
			*err = "backslash in path";
			return -1;
		} else if (c == '#') {
			*err = "fragment (#) in path";
			return -1;
		} else {
			out[w++] = (char)c;
		}
	}
	*outlen = w;
	return 0;
}

static bool
is_dot(const char *s, size_t n)
{
	return n == 1 && s[0] == '.';
}

static bool
is_dotdot(const char *s, size_t n)
{
	return n == 2 && s[0] == '.' && s[1] == '.';
}

/*
 * Second pass, RFC 3986 section 5.2.4 in place: p[0..len) starts with "/";
 * each segment is "/" and the bytes up to the next "/".  A "." or ".." that is
 * the last segment leaves a trailing "/".  ".." with nothing left to remove
 * climbs above the root.
 */
static int
remove_dot_segments(char *p, size_t len, size_t *outlen, const char **err)
{
	size_t r = 0, w = 0;

	while (r < len) {
		size_t start = r + 1, end = start;

		while (end < len && p[end] != '/')
			end++;
		if (is_dotdot(p + start, end - start)) {
			if (w == 0) {
				*err = "path climbs above the root (..)";
				return -1;
			}
			while (p[--w] != '/')
				;
		} else if (!is_dot(p + start, end - start)) {
			memmove(p + w, p + r, end - r);
			w += end - r;
			r = end;
			continue;
		}
		if (end == len)
			p[w++] = '/';
		r = end;
	}
	*outlen = w;
	return 0;
}

int
path_normalize(const char *in, size_t len, char *out, size_t *outlen, const char **err)
{
	size_t n;

	if (len == 0 || in[0] != '/') {
		*err = "path does not start with /";
		goto fail;
	}
	if (decode_path(in, len, out, &n, err) == -1)
		goto fail;
	if (remove_dot_segments(out, n, &n, err) == -1)
		goto fail;
	out[n] = '\0';
	*outlen = n;
	return 0;
fail:
	out[0] = '\0';
	*outlen = 0;
	return -1;
}

/* A segment that is "." or ".." once "%2E" is decoded. */
static bool
is_dot_segment(const char *s, size_t n)
{
	size_t dots = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			dots++;
		} else if (s[i] == '%' && i + 2 < n && s[i + 1] == '2' &&
			   (s[i + 2] == 'E' || s[i + 2] == 'e')) {
			dots++;
			i += 2;
		} else {
			return false;
		}
	}
	return dots == 1 || dots == 2;
}

/* What a request path never holds raw, so that a rule holding it can never match. */
static const char *
rule_byte_reason(unsigned char c)
{
	if (c == ' ')
		return "a request path never holds a space (write %20)";
	if (c == '?')
		return "\"?\" starts the query, which rules never see";
	if (c == '#')
		return "a request path never holds a fragment (#)";
	if (c < 0x20 || c == 0x7f)
		return "a request path never holds a control byte";
	if (c == '\\')
		return "a request path never holds a backslash";
	return NULL;
}

int
path_normalize_rule(const char *in, size_t len, char *out, size_t *outlen, size_t *off,
		    const char **err)
{
	size_t seg = 1, w = 0;
	char scratch[3];

	*off = 0;
	if (len == 0 || in[0] != '/')
		return path_normalize(in, len, out, outlen, err); /* refused, with its reason */
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = i < len ? (unsigned char)in[i] : '/';

		*off = i;
		if (c == '/') {
			if (i > 0 && is_dot_segment(in + seg, i - seg)) {
				*off = seg;
				*err =
				    "request paths hold no \".\" or \"..\" segment once normalized";
				return -1;
			}
			seg = i + 1;
		} else if (c == '%') {
			w = 0;
			if (decode_escape(in, len, i, scratch, &w, err) == -1)
				return -1;
		} else if ((*err = rule_byte_reason(c)) != NULL) {
			return -1;
		}
	}
	*off = 0;
	return path_normalize(in, len, out, outlen, err);
}

void
path_encode(struct buf *b, const char *p, size_t len, bool keep_slash)
{
	size_t i = 0;

	buf_reserve(b, len);
	while (i < len) {
		size_t run = i;
		unsigned char c;

		/* A run of bytes that stay as they are, copied at once. */
		while (run < len && (pchar[(unsigned char)p[run]] ||
				     (p[run] == '/' && keep_slash) || is_escape(p, len, run)))
			run++;
		buf_add(b, p + i, run - i);
		if (run == len)
			break;
		c = (unsigned char)p[run];
		buf_addc(b, '%');
		buf_addc(b, hexdigits[c >> 4]);
		buf_addc(b, hexdigits[c & 15]);
		i = run + 1;
	}
}

void
path_encode_query(struct buf *b, const char *p, size_t len)
{
	buf_reserve(b, len);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (is_unreserved(c) || (c != '\0' && strchr("!$'()*,:@/?", c) != NULL) ||
		    is_escape(p, len, i)) {
			buf_addc(b, (char)c);
			continue;
		}
		buf_addc(b, '%');
		buf_addc(b, hexdigits[c >> 4]);
		buf_addc(b, hexdigits[c & 15]);
	}
}
