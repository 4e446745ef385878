/*
 * http.c: pure HTTP/1.1 helpers (byte classes, special headers, Connection
 * lists, framing decisions, reason phrases, request ids).
 */
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "portico/http.h"
#include "portico/util.h"

/* RFC 9110 tchar: ALPHA, DIGIT and "!#$%&'*+-.^_`|~". */
const uint8_t http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Word-at-a-time helpers: a byte of `x` below `n` (n <= 128), or equal to `c`. */
#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t
word_has_less(uint64_t x, unsigned n)
{
	return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t
word_has_byte(uint64_t x, unsigned c)
{
	return word_has_less(x ^ (ONES * c), 1);
}

static inline uint64_t
word_load(const char *p)
{
	uint64_t x;

	memcpy(&x, p, sizeof(x));
	return x;
}

bool
http_is_tchar(unsigned char c)
{
	return http_tchar[c] != 0;
}

bool
http_name_is_valid(const char *p, size_t len)
{
	unsigned ok = 1;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		ok &= http_tchar[(unsigned char)p[i]];
	return ok != 0;
}

static bool
value_bytes_ok(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

bool
http_value_is_valid(const char *p, size_t len)
{
	size_t i = 0;

	if (len < 8)
		return value_bytes_ok(p, len);
	/*
	 * Eight bytes at a time, the last word overlapping the one before; a
	 * word with a control byte (or a tab) is checked bytewise.
	 */
	for (;;) {
		uint64_t x = word_load(p + i);

		if ((word_has_less(x, 0x20) | word_has_byte(x, 0x7f)) && !value_bytes_ok(p + i, 8))
			return false;
		if (i + 8 == len)
			return true;
		i = i + 16 <= len ? i + 8 : len - 8;
	}
}

/* reg-name bytes (RFC 3986 unreserved and sub-delims; no percent-encoding). */
static const uint8_t host_char[256] = {
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1, ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1,
    ['('] = 1, [')'] = 1, ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool
port_ok(const char *p, size_t len)
{
	if (len > 5)
		return false;
	for (size_t i = 0; i < len; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

static bool
all_digits(const char *p, size_t len, bool hex)
{
	for (size_t i = 0; i < len; i++)
		if (hex ? hex_value((unsigned char)p[i]) < 0 : p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/*
 * Whether a reg-name's last label is a number (decimal, or 0x hex): then
 * resolvers read the whole name as an IPv4 address in one of its old forms
 * (017700000001, 0x7f.1, 127.1), so it must be exactly dotted decimal.
 */
static bool
ends_in_number(const char *p, size_t len)
{
	size_t start = len;
	const char *last;
	size_t n;

	while (start > 0 && p[start - 1] != '.')
		start--;
	last = p + start;
	n = len - start;

	if (n == 0)
		return false;
	if (n > 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X'))
		return all_digits(last + 2, n - 2, true);
	return all_digits(last, n, false);
}

/* Four decimal labels 0-255, no leading zero. */
static bool
ipv4_strict(const char *p, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		size_t start = i;
		unsigned v = 0;

		while (i < len && p[i] >= '0' && p[i] <= '9' && i - start < 3)
			v = v * 10 + (unsigned)(p[i++] - '0');
		if (i == start || v > 255 || (p[start] == '0' && i - start > 1))
			return false;
		if (part < 3 && (i == len || p[i++] != '.'))
			return false;
	}
	return i == len;
}

static bool
ipv6_ok(const char *p, size_t len)
{
	char tmp[INET6_ADDRSTRLEN];
	struct in6_addr a;

	if (len == 0 || len >= sizeof(tmp))
		return false;
	memcpy(tmp, p, len);
	tmp[len] = '\0';
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

bool
http_host_is_valid(const char *p, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return false;
	if (p[0] == '[') {
		const char *e = memchr(p, ']', len);

		if (e == NULL || !ipv6_ok(p + 1, (size_t)(e - p) - 1))
			return false;
		i = (size_t)(e - p) + 1;
	} else {
		while (i < len && host_char[(unsigned char)p[i]])
			i++;
		if (i == 0 || (ends_in_number(p, i) && !ipv4_strict(p, i)))
			return false;
	}
	if (i == len)
		return true;
	if (p[i] != ':')
		return false;
	return port_ok(p + i + 1, len - i - 1);
}

size_t
http_host_strip_port(const char *p, size_t len)
{
	if (len > 0 && p[0] == '[') {
		const char *e = memchr(p, ']', len);

		return e ? (size_t)(e - p) + 1 : len;
	}
	const char *colon = memchr(p, ':', len);

	return colon ? (size_t)(colon - p) : len;
}

int
http_target_split(const char *t, size_t len, const char **auth, size_t *alen, const char **rest,
		  size_t *rlen)
{
	size_t skip, end;

	*auth = NULL;
	*alen = 0;
	*rest = t;
	*rlen = len;
	if (len > 0 && t[0] == '/')
		return 0;
	if (ascii_has_prefix_case(t, len, "http://"))
		skip = 7;
	else if (ascii_has_prefix_case(t, len, "https://"))
		skip = 8;
	else
		return -1;
	for (end = skip; end < len && t[end] != '/' && t[end] != '?'; end++)
		;
	if (!http_host_is_valid(t + skip, end - skip))
		return -1;
	*auth = t + skip;
	*alen = end - skip;
	*rest = t + end;
	*rlen = len - end;
	return 1;
}

/* Lower-case header names by id. */
static const char *const header_names[] = {
    [HTTP_HDR_HOST] = "host",
    [HTTP_HDR_CONTENT_LENGTH] = "content-length",
    [HTTP_HDR_TRANSFER_ENCODING] = "transfer-encoding",
    [HTTP_HDR_CONNECTION] = "connection",
    [HTTP_HDR_KEEP_ALIVE] = "keep-alive",
    [HTTP_HDR_PROXY_CONNECTION] = "proxy-connection",
    [HTTP_HDR_TE] = "te",
    [HTTP_HDR_TRAILER] = "trailer",
    [HTTP_HDR_UPGRADE] = "upgrade",
    [HTTP_HDR_PROXY_AUTHORIZATION] = "proxy-authorization",
    [HTTP_HDR_EXPECT] = "expect",
    [HTTP_HDR_X_FORWARDED_FOR] = "x-forwarded-for",
    [HTTP_HDR_X_FORWARDED_HOST] = "x-forwarded-host",
    [HTTP_HDR_X_FORWARDED_PROTO] = "x-forwarded-proto",
    [HTTP_HDR_FORWARDED] = "forwarded",
    [HTTP_HDR_VIA] = "via",
    [HTTP_HDR_REFERER] = "referer",
    [HTTP_HDR_USER_AGENT] = "user-agent",
    [HTTP_HDR_ACCEPT_ENCODING] = "accept-encoding",
    [HTTP_HDR_CONTENT_TYPE] = "content-type",
    [HTTP_HDR_CONTENT_ENCODING] = "content-encoding",
    [HTTP_HDR_ETAG] = "etag",
    [HTTP_HDR_ACCEPT_RANGES] = "accept-ranges",
    [HTTP_HDR_VARY] = "vary",
    [HTTP_HDR_LOCATION] = "location",
    [HTTP_HDR_CONTENT_LOCATION] = "content-location",
    [HTTP_HDR_URI] = "uri",
    [HTTP_HDR_DESTINATION] = "destination",
    [HTTP_HDR_REFRESH] = "refresh",
    [HTTP_HDR_LINK] = "link",
    [HTTP_HDR_SET_COOKIE] = "set-cookie",
};

static const uint8_t header_len[] = {
    [HTTP_HDR_HOST] = 4,
    [HTTP_HDR_CONTENT_LENGTH] = 14,
    [HTTP_HDR_TRANSFER_ENCODING] = 17,
    [HTTP_HDR_CONNECTION] = 10,
    [HTTP_HDR_KEEP_ALIVE] = 10,
    [HTTP_HDR_PROXY_CONNECTION] = 16,
    [HTTP_HDR_TE] = 2,
    [HTTP_HDR_TRAILER] = 7,
    [HTTP_HDR_UPGRADE] = 7,
    [HTTP_HDR_PROXY_AUTHORIZATION] = 19,
    [HTTP_HDR_EXPECT] = 6,
    [HTTP_HDR_X_FORWARDED_FOR] = 15,
    [HTTP_HDR_X_FORWARDED_HOST] = 16,
    [HTTP_HDR_X_FORWARDED_PROTO] = 17,
    [HTTP_HDR_FORWARDED] = 9,
    [HTTP_HDR_VIA] = 3,
    [HTTP_HDR_REFERER] = 7,
    [HTTP_HDR_USER_AGENT] = 10,
    [HTTP_HDR_ACCEPT_ENCODING] = 15,
    [HTTP_HDR_CONTENT_TYPE] = 12,
    [HTTP_HDR_CONTENT_ENCODING] = 16,
    [HTTP_HDR_ETAG] = 4,
    [HTTP_HDR_ACCEPT_RANGES] = 13,
    [HTTP_HDR_VARY] = 4,
    [HTTP_HDR_LOCATION] = 8,
    [HTTP_HDR_CONTENT_LOCATION] = 16,
    [HTTP_HDR_URI] = 3,
    [HTTP_HDR_DESTINATION] = 11,
    [HTTP_HDR_REFRESH] = 7,
    [HTTP_HDR_LINK] = 4,
    [HTTP_HDR_SET_COOKIE] = 10,
};

/*
 * One slot per name, by its length and its first and last letters; no two
 * names share a slot (a duplicate initializer is a -Woverride-init error).
 * Slot 0's HTTP_HDR_OTHER fills the rest.
 */
#define HDR_MAXLEN		   19
#define HDR_SLOT(len, first, last) (((len) + (first)*2u + (last)*23u) & 127u)
static const uint8_t header_slot[128] = {
    [HDR_SLOT(4, 'h', 't')] = HTTP_HDR_HOST,
    [HDR_SLOT(14, 'c', 'h')] = HTTP_HDR_CONTENT_LENGTH,
    [HDR_SLOT(17, 't', 'g')] = HTTP_HDR_TRANSFER_ENCODING,
    [HDR_SLOT(10, 'c', 'n')] = HTTP_HDR_CONNECTION,
    [HDR_SLOT(10, 'k', 'e')] = HTTP_HDR_KEEP_ALIVE,
    [HDR_SLOT(16, 'p', 'n')] = HTTP_HDR_PROXY_CONNECTION,
    [HDR_SLOT(2, 't', 'e')] = HTTP_HDR_TE,
    [HDR_SLOT(7, 't', 'r')] = HTTP_HDR_TRAILER,
    [HDR_SLOT(7, 'u', 'e')] = HTTP_HDR_UPGRADE,
    [HDR_SLOT(19, 'p', 'n')] = HTTP_HDR_PROXY_AUTHORIZATION,
    [HDR_SLOT(6, 'e', 't')] = HTTP_HDR_EXPECT,
    [HDR_SLOT(15, 'x', 'r')] = HTTP_HDR_X_FORWARDED_FOR,
    [HDR_SLOT(16, 'x', 't')] = HTTP_HDR_X_FORWARDED_HOST,
    [HDR_SLOT(17, 'x', 'o')] = HTTP_HDR_X_FORWARDED_PROTO,
    [HDR_SLOT(9, 'f', 'd')] = HTTP_HDR_FORWARDED,
    [HDR_SLOT(3, 'v', 'a')] = HTTP_HDR_VIA,
    [HDR_SLOT(7, 'r', 'r')] = HTTP_HDR_REFERER,
    [HDR_SLOT(10, 'u', 't')] = HTTP_HDR_USER_AGENT,
    [HDR_SLOT(15, 'a', 'g')] = HTTP_HDR_ACCEPT_ENCODING,
    [HDR_SLOT(12, 'c', 'e')] = HTTP_HDR_CONTENT_TYPE,
    [HDR_SLOT(16, 'c', 'g')] = HTTP_HDR_CONTENT_ENCODING,
    [HDR_SLOT(4, 'e', 'g')] = HTTP_HDR_ETAG,
    [HDR_SLOT(13, 'a', 's')] = HTTP_HDR_ACCEPT_RANGES,
    [HDR_SLOT(4, 'v', 'y')] = HTTP_HDR_VARY,
    [HDR_SLOT(8, 'l', 'n')] = HTTP_HDR_LOCATION,
    [HDR_SLOT(16, 'c', 'n')] = HTTP_HDR_CONTENT_LOCATION,
    [HDR_SLOT(3, 'u', 'i')] = HTTP_HDR_URI,
    [HDR_SLOT(11, 'd', 'n')] = HTTP_HDR_DESTINATION,
    [HDR_SLOT(7, 'r', 'h')] = HTTP_HDR_REFRESH,
    [HDR_SLOT(4, 'l', 'k')] = HTTP_HDR_LINK,
    [HDR_SLOT(10, 's', 'e')] = HTTP_HDR_SET_COOKIE,
};

static inline unsigned char
lower(unsigned char c)
{
	return (unsigned char)(c + ((unsigned)(c - 'A') < 26u ? 0x20 : 0));
}

static inline bool
word32_has_cr(uint32_t x)
{
	x ^= 0x0d0d0d0du;
	return ((x - 0x01010101u) & ~x & 0x80808080u) != 0;
}

/*
 * `name` (any case) against the lower-case `want` (letters and '-') of the
 * same length.  From four bytes on, a word at a time: OR-ing 0x20 maps only
 * a letter's two cases onto the lower one, and CR onto '-', so a word with
 * a CR is never equal.
 */
static bool
name_eq_lower(const char *name, const char *want, size_t len)
{
	const uint64_t lc = ONES * 0x20;
	size_t i = 0;

	if (len >= 4 && len < 8) {
		/* Two four-byte words, overlapping when len < 8. */
		uint32_t a, b, wa, wb;

		memcpy(&a, name, 4);
		memcpy(&b, name + len - 4, 4);
		memcpy(&wa, want, 4);
		memcpy(&wb, want + len - 4, 4);
		return (a | 0x20202020u) == wa && (b | 0x20202020u) == wb && !word32_has_cr(a) &&
		       !word32_has_cr(b);
	}
	if (len < 8) {
		for (; i < len; i++)
			if (lower((unsigned char)name[i]) != (unsigned char)want[i])
				return false;
		return true;
	}
	for (;;) {
		uint64_t x = word_load(name + i);

		if ((x | lc) != word_load(want + i) || word_has_byte(x, '\r'))
			return false;
		if (i + 8 == len)
			return true;
		i = i + 16 <= len ? i + 8 : len - 8;
	}
}

enum http_hdr
http_header_id(const char *name, size_t len)
{
	unsigned id;

	if (len < 2 || len > HDR_MAXLEN)
		return HTTP_HDR_OTHER;
	id = header_slot[HDR_SLOT(len, (unsigned char)name[0] | 0x20u,
				  (unsigned char)name[len - 1] | 0x20u)];
	if (id == HTTP_HDR_OTHER || header_len[id] != len ||
	    !name_eq_lower(name, header_names[id], len))
		return HTTP_HDR_OTHER;
	return (enum http_hdr)id;
}

bool
http_header_is_hop_by_hop(enum http_hdr id)
{
	switch (id) {
	case HTTP_HDR_CONNECTION:
	case HTTP_HDR_KEEP_ALIVE:
	case HTTP_HDR_PROXY_CONNECTION:
	case HTTP_HDR_TE:
	case HTTP_HDR_TRAILER:
	case HTTP_HDR_TRANSFER_ENCODING:
	case HTTP_HDR_UPGRADE:
	case HTTP_HDR_PROXY_AUTHORIZATION:
		return true;
	default:
		return false;
	}
}

static bool
is_ows(char c)
{
	return c == ' ' || c == '\t';
}

bool
http_list_next(const char *v, size_t len, size_t *pos, const char **tok, size_t *toklen)
{
	size_t i = *pos;

	while (i < len) {
		size_t start, end;

		while (i < len && (is_ows(v[i]) || v[i] == ','))
			i++;
		start = i;
		while (i < len && v[i] != ',')
			i++;
		end = i;
		while (end > start && is_ows(v[end - 1]))
			end--;
		if (end > start) {
			*tok = v + start;
			*toklen = end - start;
			*pos = i;
			return true;
		}
	}
	*pos = len;
	return false;
}

bool
http_list_has(const char *v, size_t len, const char *token)
{
	size_t pos = 0, tlen = strlen(token), n;
	const char *t;

	while (http_list_next(v, len, &pos, &t, &n))
		if (ascii_casecmp_eq(t, n, token, tlen))
			return true;
	return false;
}

unsigned
http_connection_flags(const char *v, size_t len)
{
	size_t pos = 0, n;
	const char *t;
	unsigned flags = 0;

	/* The usual values, alone in the field. */
	if (len == 10 && name_eq_lower(v, "keep-alive", 10))
		return HTTP_CONN_KEEP_ALIVE;
	if (len == 5 && name_eq_lower(v, "close", 5))
		return HTTP_CONN_CLOSE;
	while (http_list_next(v, len, &pos, &t, &n)) {
		if (ascii_casecmp_eq(t, n, "close", 5))
			flags |= HTTP_CONN_CLOSE;
		else if (ascii_casecmp_eq(t, n, "keep-alive", 10))
			flags |= HTTP_CONN_KEEP_ALIVE;
		else if (ascii_casecmp_eq(t, n, "upgrade", 7))
			flags |= HTTP_CONN_UPGRADE;
		else
			flags |= HTTP_CONN_OTHER;
	}
	return flags;
}

int
http_parse_length(const char *v, size_t len, uint64_t *out)
{
	uint64_t n = 0;

	if (len == 0 || len > 19)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*out = n;
	return 0;
}

void
http_framing_add_length(struct http_framing *f, const char *v, size_t len)
{
	uint64_t value;

	/*
	 * One header with one value, digits only, as llhttp in strict mode
	 * wants: a repeated Content-Length, or a list ("3, 3"), is refused
	 * even when the values agree.  `v` has no surrounding whitespace.
	 */
	if (f->has_length || http_parse_length(v, len, &value) == -1) {
		f->bad = true;
		return;
	}
	f->has_length = true;
	f->length = value;
}

/*
 * Transfer-Encoding: exactly one field saying exactly "chunked" (any case,
 * the value trimmed).  A list, even one whose other elements are empty
 * ("chunked ,"), is refused: parsers disagree on such lists, and a
 * disagreement on framing is a smuggled request.
 */
void
http_framing_add_te(struct http_framing *f, const char *v, size_t len)
{
	if (f->has_te || len != 7 || !ascii_casecmp_eq(v, len, "chunked", 7))
		f->bad = true;
	f->has_te = true;
	f->chunked = !f->bad;
}

enum http_framing_verdict
http_framing_check(const struct http_framing *f)
{
	if (f->bad || (f->has_te && f->has_length))
		return HTTP_FRAMING_INVALID;
	if (f->has_te)
		return f->chunked ? HTTP_FRAMING_CHUNKED : HTTP_FRAMING_INVALID;
	if (f->has_length)
		return HTTP_FRAMING_LENGTH;
	return HTTP_FRAMING_NONE;
}

const char *
http_head_scan(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		/*
		 * Jump to the next byte below 0x0e (CR, LF and NUL are): the lowest
		 * flagged byte of a word is exact (little-endian), later ones may not be.
		 */
		while (i + 8 <= len) {
			uint64_t m = word_has_less(word_load(p + i), 0x0e);

			if (m != 0) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				i += (size_t)__builtin_ctzll(m) / 8;
#endif
				break;
			}
			i += 8;
		}
		if (i >= len)
			break;
		switch (p[i]) {
		case '\r':
			if (i + 1 == len || p[i + 1] != '\n')
				return "bare CR";
			if (i + 2 < len && (p[i + 2] == ' ' || p[i + 2] == '\t'))
				return "obs-fold";
			i++; /* the LF: every other LF is a bare one */
			break;
		case '\n':
			return "bare LF";
		case '\0':
			return "NUL in head";
		default:
			break;
		}
	}
	return NULL;
}

const char *
http_reason(int status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 101:
		return "Switching Protocols";
	case 103:
		return "Early Hints";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 206:
		return "Partial Content";
	case 301:
		return "Moved Permanently";
	case 302:
		return "Found";
	case 303:
		return "See Other";
	case 304:
		return "Not Modified";
	case 307:
		return "Temporary Redirect";
	case 308:
		return "Permanent Redirect";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 417:
		return "Expectation Failed";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	default:
		return "Unknown";
	}
}

static const char hexdigits[] = "0123456789abcdef";

/* Every byte as two hex digits. */
static const char hex_pairs[513] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

void
http_reqid_format(char out[HTTP_REQID_LEN + 1], uint64_t v)
{
	for (int i = HTTP_REQID_LEN - 2; i >= 0; i -= 2) {
		memcpy(out + i, hex_pairs + 2 * (v & 0xff), 2);
		v >>= 8;
	}
	out[HTTP_REQID_LEN] = '\0';
}

size_t
http_hex(char *out, uint64_t v)
{
	char tmp[16];
	size_t n = 0;

	do {
		tmp[n++] = hexdigits[v & 0xf];
		v >>= 4;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
	return n;
}
