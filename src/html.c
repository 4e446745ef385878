/*
 * html.c: the streaming HTML URL rewriter (SPEC section 6.3).
 *
 * A tokenizer after the HTML5 one, reduced to what decides where a
 * URL-bearing attribute value is: text, comments, CDATA, declarations,
 * start and end tags, and the raw text of script, style and the like (up
 * to their end tag, any case).  Every decision depends on the bytes alone,
 * never on where a write ended, so the output is the same however the
 * input is split.
 *
 * Two ways through the same states.  The fast one jumps from "<" to "<"
 * (sixteen bytes at a time) and reads each tag that is whole in the current
 * write once, in place: the gaps between attributes are skipped to the next
 * "=" or ">", and only the names before an "=" are looked at.  The bytes
 * it passes unchanged are not copied as they are read: consecutive input
 * bytes form one span, copied out only when a replacement must follow it
 * or the write ends.  The byte-wise way buffers what a write left
 * unfinished (a tag split across writes, up to HTML_TAG_MAX; "<!" and the
 * like) and streams the rest (comments, declarations, raw text, end tags
 * and over-long tags) through the same state enum.
 *
 * In extended mode the contents of <style> are cut into CSS statements (at
 * ";", "{" and "}" outside strings), each rewritten when complete; a
 * statement over HTML_TAG_MAX passes unchanged.
 */
#include <stdint.h>
#include <string.h>

#include <event2/buffer.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "html_int.h"
#include "portico/filterchain.h"
#include "portico/html.h"

/* With a next filter, output is handed down the chain once this much is staged. */
#define HTML_OUT_FLUSH (16 * 1024)

enum html_state {
	HS_DATA,     /* text */
	HS_LT,	     /* "<" buffered */
	HS_LT_SLASH, /* "</" buffered */
	HS_BANG,     /* "<!" and what may still become "<!--" or "<![CDATA[" buffered */
	HS_COMMENT,  /* inside <!-- ... --> */
	HS_CDATA,    /* inside <![CDATA[ ... ]]> */
	HS_DECL,     /* <!DOCTYPE ...>, <?...>, other bogus markup, up to ">" */
	HS_TAG,	     /* a start tag being buffered */
	HS_TAG_PASS, /* an end tag, or a start tag over the limit, streamed to its ">" */
	HS_RAW,	     /* raw text of a script, style, textarea... up to its end tag */
};

/*
 * Where a comment stands before a ">": the HTML5 comment states.  A ">"
 * ends the comment from COMMENT_END on: after "--", after "--!", and right
 * after "<!--" or "<!---", so "<!-->" and "<!--->" are whole comments.
 */
enum {
	COMMENT_DASH = 1,   /* one "-" */
	COMMENT_END,	    /* "--" */
	COMMENT_BANG,	    /* "--!" */
	COMMENT_START,	    /* just after "<!--" */
	COMMENT_START_DASH, /* "<!---" */
};

/* The HTML5 tag tokenizer states, between "<name" and ">". */
enum tag_state {
	TS_NAME,
	TS_BEFORE_ATTR,
	TS_ATTR_NAME,
	TS_AFTER_ATTR,
	TS_BEFORE_VALUE,
	TS_VALUE_DQ,
	TS_VALUE_SQ,
	TS_VALUE_UQ,
	TS_END, /* the ">" that closes the tag */
};

/* A table row's name with its length, for names compared many times per body. */
#define NAMED(s) .name = (s), .len = sizeof(s) - 1

/* Elements whose content is raw text (no tags inside) up to "</name". */
static const struct {
	const char *name;
	size_t len;
	bool css; /* <style>: rewritten in extended mode */
} html_raw[] = {
    {NAMED("script")},	 {NAMED("style"), .css = true},
    {NAMED("textarea")}, {NAMED("title")},
    {NAMED("xmp")},	 {NAMED("iframe")},
    {NAMED("noembed")},	 {NAMED("noframes")},
};

enum attr_kind {
	ATTR_NONE,
	ATTR_URL,
	ATTR_SRCSET,
	ATTR_REFRESH, /* content=, on a <meta> */
	ATTR_STYLE,
};

/* A value to rewrite, found while scanning a tag. */
struct html_attr {
	const char *v;
	size_t len;
	enum attr_kind kind;
};

/* What reading a whole tag found. */
struct tag_scan {
	const char *end;  /* its ">" */
	size_t name_len;  /* the name after "<" or "</" */
	bool selfclosing; /* "/>" outside a value */
	bool refresh;	  /* <meta> with http-equiv="refresh" */
};

struct html_filter {
	struct filter base; /* first: the filter pointer is this struct's */
	const struct html_urlmap *map;
	struct html_urlmap *own_map; /* html_filter_new(): freed with the filter */
	bool extended;
	bool failed; /* a write down the chain or to the sink failed */
	enum html_state state;
	enum tag_state ts;
	bool slash;		 /* the last tag byte was a "/" outside a value */
	bool selfclosing;	 /* the tag ended with "/>" */
	int pending_raw;	 /* html_raw index of the start tag being read, or -1 */
	int raw;		 /* html_raw index of the element we are inside */
	size_t raw_match;	 /* bytes of "</name" matched inside raw text */
	unsigned marks;		 /* trailing "-" (comment, see html_comment) or "]" (CDATA) seen */
	bool css_skip;		 /* the CSS statement went over the limit: streamed */
	char css_quote;		 /* the quote of the CSS string we are in, or 0 */
	struct buf tag;		 /* markup a write left unfinished */
	struct buf css;		 /* the current CSS statement (extended <style>) */
	struct buf out;		 /* output staged for the next filter */
	struct html_attr *attrs; /* the values to rewrite of the tag being sent */
	size_t nattrs, attrs_cap;
	/* The current write. */
	struct evbuffer *sink;
	const char *in, *in_end; /* its input */
	const char *pend;	 /* input passed through, not yet copied out */
	size_t plen;
	struct evbuffer_iovec res; /* space reserved in the sink (last filter) */
	size_t res_used;
	bool reserved;
};

static bool
html_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The first `c` in [p, end), or NULL. */
static const char *
html_find(const char *p, const char *end, char c)
{
#if defined(__SSE2__)
	const __m128i want = _mm_set1_epi8(c);

	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, want));

		if (m != 0)
			return p + __builtin_ctz(m);
		p += 16;
	}
#endif
	for (; p < end; p++)
		if (*p == c)
			return p;
	return NULL;
}

/* --- output ----------------------------------------------------------- */

static void
html_forward(struct html_filter *h, const char *p, size_t n)
{
	if (!h->failed && filterchain_forward(&h->base, p, n, h->sink) < 0)
		h->failed = true;
}

/* Hands the staged output to the next filter. */
static void
html_push(struct html_filter *h)
{
	if (h->out.len == 0)
		return;
	html_forward(h, h->out.data, h->out.len);
	buf_reset(&h->out);
	/* A tag whose URLs grew a lot may have stretched it: give that back. */
	if (h->out.cap > 2 * HTML_OUT_FLUSH)
		buf_free(&h->out);
}

static void
html_commit(struct html_filter *h)
{
	if (!h->reserved)
		return;
	h->reserved = false;
	if (h->res_used == 0)
		return; /* an unused reservation is simply dropped */
	h->res.iov_len = h->res_used;
	if (evbuffer_commit_space(h->sink, &h->res, 1) < 0)
		h->failed = true;
}

/* Room for `n` more bytes in the sink: the rest of the write's input, and some. */
static bool
html_reserve(struct html_filter *h, size_t n)
{
	size_t want = n + 256 + (h->reserved ? 4096 : (size_t)(h->in_end - h->in));

	html_commit(h);
	if (h->failed || evbuffer_reserve_space(h->sink, (ev_ssize_t)want, &h->res, 1) < 1) {
		h->failed = true;
		return false;
	}
	h->reserved = true;
	h->res_used = 0;
	return true;
}

/* Appends output: staged for the next filter, or copied into the sink. */
static void
html_out(struct html_filter *h, const char *p, size_t n)
{
	if (n == 0 || h->failed)
		return;
	if (h->base.next != NULL) {
		if (n >= HTML_OUT_FLUSH) {
			html_push(h);
			html_forward(h, p, n);
			return;
		}
		buf_add(&h->out, p, n);
		if (h->out.len >= HTML_OUT_FLUSH)
			html_push(h);
		return;
	}
	if ((!h->reserved || h->res.iov_len - h->res_used < n) && !html_reserve(h, n))
		return;
	memcpy((char *)h->res.iov_base + h->res_used, p, n);
	h->res_used += n;
}

static void
html_flush_pend(struct html_filter *h)
{
	if (h->plen == 0)
		return;
	html_out(h, h->pend, h->plen);
	h->plen = 0;
}

/*
 * Sends bytes on: a piece of the current input joins the pending span when
 * it follows it; anything else (a replacement, buffered markup) is copied
 * out after the span.
 */
static void
html_emit(struct html_filter *h, const char *p, size_t n)
{
	uintptr_t a = (uintptr_t)p;

	if (n == 0)
		return;
	if (a >= (uintptr_t)h->in && a < (uintptr_t)h->in_end) {
		if (h->plen > 0 && h->pend + h->plen == p) {
			h->plen += n;
			return;
		}
		html_flush_pend(h);
		h->pend = p;
		h->plen = n;
		return;
	}
	html_flush_pend(h);
	html_out(h, p, n);
}

/* Sends the buffered markup unchanged. */
static void
html_flush_tag(struct html_filter *h)
{
	html_emit(h, h->tag.data, h->tag.len);
	buf_reset(&h->tag);
}

/* --- URLs ------------------------------------------------------------- */

/* Rewriting the URLs of one value: what is before `done` has been sent. */
struct html_visit {
	struct html_filter *h;
	const char *done;
};

static void
html_visit_url(void *arg, const char *s, size_t len)
{
	struct html_visit *v = arg;
	const struct html_urlmap_entry *e = html_urlmap_match(v->h->map, s, len);

	if (e == NULL)
		return;
	html_emit(v->h, v->done, (size_t)(s - v->done));
	html_emit(v->h, e->to, e->to_len);
	v->done = s + e->from_len;
}

/* Rewrites the URLs in a value; the bytes from *done up to them are sent first. */
static void
html_rewrite_value(struct html_filter *h, enum attr_kind kind, const char *v, size_t len,
		   const char **done)
{
	struct html_visit vis = {h, *done};

	switch (kind) {
	case ATTR_URL:
		html_urls_trimmed(v, len, html_visit_url, &vis);
		break;
	case ATTR_SRCSET:
		html_urls_srcset(v, len, html_visit_url, &vis);
		break;
	case ATTR_REFRESH:
		html_urls_refresh(v, len, html_visit_url, &vis);
		break;
	case ATTR_STYLE:
		html_urls_css(v, len, html_visit_url, &vis);
		break;
	case ATTR_NONE:
		break;
	}
	*done = vis.done;
}

/* --- tags ------------------------------------------------------------- */

/* One byte of the HTML5 tag states; TS_END when it is the closing ">". */
static enum tag_state
tag_step(enum tag_state ts, char c)
{
	bool ws = html_is_ws(c);

	switch (ts) {
	case TS_NAME:
		return c == '>' ? TS_END : (ws || c == '/') ? TS_BEFORE_ATTR : TS_NAME;
	case TS_BEFORE_ATTR:
		return c == '>' ? TS_END : (ws || c == '/') ? TS_BEFORE_ATTR : TS_ATTR_NAME;
	case TS_ATTR_NAME:
	case TS_AFTER_ATTR:
		if (c == '>')
			return TS_END;
		if (c == '=')
			return TS_BEFORE_VALUE;
		if (c == '/')
			return TS_BEFORE_ATTR;
		if (ws)
			return TS_AFTER_ATTR;
		return TS_ATTR_NAME;
	case TS_BEFORE_VALUE:
		if (ws)
			return TS_BEFORE_VALUE;
		if (c == '>')
			return TS_END;
		return c == '"' ? TS_VALUE_DQ : c == '\'' ? TS_VALUE_SQ : TS_VALUE_UQ;
	case TS_VALUE_DQ:
		return c == '"' ? TS_BEFORE_ATTR : TS_VALUE_DQ;
	case TS_VALUE_SQ:
		return c == '\'' ? TS_BEFORE_ATTR : TS_VALUE_SQ;
	case TS_VALUE_UQ:
		return c == '>' ? TS_END : ws ? TS_BEFORE_ATTR : TS_VALUE_UQ;
	case TS_END:
		break;
	}
	return TS_END;
}

/* Advances the filter's tag state by `c`; true when `c` closed the tag. */
static bool
html_tag_advance(struct html_filter *h, char c)
{
	enum tag_state old = h->ts;

	h->ts = tag_step(old, c);
	if (h->ts == TS_END) {
		h->selfclosing = h->slash;
		return true;
	}
	h->slash = c == '/' && old != TS_BEFORE_VALUE && old != TS_VALUE_DQ && old != TS_VALUE_SQ &&
		   old != TS_VALUE_UQ;
	return false;
}

/* `n` is `lower` (a lower-case name of the same length) in any case. */
static bool
html_name_is(const char *n, const char *lower, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (ascii_lower(n[i]) != lower[i])
			return false;
	return true;
}

#define NAME_IS(n, lit) html_name_is((n), (lit), sizeof(lit) - 1)

/* The html_raw index of the element named [name, name + len), or -1. */
static int
html_raw_lookup(const char *name, size_t len)
{
	int i;

	switch (len) {
	case 3:
		i = 4; /* xmp */
		break;
	case 5:
		i = ascii_lower(name[0]) == 's' ? 1 : 3; /* style, title */
		break;
	case 6:
		i = ascii_lower(name[0]) == 's' ? 0 : 5; /* script, iframe */
		break;
	case 7:
		i = 6; /* noembed */
		break;
	case 8:
		i = ascii_lower(name[0]) == 't' ? 2 : 7; /* textarea, noframes */
		break;
	default:
		return -1;
	}
	return html_name_is(name, html_raw[i].name, len) ? i : -1;
}

enum { TAG_OBJECT = 1, TAG_META = 2 };

/* Which URL attribute a name of `len` bytes is, on a tag with TAG_* `tag`. */
static enum attr_kind
html_attr_kind(const struct html_filter *h, const char *n, size_t len, unsigned tag)
{
	switch (len) {
	case 3:
		return NAME_IS(n, "src") ? ATTR_URL : ATTR_NONE;
	case 4:
		if (NAME_IS(n, "href") || NAME_IS(n, "cite") ||
		    ((tag & TAG_OBJECT) && NAME_IS(n, "data")))
			return ATTR_URL;
		return ATTR_NONE;
	case 5:
		return h->extended && NAME_IS(n, "style") ? ATTR_STYLE : ATTR_NONE;
	case 6:
		if (NAME_IS(n, "action") || NAME_IS(n, "poster") || NAME_IS(n, "usemap"))
			return ATTR_URL;
		return NAME_IS(n, "srcset") ? ATTR_SRCSET : ATTR_NONE;
	case 7:
		return (tag & TAG_META) && NAME_IS(n, "content") ? ATTR_REFRESH : ATTR_NONE;
	case 8:
		return NAME_IS(n, "longdesc") || NAME_IS(n, "manifest") ? ATTR_URL : ATTR_NONE;
	case 10:
		if (NAME_IS(n, "formaction") || NAME_IS(n, "background") ||
		    NAME_IS(n, "xlink:href"))
			return ATTR_URL;
		return ATTR_NONE;
	default:
		return ATTR_NONE;
	}
}

/* An attribute with a value, met while scanning a tag of TAG_* `tag`. */
static void
html_attr_seen(struct html_filter *h, const char *n, size_t nlen, const char *v, size_t vlen,
	       unsigned tag, struct tag_scan *s)
{
	enum attr_kind kind = html_attr_kind(h, n, nlen, tag);

	if (kind == ATTR_NONE) {
		if ((tag & TAG_META) && nlen == 10 && NAME_IS(n, "http-equiv") && vlen == 7 &&
		    NAME_IS(v, "refresh"))
			s->refresh = true;
		return;
	}
	if (h->nattrs == h->attrs_cap)
		h->attrs = xgrow(h->attrs, &h->attrs_cap, h->nattrs, sizeof(*h->attrs));
	h->attrs[h->nattrs++] = (struct html_attr){v, vlen, kind};
}

/* The bytes that matter inside a tag. */
enum { C_WS = 1, C_SLASH = 2, C_GT = 4, C_EQ = 8 };
static const unsigned char html_class[256] = {
    [' '] = C_WS,  ['\t'] = C_WS,   ['\n'] = C_WS, ['\r'] = C_WS,
    ['\f'] = C_WS, ['/'] = C_SLASH, ['>'] = C_GT,  ['='] = C_EQ,
};
#define CLASS(c) html_class[(unsigned char)(c)]

/*
 * Reads the tag whose name starts at `name` (after "<" or "</") once, up to
 * its ">" before `lim`: the HTML5 tag states of tag_step(), a run of bytes
 * at a time.  With `attrs`, the values of URL attributes go to h->attrs.
 * False when the tag goes on past `lim`.
 */
static bool
html_scan_tag(struct html_filter *h, const char *name, const char *lim, bool attrs,
	      struct tag_scan *s)
{
	const char *p = name, *n, *k, *v;
	unsigned tag = 0;

	while (p < lim && !(CLASS(*p) & (C_WS | C_SLASH | C_GT)))
		p++;
	if (p == lim)
		return false;
	s->name_len = (size_t)(p - name);
	s->refresh = false;
	s->selfclosing = false;
	h->nattrs = 0;
	if (attrs && s->name_len == 6 && NAME_IS(name, "object"))
		tag = TAG_OBJECT;
	else if (attrs && s->name_len == 4 && NAME_IS(name, "meta"))
		tag = TAG_META;
	for (;;) {
		/* Before an attribute name: whitespace and "/" are skipped. */
		while (p < lim && (CLASS(*p) & (C_WS | C_SLASH)))
			p++;
		if (p == lim)
			return false;
		if (*p == '>') {
			s->end = p;
			s->selfclosing = p[-1] == '/';
			return true;
		}
		/* A name: its first byte may be anything, "=" and quotes included. */
		for (n = p++; p < lim && !CLASS(*p); p++)
			;
		for (k = p; p < lim && (CLASS(*p) & C_WS); p++)
			;
		if (p == lim)
			return false;
		if (*p == '>') {
			s->end = p;
			return true;
		}
		if (*p != '=')
			continue; /* "/" or the next name */
		for (p++; p < lim && (CLASS(*p) & C_WS); p++)
			;
		if (p == lim)
			return false;
		if (*p == '>') { /* "name=>": no value */
			s->end = p;
			return true;
		}
		if (*p == '"' || *p == '\'') {
			v = p + 1;
			if ((p = html_find(v, lim, *p)) == NULL)
				return false;
			if (attrs)
				html_attr_seen(h, n, (size_t)(k - n), v, (size_t)(p - v), tag, s);
			p++;
			continue;
		}
		for (v = p; p < lim && !(CLASS(*p) & (C_WS | C_GT)); p++)
			;
		if (p == lim)
			return false;
		if (attrs)
			html_attr_seen(h, n, (size_t)(k - n), v, (size_t)(p - v), tag, s);
		if (*p == '>') {
			s->end = p;
			return true;
		}
	}
}

/*
 * Rewrites the values found by html_scan_tag(); the bytes from *done up to
 * each rewritten URL are sent first.
 */
static void
html_tag_attrs(struct html_filter *h, const struct tag_scan *s, const char **done)
{
	for (size_t i = 0; i < h->nattrs; i++) {
		const struct html_attr *a = &h->attrs[i];

		if (a->kind != ATTR_REFRESH || s->refresh)
			html_rewrite_value(h, a->kind, a->v, a->len, done);
	}
}

/* Sends the complete start tag in h->tag with its URL attributes rewritten. */
static void
html_send_tag(struct html_filter *h)
{
	const char *t = h->tag.data, *done = t;
	struct tag_scan s;
	bool whole = html_scan_tag(h, t + 1, t + h->tag.len, true, &s);

	/* The byte-wise states found this ">" too: both read the same machine. */
	PORTICO_ASSERT(whole && s.end == t + h->tag.len - 1);
	html_tag_attrs(h, &s, &done);
	html_emit(h, done, (size_t)(t + h->tag.len - done));
	buf_reset(&h->tag);
}

/* The state after a tag's ">": raw text for <script> and the like. */
static void
html_after_tag(struct html_filter *h)
{
	if (h->pending_raw >= 0 && !h->selfclosing) {
		h->state = HS_RAW;
		h->raw = h->pending_raw;
		h->raw_match = 0;
		h->css_skip = false;
		h->css_quote = 0;
	} else {
		h->state = HS_DATA;
	}
}

static void
html_begin_tag(struct html_filter *h, enum html_state state)
{
	h->state = state;
	h->ts = TS_NAME;
	h->slash = false;
	h->selfclosing = false;
	h->pending_raw = -1;
}

/* A start tag named [name, name + len) has ended: raw text follows for <script> and the like. */
static void
html_start_tag_end(struct html_filter *h, const char *name, size_t len, bool selfclosing)
{
	h->pending_raw = html_raw_lookup(name, len);
	h->selfclosing = selfclosing;
	html_after_tag(h);
}

/* --- the fast way: constructs whole in this write ---------------------- */

/* A start tag at q: sent with its URLs rewritten; NULL when it is not whole here. */
static const char *
html_fast_start_tag(struct html_filter *h, const char *q, const char *end, const char **done)
{
	const char *lim = end - q > HTML_TAG_MAX ? q + HTML_TAG_MAX : end;
	struct tag_scan s;

	if (!html_scan_tag(h, q + 1, lim, true, &s))
		return NULL;
	if (h->nattrs > 0)
		html_tag_attrs(h, &s, done);
	html_start_tag_end(h, q + 1, s.name_len, s.selfclosing);
	return s.end + 1;
}

#if defined(__SSE2__)
/*
 * "<name>" and "</name>", the tags without attributes that make most of a
 * page, read with one 16-byte load from q: the tag's length, or 0 for the
 * general way.  *lt gets the "<" among the 16 bytes (bit i for q[i]), so
 * that the next tag is often found without another load.  Needs 16 bytes
 * from q.
 */
static unsigned
html_simple_tag(const char *q, unsigned *lt)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)q);
	__m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(' ')), v);
	__m128i stop = _mm_or_si128(ctl, _mm_cmpeq_epi8(v, _mm_set1_epi8('/')));
	unsigned g = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('>')));
	unsigned m = (unsigned)_mm_movemask_epi8(stop) | g, name = q[1] == '/' ? 2 : 1;

	*lt = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('<')));
	m >>= name;
	g >>= name;
	/* The name ends at whitespace, a control byte, "/" or ">": ">" it must be. */
	if (!html_is_alpha(q[name]) || (m & -m & g) == 0)
		return 0;
	return name + (unsigned)__builtin_ctz(m) + 1;
}
#endif

/*
 * The markup at q ("<"): where it ends when it is whole in [q, end) and the
 * fast way knows it (a start or end tag, "</>", the start of a comment, a
 * "<" that is text); NULL to take the byte-wise way from q.
 */
static const char *
html_fast_markup(struct html_filter *h, const char *q, const char *end, const char **done)
{
	const char *lim = end - q > HTML_TAG_MAX ? q + HTML_TAG_MAX : end;
	struct tag_scan s;

	if (end - q < 3)
		return NULL;
	if (html_is_alpha(q[1]))
		return html_fast_start_tag(h, q, end, done);
	if (q[1] == '/') {
		if (q[2] == '>')
			return q + 3;
		if (!html_is_alpha(q[2]) || !html_scan_tag(h, q + 2, lim, false, &s))
			return NULL; /* a bogus comment, or not whole here */
		return s.end + 1;
	}
	if (q[1] == '!') {
		if (end - q < 4 || memcmp(q, "<!--", 4) != 0)
			return NULL;
		h->state = HS_COMMENT;
		h->marks = COMMENT_START;
		return q + 4;
	}
	return q[1] == '?' ? NULL : q + 1;
}

/* --- the states -------------------------------------------------------- */

static size_t
html_data(struct html_filter *h, const char *p, size_t n)
{
	const char *end = p + n, *done = p, *q = html_find(p, end, '<'), *r;

	while (q != NULL) {
#if defined(__SSE2__)
		unsigned lt, len;

		if (end - q >= 16 && (len = html_simple_tag(q, &lt)) != 0) {
			r = q + len;
			/* Only a start tag's name of 3 to 8 bytes can begin raw text. */
			if (len >= 5 && len <= 10 && q[1] != '/') {
				html_start_tag_end(h, q + 1, len - 2, false);
				if (h->state != HS_DATA) {
					html_emit(h, done, (size_t)(r - done));
					return (size_t)(r - p);
				}
			}
			lt >>= len; /* the "<" after this tag, among the bytes loaded */
			q = lt != 0 ? r + __builtin_ctz(lt) : html_find(q + 16, end, '<');
			continue;
		}
#endif
		if ((r = html_fast_markup(h, q, end, &done)) == NULL)
			break;
		if (h->state != HS_DATA) {
			html_emit(h, done, (size_t)(r - done));
			return (size_t)(r - p);
		}
		q = html_find(r, end, '<');
	}
	if (q == NULL) {
		html_emit(h, done, (size_t)(end - done));
		return n;
	}
	html_emit(h, done, (size_t)(q - done));
	buf_addc(&h->tag, '<');
	h->state = HS_LT;
	return (size_t)(q - p) + 1;
}

static size_t
html_lt(struct html_filter *h, char c)
{
	if (c == '!' || c == '/') {
		buf_addc(&h->tag, c);
		h->state = c == '!' ? HS_BANG : HS_LT_SLASH;
		return 1;
	}
	if (html_is_alpha(c)) {
		buf_addc(&h->tag, c);
		html_begin_tag(h, HS_TAG);
		return 1;
	}
	html_flush_tag(h); /* a lone "<" is text */
	h->state = c == '?' ? HS_DECL : HS_DATA;
	return 0;
}

static size_t
html_lt_slash(struct html_filter *h, char c)
{
	if (c == '>') { /* "</>" */
		buf_addc(&h->tag, c);
		html_flush_tag(h);
		h->state = HS_DATA;
		return 1;
	}
	html_flush_tag(h);
	if (html_is_alpha(c))
		html_begin_tag(h, HS_TAG_PASS); /* end tags are never rewritten */
	else
		h->state = HS_DECL;
	return 0;
}

static bool
html_is_prefix(const struct buf *b, const char *s)
{
	return b->len <= strlen(s) && memcmp(b->data, s, b->len) == 0;
}

static size_t
html_bang(struct html_filter *h, char c)
{
	buf_addc(&h->tag, c);
	if (html_is_prefix(&h->tag, "<!--")) {
		if (h->tag.len == 4) {
			html_flush_tag(h);
			h->state = HS_COMMENT;
			h->marks = COMMENT_START;
		}
		return 1;
	}
	if (html_is_prefix(&h->tag, "<![CDATA[")) {
		if (h->tag.len == 9) {
			html_flush_tag(h);
			h->state = HS_CDATA;
			h->marks = 0;
		}
		return 1;
	}
	h->tag.len--;
	html_flush_tag(h);
	h->state = HS_DECL;
	return 0;
}

/* CDATA: up to a ">" after two `mark` bytes ("]]>"). */
static size_t
html_until_marks(struct html_filter *h, const char *p, size_t n, char mark)
{
	const char *q = memchr(p, '>', n);
	size_t run = q ? (size_t)(q - p) : n, k = 0;

	while (k < run && p[run - 1 - k] == mark)
		k++;
	h->marks = k == run ? h->marks + (unsigned)k : (unsigned)k;
	if (q == NULL) {
		html_emit(h, p, n);
		return n;
	}
	html_emit(h, p, run + 1);
	if (h->marks >= 2)
		h->state = HS_DATA;
	h->marks = 0;
	return run + 1;
}

/* The comment state after the `run` bytes of p that hold no ">". */
static unsigned
comment_marks(unsigned marks, const char *p, size_t run)
{
	bool start = marks == COMMENT_START || marks == COMMENT_START_DASH;
	size_t before = marks == COMMENT_END ? 2 : marks == COMMENT_DASH ? 1 : 0, k = 0, d = 0;

	if (marks == COMMENT_START_DASH)
		before = 1;
	if (run == 0)
		return marks;
	while (k < run && p[run - 1 - k] == '-')
		k++;
	if (k == run) /* only dashes: they add to those before */
		return before + k >= 2 ? COMMENT_END : start ? COMMENT_START_DASH : COMMENT_DASH;
	if (k > 0 || p[run - 1] != '!')
		return k >= 2 ? COMMENT_END : (unsigned)k;
	while (d < run - 1 && p[run - 2 - d] == '-')
		d++;
	if (d == run - 1)
		d += before; /* the dashes began in an earlier write */
	return d >= 2 ? COMMENT_BANG : 0;
}

/* Inside <!-- ... -->: streamed up to the ">" that ends it. */
static size_t
html_comment(struct html_filter *h, const char *p, size_t n)
{
	const char *q = memchr(p, '>', n);
	size_t run = q ? (size_t)(q - p) : n;

	h->marks = comment_marks(h->marks, p, run);
	if (q == NULL) {
		html_emit(h, p, n);
		return n;
	}
	html_emit(h, p, run + 1);
	if (h->marks >= COMMENT_END)
		h->state = HS_DATA;
	h->marks = 0;
	return run + 1;
}

static size_t
html_decl(struct html_filter *h, const char *p, size_t n)
{
	const char *q = memchr(p, '>', n);
	size_t k = q ? (size_t)(q - p) + 1 : n;

	html_emit(h, p, k);
	if (q != NULL)
		h->state = HS_DATA;
	return k;
}

static size_t
html_tag(struct html_filter *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum tag_state old = h->ts;
		bool end;

		buf_addc(&h->tag, p[i]);
		end = html_tag_advance(h, p[i]);
		if (old == TS_NAME && h->ts != TS_NAME)
			h->pending_raw = html_raw_lookup(h->tag.data + 1, h->tag.len - 2);
		if (end) {
			html_send_tag(h);
			html_after_tag(h);
			return i + 1;
		}
		if (h->tag.len >= HTML_TAG_MAX) {
			html_flush_tag(h);
			h->state = HS_TAG_PASS;
			return i + 1;
		}
	}
	return n;
}

static size_t
html_tag_pass(struct html_filter *h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (html_tag_advance(h, p[i])) {
			html_emit(h, p, i + 1);
			html_after_tag(h);
			return i + 1;
		}
	}
	html_emit(h, p, n);
	return n;
}

/* --- raw text and extended <style> -------------------------------------- */

/* Advances the "</name" matcher by `c`; true when `c` ends "</name". */
static bool
html_raw_match(struct html_filter *h, char c)
{
	const char *name = html_raw[h->raw].name;
	size_t nl = html_raw[h->raw].len, m = h->raw_match;

	if (m == 2 + nl) {
		if (html_is_ws(c) || c == '/' || c == '>')
			return true;
		m = 0;
	} else if (m == 1) {
		m = c == '/' ? 2 : 0;
	} else if (m >= 2) {
		m = ascii_lower(c) == name[m - 2] ? m + 1 : 0;
	}
	if (m == 0 && c == '<')
		m = 1;
	h->raw_match = m;
	return false;
}

static void
html_css_statement(struct html_filter *h, size_t len)
{
	const char *done = h->css.data;

	html_rewrite_value(h, ATTR_STYLE, h->css.data, len, &done);
	html_emit(h, done, (size_t)(h->css.data + len - done));
}

/* One byte of <style> contents in extended mode. */
static void
html_css_byte(struct html_filter *h, char c)
{
	if (h->css_skip)
		html_emit(h, &c, 1);
	else
		buf_addc(&h->css, c);
	if (h->css_quote != 0) {
		if (c == h->css_quote || c == '\n')
			h->css_quote = 0;
	} else if (c == '"' || c == '\'') {
		h->css_quote = c;
	} else if (c == ';' || c == '{' || c == '}') {
		html_css_statement(h, h->css.len);
		buf_reset(&h->css);
		h->css_skip = false;
		return;
	}
	if (!h->css_skip && h->css.len >= HTML_TAG_MAX) {
		html_emit(h, h->css.data, h->css.len);
		buf_reset(&h->css);
		h->css_skip = true;
	}
}

/* "</style" + `c` has arrived in extended mode: the statement before it is complete. */
static void
html_css_end(struct html_filter *h)
{
	size_t tail = 2 + html_raw[h->raw].len + 1;

	if (!h->css_skip) {
		/* Every matched byte was buffered: a statement cut resets the matcher. */
		PORTICO_ASSERT(h->css.len >= tail);
		html_css_statement(h, h->css.len - tail);
		html_emit(h, h->css.data + h->css.len - tail, tail);
	}
	buf_reset(&h->css);
	h->css_quote = 0;
}

static void
html_raw_ended(struct html_filter *h, char c)
{
	html_begin_tag(h, HS_TAG_PASS);
	h->ts = tag_step(TS_NAME, c);
	if (h->ts == TS_END)
		h->state = HS_DATA;
}

static size_t
html_raw_text(struct html_filter *h, const char *p, size_t n)
{
	bool css = h->extended && html_raw[h->raw].css;
	size_t i = 0, start = 0;
	const char *q;

	while (i < n) {
		if (!css && h->raw_match == 0) {
			q = memchr(p + i, '<', n - i);
			if (q == NULL)
				break;
			i = (size_t)(q - p);
		}
		if (css)
			html_css_byte(h, p[i]);
		if (html_raw_match(h, p[i++])) {
			if (css)
				html_css_end(h);
			else
				html_emit(h, p + start, i - start);
			html_raw_ended(h, p[i - 1]);
			return i;
		}
	}
	if (!css)
		html_emit(h, p + start, n - start);
	return n;
}

/* --- the filter ------------------------------------------------------- */

static size_t
html_step(struct html_filter *h, const char *p, size_t n)
{
	switch (h->state) {
	case HS_DATA:
		return html_data(h, p, n);
	case HS_LT:
		return html_lt(h, p[0]);
	case HS_LT_SLASH:
		return html_lt_slash(h, p[0]);
	case HS_BANG:
		return html_bang(h, p[0]);
	case HS_COMMENT:
		return html_comment(h, p, n);
	case HS_CDATA:
		return html_until_marks(h, p, n, ']');
	case HS_DECL:
		return html_decl(h, p, n);
	case HS_TAG:
		return html_tag(h, p, n);
	case HS_TAG_PASS:
		return html_tag_pass(h, p, n);
	case HS_RAW:
		return html_raw_text(h, p, n);
	}
	return n;
}

/* Ends a write or finish: the pending span and the staged output go out. */
static int
html_done(struct html_filter *h)
{
	html_flush_pend(h);
	html_commit(h);
	html_push(h);
	h->in = h->in_end = NULL;
	return h->failed ? -1 : 0;
}

static int
html_write(struct filter *f, const char *data, size_t len, struct evbuffer *out)
{
	struct html_filter *h = (struct html_filter *)f;

	if (h->failed)
		return -1;
	h->sink = out;
	h->in = data;
	h->in_end = data + len;
	while (len > 0 && !h->failed) {
		size_t k = html_step(h, data, len);

		data += k;
		len -= k;
	}
	return html_done(h);
}

/* End of the body: what is held is sent unchanged (a CSS statement rewritten). */
static int
html_finish(struct filter *f, struct evbuffer *out)
{
	struct html_filter *h = (struct html_filter *)f;

	if (h->failed)
		return -1;
	h->sink = out;
	html_flush_tag(h);
	if (h->css.len > 0)
		html_css_statement(h, h->css.len);
	buf_reset(&h->css);
	h->state = HS_DATA;
	if (html_done(h) < 0)
		return -1;
	return filterchain_forward_finish(f, out);
}

static void
html_free(struct filter *f)
{
	struct html_filter *h = (struct html_filter *)f;

	if (h == NULL)
		return;
	filterchain_free_next(f);
	html_urlmap_free(h->own_map);
	buf_free(&h->tag);
	buf_free(&h->css);
	buf_free(&h->out);
	xfree(h->attrs);
	xfree(h);
}

static const struct filter_ops html_ops = {
    .name = "html",
    .write = html_write,
    .finish = html_finish,
    .free = html_free,
};

struct filter *
html_filter_new_shared(const struct html_urlmap *map, bool extended)
{
	struct html_filter *h = xcalloc(1, sizeof(*h));

	h->base.ops = &html_ops;
	h->map = map;
	h->extended = extended;
	h->state = HS_DATA;
	h->pending_raw = -1;
	buf_init(&h->tag);
	buf_init(&h->css);
	buf_init(&h->out);
	return &h->base;
}

struct filter *
html_filter_new(const struct route_html_map *maps, size_t n, bool extended)
{
	struct html_urlmap *map = html_urlmap_new(maps, n);
	struct filter *f = html_filter_new_shared(map, extended);

	((struct html_filter *)f)->own_map = map;
	return f;
}

size_t
html_filter_retained(const struct filter *f)
{
	const struct html_filter *h = (const struct html_filter *)f;

	return h->tag.cap + h->css.cap + h->out.cap + h->attrs_cap * sizeof(*h->attrs);
}
