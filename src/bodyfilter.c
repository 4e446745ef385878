/*
 * bodyfilter.c: whether a response body is rewritten and with which chain
 * (SPEC section 6.3): decode -> html -> encode, each stage only when the
 * upstream's coding and the client's Accept-Encoding need it, and the
 * header values that change with it (ETag, Vary).  The filters pass their
 * output down the chain through filterchain.c, not through this file.
 */
#include <string.h>

#include "portico/bodyfilter.h"
#include "portico/gzip.h"
#include "portico/html.h"

enum bodyfilter_coding {
	CODING_IDENTITY,
	CODING_GZIP,
	CODING_DEFLATE,
	CODING_OTHER, /* not ours to decode: passed through */
};

static bool
bf_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Trims spaces and tabs around [*s, *s + *len). */
static void
bf_trim(const char **s, size_t *len)
{
	while (*len > 0 && bf_is_ows(**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && bf_is_ows((*s)[*len - 1]))
		(*len)--;
}

static bool
bf_eq(const char *s, size_t len, const char *word)
{
	return ascii_casecmp_eq(s, len, word, strlen(word));
}

bool
bodyfilter_is_html(const char *content_type, size_t len)
{
	const char *semi;

	if (content_type == NULL)
		return false;
	semi = memchr(content_type, ';', len);
	if (semi != NULL)
		len = (size_t)(semi - content_type);
	bf_trim(&content_type, &len);
	return bf_eq(content_type, len, "text/html") ||
	       bf_eq(content_type, len, "application/xhtml+xml");
}

static enum bodyfilter_coding
bf_coding(const char *v, size_t len)
{
	if (v == NULL)
		return CODING_IDENTITY;
	bf_trim(&v, &len);
	if (len == 0 || bf_eq(v, len, "identity"))
		return CODING_IDENTITY;
	if (bf_eq(v, len, "gzip") || bf_eq(v, len, "x-gzip"))
		return CODING_GZIP;
	if (bf_eq(v, len, "deflate"))
		return CODING_DEFLATE;
	return CODING_OTHER;
}

/*
 * Fills `res` but for its filter; the upstream's coding, or CODING_OTHER
 * when the body is not rewritten.
 */
static enum bodyfilter_coding
bf_decide(const struct route *r, const char *content_type, size_t ctlen,
	  const char *content_encoding, size_t celen, bool client_accepts_gzip,
	  struct bodyfilter_result *res)
{
	enum bodyfilter_coding coding = bf_coding(content_encoding, celen);

	memset(res, 0, sizeof(*res));
	if (r == NULL || !r->html || r->html_nmaps == 0 || coding == CODING_OTHER ||
	    !bodyfilter_is_html(content_type, ctlen))
		return CODING_OTHER;
	if (coding != CODING_IDENTITY) {
		res->vary_accept_encoding = true;
		if (client_accepts_gzip)
			res->content_encoding = "gzip";
	}
	res->drop_content_length = true;
	res->weaken_etag = true;
	res->drop_accept_ranges = true;
	return coding;
}

bool
bodyfilter_headers(const struct route *r, const char *content_type, size_t ctlen,
		   const char *content_encoding, size_t celen, bool client_accepts_gzip,
		   struct bodyfilter_result *res)
{
	return bf_decide(r, content_type, ctlen, content_encoding, celen, client_accepts_gzip,
			 res) != CODING_OTHER;
}

int
bodyfilter_setup(const struct route *r, const char *content_type, size_t ctlen,
		 const char *content_encoding, size_t celen, bool client_accepts_gzip,
		 struct bodyfilter_result *res)
{
	enum bodyfilter_coding coding;
	struct filter *html, *dec;

	coding =
	    bf_decide(r, content_type, ctlen, content_encoding, celen, client_accepts_gzip, res);
	if (coding == CODING_OTHER)
		return 0;
	/* The map compiled with the snapshot; a route built by hand has none yet. */
	if (r->html_urlmap != NULL)
		html = html_filter_new_shared(r->html_urlmap, r->html_extended);
	else
		html = html_filter_new(r->html_maps, r->html_nmaps, r->html_extended);
	res->filter = html;
	if (coding != CODING_IDENTITY) {
		dec = gzip_decoder_new();
		dec->next = html;
		res->filter = dec;
	}
	if (res->content_encoding != NULL)
		html->next = gzip_encoder_new(GZIP_LEVEL);
	return 0;
}

/* The q value of one Accept-Encoding element's parameters: false when q=0. */
static bool
bf_q_positive(const char *params, size_t len)
{
	const char *end = params + len, *semi;
	size_t n;

	while (params < end) {
		semi = memchr(params, ';', (size_t)(end - params));
		n = semi ? (size_t)(semi - params) : (size_t)(end - params);
		bf_trim(&params, &n);
		if (n >= 2 && ascii_lower(params[0]) == 'q' && params[1] == '=') {
			for (size_t i = 2; i < n; i++)
				if (params[i] >= '1' && params[i] <= '9')
					return true;
			return false;
		}
		params = semi ? semi + 1 : end;
	}
	return true;
}

/*
 * One Accept-Encoding element [v, v + n): -1 when it is not about gzip,
 * else 1 accepted or 0 refused (q=0); *star tells "*" apart.
 */
static int
bf_gzip_element(const char *v, size_t n, bool *star)
{
	const char *semi = memchr(v, ';', n);
	size_t tok = semi ? (size_t)(semi - v) : n;
	bool ok = semi ? bf_q_positive(semi + 1, n - tok - 1) : true;

	bf_trim(&v, &tok);
	*star = bf_eq(v, tok, "*");
	if (*star || bf_eq(v, tok, "gzip") || bf_eq(v, tok, "x-gzip"))
		return ok;
	return -1;
}

bool
bodyfilter_accepts_gzip(const char *v, size_t len)
{
	const char *end = v + len, *comma;
	int gzip = -1, star = -1, e; /* -1 not listed, 0 refused, 1 accepted */
	bool is_star;
	size_t n;

	if (v == NULL)
		return false;
	while (v < end) {
		comma = memchr(v, ',', (size_t)(end - v));
		n = comma ? (size_t)(comma - v) : (size_t)(end - v);
		e = bf_gzip_element(v, n, &is_star);
		if (e >= 0 && is_star)
			star = e;
		else if (e >= 0)
			gzip = gzip == 1 ? 1 : e;
		v = comma ? comma + 1 : end;
	}
	return gzip >= 0 ? gzip == 1 : star == 1;
}

bool
bodyfilter_upstream_accept_encoding(const char *v, size_t len, struct buf *out)
{
	const char *end = v + len, *comma, *semi, *t;
	size_t n, tok;
	bool kept = false;

	while (v != NULL && v < end) {
		comma = memchr(v, ',', (size_t)(end - v));
		n = comma ? (size_t)(comma - v) : (size_t)(end - v);
		semi = memchr(v, ';', n);
		tok = semi ? (size_t)(semi - v) : n;
		t = v;
		bf_trim(&t, &tok);
		if (bf_coding(t, tok) != CODING_OTHER && tok > 0) {
			t = v;
			bf_trim(&t, &n);
			if (kept)
				buf_adds(out, ", ");
			buf_add(out, t, n);
			kept = true;
		}
		v = comma ? comma + 1 : end;
	}
	return kept;
}

bool
bodyfilter_weaken_etag(const char *v, size_t len, struct buf *out)
{
	const char *t = v;
	size_t n = len;

	bf_trim(&t, &n);
	if (n >= 2 && t[0] == '"' && t[n - 1] == '"') {
		buf_adds(out, "W/");
		buf_add(out, t, n);
		return true;
	}
	buf_add(out, v, len);
	return false;
}

bool
bodyfilter_vary_merge(const char *v, size_t len, struct buf *out)
{
	const char *p = v, *end = v + len, *comma, *t;
	size_t n;

	if (v == NULL || len == 0) {
		buf_adds(out, "Accept-Encoding");
		return true;
	}
	while (p < end) {
		comma = memchr(p, ',', (size_t)(end - p));
		n = comma ? (size_t)(comma - p) : (size_t)(end - p);
		t = p;
		bf_trim(&t, &n);
		if (bf_eq(t, n, "*") || bf_eq(t, n, "accept-encoding")) {
			buf_add(out, v, len);
			return false;
		}
		p = comma ? comma + 1 : end;
	}
	buf_add(out, v, len);
	buf_adds(out, ", Accept-Encoding");
	return true;
}
