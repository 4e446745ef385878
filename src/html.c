/*
 * html.c: the streaming HTML URL rewriter (SPEC section 6.3).
 *
 * A byte-driven tokenizer after the HTML5 one, reduced to what decides
 * where a URL-bearing attribute value is: text, comments, CDATA,
 * declarations, start and end tags, and the raw text of script, style and
 * the like (up to their end tag, any case).  Only a start tag is buffered
 * (up to HTML_TAG_MAX); when its ">" arrives its attributes are rewritten
 * and it is sent.  Everything else streams through as it comes.  Every
 * decision depends on the bytes alone, never on where a write ended, so the
 * output is the same however the input is split.
 *
 * In extended mode the contents of <style> are cut into CSS statements (at
 * ";", "{" and "}" outside strings), each rewritten when complete; a
 * statement over HTML_TAG_MAX passes unchanged.
 */
#include <stdint.h>
#include <string.h>

#include "portico/bodyfilter.h"
#include "portico/html.h"

/* Output is handed down the chain once this much is staged. */
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
	ATTR_REFRESH,
	ATTR_STYLE,
};

static const struct {
	const char *name;
	size_t len;
} html_url_attrs[] = {
    {NAMED("href")},   {NAMED("src")},	    {NAMED("action")},	   {NAMED("formaction")},
    {NAMED("poster")}, {NAMED("cite")},	    {NAMED("background")}, {NAMED("longdesc")},
    {NAMED("usemap")}, {NAMED("manifest")}, {NAMED("xlink:href")},
};

struct html_filter {
	struct filter base; /* first: the filter pointer is this struct's */
	struct route_html_map *maps;
	size_t nmaps;
	bool extended;
	bool failed; /* a write down the chain failed */
	enum html_state state;
	enum tag_state ts;
	bool slash;	  /* the last tag byte was a "/" outside a value */
	bool selfclosing; /* the tag ended with "/>" */
	int pending_raw;  /* html_raw index of the start tag being read, or -1 */
	int raw;	  /* html_raw index of the element we are inside */
	size_t raw_match; /* bytes of "</name" matched inside raw text */
	unsigned marks;	  /* trailing "-" (comment, see html_comment) or "]" (CDATA) seen */
	bool css_skip;	  /* the CSS statement went over the limit: streamed */
	char css_quote;	  /* the quote of the CSS string we are in, or 0 */
	struct buf tag;	  /* the buffered markup */
	struct buf css;	  /* the current CSS statement (extended <style>) */
	struct buf out;	  /* output staged for the next filter */
	struct evbuffer *sink;
};

static bool
html_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

static bool
html_is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* --- URL rewriting ---------------------------------------------------- */

static bool
html_map_matches(const struct route_html_map *m, const char *s, size_t len)
{
	size_t n = strlen(m->from);

	if (n == 0 || len < n || memcmp(s, m->from, n) != 0)
		return false;
	if (len == n || m->from[n - 1] == '/')
		return true;
	return s[n] == '/' || s[n] == '?' || s[n] == '#';
}

bool
html_rewrite_url(const struct route_html_map *maps, size_t n, const char *s, size_t len,
		 struct buf *out)
{
	for (size_t i = 0; i < n; i++) {
		if (!html_map_matches(&maps[i], s, len))
			continue;
		buf_adds(out, maps[i].to);
		buf_add(out, s + strlen(maps[i].from), len - strlen(maps[i].from));
		return true;
	}
	buf_add(out, s, len);
	return false;
}

/* srcset: "url [descriptor], url [descriptor], ..."; every URL is rewritten. */
static void
html_rewrite_srcset(const struct html_filter *h, const char *v, size_t len, struct buf *out)
{
	size_t i = 0, s, e;
	int depth;

	while (i < len) {
		for (s = i; i < len && (html_is_ws(v[i]) || v[i] == ','); i++)
			;
		buf_add(out, v + s, i - s);
		for (s = i; i < len && !html_is_ws(v[i]); i++)
			;
		for (e = i; e > s && v[e - 1] == ','; e--)
			;
		html_rewrite_url(h->maps, h->nmaps, v + s, e - s, out);
		buf_add(out, v + e, i - e);
		if (e < i)
			continue; /* trailing commas ended the candidate */
		for (s = i, depth = 0; i < len && (depth > 0 || v[i] != ','); i++) {
			if (v[i] == '(')
				depth++;
			else if (v[i] == ')' && depth > 0)
				depth--;
		}
		buf_add(out, v + s, i - s);
	}
}

/*
 * Where the URL of a refresh value ("5; url=/x", "0;URL='/x'", "3, /x")
 * starts, with *end where it stops; false when there is none.
 */
static bool
html_refresh_url(const char *v, size_t len, size_t *start, size_t *end)
{
	size_t i = 0, j, digits;
	const char *q;

	while (i < len && html_is_ws(v[i]))
		i++;
	for (digits = i; i < len && ((v[i] >= '0' && v[i] <= '9') || v[i] == '.'); i++)
		;
	if (i == digits)
		return false;
	while (i < len && html_is_ws(v[i]))
		i++;
	if (i < len && (v[i] == ';' || v[i] == ','))
		i++;
	while (i < len && html_is_ws(v[i]))
		i++;
	if (ascii_has_prefix_case(v + i, len - i, "url")) {
		for (j = i + 3; j < len && html_is_ws(v[j]); j++)
			;
		if (j < len && v[j] == '=') {
			for (i = j + 1; i < len && html_is_ws(v[i]); i++)
				;
		}
	}
	*end = len;
	if (i < len && (v[i] == '"' || v[i] == '\'')) {
		q = memchr(v + i + 1, v[i], len - i - 1);
		*end = q ? (size_t)(q - v) : len;
		i++;
	}
	*start = i;
	return i < len;
}

static void
html_rewrite_refresh(const struct html_filter *h, const char *v, size_t len, struct buf *out)
{
	size_t s, e;

	if (!html_refresh_url(v, len, &s, &e)) {
		buf_add(out, v, len);
		return;
	}
	buf_add(out, v, s);
	html_rewrite_url(h->maps, h->nmaps, v + s, e - s, out);
	buf_add(out, v + e, len - e);
}

static bool
css_is_ident(char c)
{
	return html_is_alpha(c) || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       (unsigned char)c >= 0x80;
}

/*
 * The URL of a url(...) or @import "..." starting at s[i]: true with
 * [*start, *end) when there is one.
 */
static bool
css_url_at(const char *s, size_t len, size_t i, size_t *start, size_t *end)
{
	size_t j;
	char q = 0;

	if (ascii_has_prefix_case(s + i, len - i, "url(") && (i == 0 || !css_is_ident(s[i - 1])))
		j = i + 4;
	else if (ascii_has_prefix_case(s + i, len - i, "@import"))
		j = i + 7;
	else
		return false;
	while (j < len && html_is_ws(s[j]))
		j++;
	if (j < len && (s[j] == '"' || s[j] == '\''))
		q = s[j++];
	else if (s[i] == '@')
		return false; /* @import url(...) is found at its url( */
	*start = j;
	while (j < len && (q ? s[j] != q : (s[j] != ')' && !html_is_ws(s[j]))))
		j++;
	*end = j;
	return true;
}

static void
html_rewrite_css(const struct html_filter *h, const char *s, size_t len, struct buf *out)
{
	size_t i = 0, done = 0, us, ue;

	while (i < len) {
		if (!css_url_at(s, len, i, &us, &ue)) {
			i++;
			continue;
		}
		buf_add(out, s + done, us - done);
		html_rewrite_url(h->maps, h->nmaps, s + us, ue - us, out);
		done = i = ue;
	}
	buf_add(out, s + done, len - done);
}

/* --- output ----------------------------------------------------------- */

static void
html_push(struct html_filter *h)
{
	if (h->out.len == 0)
		return;
	if (!h->failed && bodyfilter_forward(&h->base, h->out.data, h->out.len, h->sink) < 0)
		h->failed = true;
	buf_reset(&h->out);
	/* A tag whose URLs grew a lot may have stretched it: give that back. */
	if (h->out.cap > 2 * HTML_OUT_FLUSH)
		buf_free(&h->out);
}

/* Output was added to h->out: hands it on once there is enough. */
static void
html_staged(struct html_filter *h)
{
	if (h->out.len >= HTML_OUT_FLUSH)
		html_push(h);
}

static void
html_emit(struct html_filter *h, const char *p, size_t n)
{
	if (n >= HTML_OUT_FLUSH) {
		html_push(h);
		if (!h->failed && bodyfilter_forward(&h->base, p, n, h->sink) < 0)
			h->failed = true;
		return;
	}
	buf_add(&h->out, p, n);
	html_staged(h);
}

/* Sends the buffered markup unchanged. */
static void
html_flush_tag(struct html_filter *h)
{
	html_emit(h, h->tag.data, h->tag.len);
	buf_reset(&h->tag);
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

static int
html_raw_lookup(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(html_raw); i++)
		if (ascii_casecmp_eq(name, len, html_raw[i].name, html_raw[i].len))
			return (int)i;
	return -1;
}

struct attr_iter {
	size_t pos;
	enum tag_state ts;
	size_t name, name_len, value;
};

struct attr {
	size_t name, name_len;	 /* offsets into the tag */
	size_t value, value_len; /* without the quotes */
};

/* The next attribute of the complete tag `t` that has a value. */
static bool
attr_next(const char *t, size_t len, struct attr_iter *it, struct attr *a)
{
	while (it->pos < len && it->ts != TS_END) {
		size_t i = it->pos++;
		enum tag_state old = it->ts, now = tag_step(old, t[i]);

		it->ts = now;
		if (now == TS_ATTR_NAME && old != TS_ATTR_NAME)
			it->name = i;
		if (old == TS_ATTR_NAME && now != TS_ATTR_NAME)
			it->name_len = i - it->name;
		if (old == TS_BEFORE_VALUE && now != TS_BEFORE_VALUE)
			it->value = now == TS_VALUE_UQ ? i : i + 1;
		if ((old == TS_VALUE_DQ || old == TS_VALUE_SQ || old == TS_VALUE_UQ) &&
		    now != old) {
			*a = (struct attr){it->name, it->name_len, it->value, i - it->value};
			return true;
		}
	}
	return false;
}

static size_t
tag_name_len(const char *t, size_t len)
{
	size_t i = 1;

	while (i < len && !html_is_ws(t[i]) && t[i] != '/' && t[i] != '>')
		i++;
	return i - 1;
}

static bool
attr_is(const char *t, const struct attr *a, const char *name)
{
	return ascii_casecmp_eq(t + a->name, a->name_len, name, strlen(name));
}

/* True when the tag has http-equiv="refresh" (any case). */
static bool
tag_is_refresh(const char *t, size_t len)
{
	struct attr_iter it = {.pos = 1, .ts = TS_NAME};
	struct attr a;

	while (attr_next(t, len, &it, &a))
		if (attr_is(t, &a, "http-equiv") &&
		    ascii_casecmp_eq(t + a.value, a.value_len, "refresh", 7))
			return true;
	return false;
}

static enum attr_kind
attr_kind_of(const struct html_filter *h, const char *t, const struct attr *a, bool object,
	     bool refresh)
{
	for (size_t i = 0; i < ARRAY_SIZE(html_url_attrs); i++)
		if (ascii_casecmp_eq(t + a->name, a->name_len, html_url_attrs[i].name,
				     html_url_attrs[i].len))
			return ATTR_URL;
	if (object && attr_is(t, a, "data"))
		return ATTR_URL;
	if (attr_is(t, a, "srcset"))
		return ATTR_SRCSET;
	if (refresh && attr_is(t, a, "content"))
		return ATTR_REFRESH;
	if (h->extended && attr_is(t, a, "style"))
		return ATTR_STYLE;
	return ATTR_NONE;
}

/* A URL attribute: browsers ignore the whitespace around the URL, and so do the maps. */
static void
html_rewrite_trimmed(struct html_filter *h, const char *v, size_t len)
{
	size_t s = 0, e = len;

	while (s < e && html_is_ws(v[s]))
		s++;
	while (e > s && html_is_ws(v[e - 1]))
		e--;
	buf_add(&h->out, v, s);
	html_rewrite_url(h->maps, h->nmaps, v + s, e - s, &h->out);
	buf_add(&h->out, v + e, len - e);
}

static void
html_rewrite_value(struct html_filter *h, enum attr_kind kind, const char *v, size_t len)
{
	switch (kind) {
	case ATTR_URL:
		html_rewrite_trimmed(h, v, len);
		break;
	case ATTR_SRCSET:
		html_rewrite_srcset(h, v, len, &h->out);
		break;
	case ATTR_REFRESH:
		html_rewrite_refresh(h, v, len, &h->out);
		break;
	case ATTR_STYLE:
		html_rewrite_css(h, v, len, &h->out);
		break;
	case ATTR_NONE:
		buf_add(&h->out, v, len);
		break;
	}
}

/* Sends the complete start tag in h->tag with its URL attributes rewritten. */
static void
html_send_tag(struct html_filter *h)
{
	const char *t = h->tag.data;
	size_t len = h->tag.len, nlen = tag_name_len(t, len), done = 0;
	bool object = ascii_casecmp_eq(t + 1, nlen, "object", 6);
	bool refresh = ascii_casecmp_eq(t + 1, nlen, "meta", 4) && tag_is_refresh(t, len);
	struct attr_iter it = {.pos = 1, .ts = TS_NAME};
	enum attr_kind kind;
	struct attr a;

	while (attr_next(t, len, &it, &a)) {
		kind = attr_kind_of(h, t, &a, object, refresh);
		if (kind == ATTR_NONE)
			continue;
		buf_add(&h->out, t + done, a.value - done);
		html_rewrite_value(h, kind, t + a.value, a.value_len);
		html_staged(h);
		done = a.value + a.value_len;
	}
	html_emit(h, t + done, len - done);
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

/* --- the states -------------------------------------------------------- */

static size_t
html_data(struct html_filter *h, const char *p, size_t n)
{
	const char *q = memchr(p, '<', n);

	if (q == NULL) {
		html_emit(h, p, n);
		return n;
	}
	html_emit(h, p, (size_t)(q - p));
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
	html_rewrite_css(h, h->css.data, len, &h->out);
	html_staged(h);
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

static int
html_write(struct filter *f, const char *data, size_t len, struct evbuffer *out)
{
	struct html_filter *h = (struct html_filter *)f;

	if (h->failed)
		return -1;
	h->sink = out;
	while (len > 0) {
		size_t k = html_step(h, data, len);

		data += k;
		len -= k;
	}
	html_push(h);
	return h->failed ? -1 : 0;
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
	html_push(h);
	h->state = HS_DATA;
	if (h->failed)
		return -1;
	return bodyfilter_forward_finish(f, out);
}

static void
html_free(struct filter *f)
{
	struct html_filter *h = (struct html_filter *)f;

	if (h == NULL)
		return;
	bodyfilter_free_next(f);
	for (size_t i = 0; i < h->nmaps; i++) {
		xfree(h->maps[i].from);
		xfree(h->maps[i].to);
	}
	xfree(h->maps);
	buf_free(&h->tag);
	buf_free(&h->css);
	buf_free(&h->out);
	xfree(h);
}

static const struct filter_ops html_ops = {
    .name = "html",
    .write = html_write,
    .finish = html_finish,
    .free = html_free,
};

struct filter *
html_filter_new(const struct route_html_map *maps, size_t n, bool extended)
{
	struct html_filter *h = xcalloc(1, sizeof(*h));

	h->base.ops = &html_ops;
	h->maps = xcalloc(n ? n : 1, sizeof(*h->maps));
	for (size_t i = 0; i < n; i++) {
		h->maps[i].from = xstrdup(maps[i].from);
		h->maps[i].to = xstrdup(maps[i].to);
	}
	h->nmaps = n;
	h->extended = extended;
	h->state = HS_DATA;
	h->pending_raw = -1;
	buf_init(&h->tag);
	buf_init(&h->css);
	buf_init(&h->out);
	return &h->base;
}

size_t
html_filter_retained(const struct filter *f)
{
	const struct html_filter *h = (const struct html_filter *)f;

	return h->tag.cap + h->css.cap + h->out.cap;
}
