/*
 * import_yaml.c: the YAML that `portico import` writes, as a small tree of
 * maps, sequences and scalars with comments attached to entries, and its
 * writer (block style, two spaces per level, comments on the lines before
 * the entry they belong to).  The writer records the line of every entry so
 * that warnings of the -t checks can be attached to the entry they name.
 */
#include <stdarg.h>
#include <string.h>

#include "import_int.h"

/* ---- building ---- */

static struct ynode *
ynode_new(enum ynode_kind kind, const char *value)
{
	struct ynode *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->value = value ? xstrdup(value) : NULL;
	return n;
}

struct ynode *
ynode_scalar(const char *value)
{
	return ynode_new(Y_SCALAR, value);
}

struct ynode *
ynode_raw(const char *value)
{
	return ynode_new(Y_RAW, value);
}

struct ynode *
ynode_map(void)
{
	return ynode_new(Y_MAP, NULL);
}

struct ynode *
ynode_seq(void)
{
	return ynode_new(Y_SEQ, NULL);
}

void
ynode_free(struct ynode *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++) {
		if (n->keys != NULL)
			xfree(n->keys[i]);
		ynode_free(n->items[i]);
	}
	xfree(n->keys);
	xfree(n->items);
	for (size_t i = 0; i < n->ncomments; i++)
		xfree(n->comments[i]);
	xfree(n->comments);
	for (size_t i = 0; i < n->nwarnings; i++)
		xfree(n->warnings[i]);
	xfree(n->warnings);
	xfree(n->value);
	xfree(n);
}

void
ynode_clear_warnings(struct ynode *n)
{
	for (size_t i = 0; i < n->nwarnings; i++)
		xfree(n->warnings[i]);
	xfree(n->warnings);
	n->warnings = NULL;
	n->nwarnings = n->capwarnings = 0;
	for (size_t i = 0; i < n->n; i++)
		ynode_clear_warnings(n->items[i]);
}

bool
ynode_warn_at(struct ynode *n, int line, const char *text)
{
	struct buf b;

	if (n->line == line && n->line > 0) {
		buf_init(&b);
		yaml_comment_text(&b, text);
		n->warnings = xgrow(n->warnings, &n->capwarnings, n->nwarnings, sizeof(char *));
		n->warnings[n->nwarnings++] = buf_steal(&b);
		return true;
	}
	for (size_t i = 0; i < n->n; i++)
		if (ynode_warn_at(n->items[i], line, text))
			return true;
	return false;
}

static void
ynode_append(struct ynode *n, const char *key, struct ynode *child)
{
	size_t cap = n->cap;

	n->items = xgrow(n->items, &n->cap, n->n, sizeof(*n->items));
	if (n->kind == Y_MAP)
		n->keys = xgrow(n->keys, &cap, n->n, sizeof(*n->keys));
	if (n->kind == Y_MAP)
		n->keys[n->n] = xstrdup(key);
	n->items[n->n++] = child;
}

struct ynode *
ynode_put(struct ynode *map, const char *key, struct ynode *child)
{
	PORTICO_ASSERT(map->kind == Y_MAP);
	ynode_append(map, key, child);
	return child;
}

struct ynode *
ynode_put_at(struct ynode *map, size_t at, const char *key, struct ynode *child)
{
	char *k;

	PORTICO_ASSERT(map->kind == Y_MAP && at <= map->n);
	ynode_append(map, key, child);
	k = map->keys[map->n - 1];
	memmove(map->keys + at + 1, map->keys + at, (map->n - 1 - at) * sizeof(*map->keys));
	memmove(map->items + at + 1, map->items + at, (map->n - 1 - at) * sizeof(*map->items));
	map->keys[at] = k;
	map->items[at] = child;
	return child;
}

struct ynode *
ynode_get(const struct ynode *map, const char *key)
{
	for (size_t i = 0; map != NULL && i < map->n; i++)
		if (strcmp(map->keys[i], key) == 0)
			return map->items[i];
	return NULL;
}

struct ynode *
ynode_push(struct ynode *seq, struct ynode *child)
{
	PORTICO_ASSERT(seq->kind == Y_SEQ);
	ynode_append(seq, NULL, child);
	return child;
}

static void
ynode_add_comment(struct ynode *n, char *text)
{
	for (size_t i = 0; i < n->ncomments; i++)
		if (strcmp(n->comments[i], text) == 0) {
			xfree(text);
			return;
		}
	n->comments = xgrow(n->comments, &n->capcomments, n->ncomments, sizeof(*n->comments));
	n->comments[n->ncomments++] = text;
}

void
ynode_comment_first(struct ynode *n, const char *text)
{
	struct buf b;

	buf_init(&b);
	yaml_comment_text(&b, text);
	n->comments = xgrow(n->comments, &n->capcomments, n->ncomments, sizeof(*n->comments));
	memmove(n->comments + 1, n->comments, n->ncomments * sizeof(*n->comments));
	n->comments[0] = buf_steal(&b);
	n->ncomments++;
}

void
ynode_comment(struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	char *raw;
	struct buf b;

	va_start(ap, fmt);
	raw = xvasprintf(fmt, ap);
	va_end(ap);
	buf_init(&b);
	yaml_comment_text(&b, raw);
	xfree(raw);
	ynode_add_comment(n, buf_steal(&b));
}

void
ynode_source(struct ynode *n, adir *d)
{
	if (d == NULL)
		return;
	ynode_comment(n, "%s:%u: %s", d->file, d->line, d->text);
	if (d->within != NULL)
		ynode_comment(n, "  inside %s, followed as if true", d->within);
}

bool
ynode_equal(const struct ynode *a, const struct ynode *b)
{
	if (a->kind != b->kind || a->n != b->n)
		return false;
	if (a->value != NULL || b->value != NULL)
		return a->value != NULL && b->value != NULL && strcmp(a->value, b->value) == 0;
	for (size_t i = 0; i < a->n; i++) {
		if (a->kind == Y_MAP && strcmp(a->keys[i], b->keys[i]) != 0)
			return false;
		if (!ynode_equal(a->items[i], b->items[i]))
			return false;
	}
	return true;
}

struct ynode *
ynode_copy(const struct ynode *n)
{
	struct ynode *c = ynode_new(n->kind, n->value);

	for (size_t i = 0; i < n->n; i++)
		ynode_append(c, n->keys ? n->keys[i] : NULL, ynode_copy(n->items[i]));
	for (size_t i = 0; i < n->ncomments; i++)
		ynode_add_comment(c, xstrdup(n->comments[i]));
	return c;
}

/* ---- text ---- */

/* The length of the UTF-8 sequence at `s` (1..4), or 0 when it is not valid. */
static size_t
utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned min;
	unsigned v;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, min = 0x80, v = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, min = 0x800, v = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, min = 0x10000, v = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return n;
}

void
yaml_comment_text(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f))) {
			buf_addc(out, *p == '\t' ? ' ' : '?');
			p++;
			continue;
		}
		buf_add(out, p, n);
		p += n;
	}
}

bool
yaml_text_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f)))
			return false;
		p += n;
	}
	return true;
}

static bool
yaml_is_reserved(const char *s)
{
	static const char *const words[] = {"true", "false", "yes", "no", "on",
					    "off",  "null",  "y",   "n",  "~"};

	for (size_t i = 0; i < ARRAY_SIZE(words); i++)
		if (strcasecmp(s, words[i]) == 0)
			return true;
	return false;
}

/* A plain scalar when it cannot be read as anything else, else single-quoted. */
static void
yaml_scalar(struct buf *out, const char *s)
{
	static const char plain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				    "0123456789._/:$~%+=?&,@-";
	bool ok = *s != '\0' && strchr("-:?,", s[0]) == NULL && s[strspn(s, plain)] == '\0' &&
		  !yaml_is_reserved(s) && s[strlen(s) - 1] != ':';

	if (ok) {
		buf_adds(out, s);
		return;
	}
	buf_addc(out, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			buf_addc(out, '\'');
		buf_addc(out, *s);
	}
	buf_addc(out, '\'');
}

/* ---- writing ---- */

struct ywriter {
	struct buf *out;
	int line;
};

static void
yw_indent(struct ywriter *w, int indent)
{
	for (int i = 0; i < indent; i++)
		buf_addc(w->out, ' ');
}

static void
yw_comment_lines(struct ywriter *w, char *const *lines, size_t n, const char *prefix, int indent)
{
	for (size_t i = 0; i < n; i++) {
		yw_indent(w, indent);
		buf_adds(w->out, lines[i][0] || prefix[0] ? "# " : "#");
		buf_adds(w->out, prefix);
		buf_adds(w->out, lines[i]);
		buf_addc(w->out, '\n');
		w->line++;
	}
}

static void
yw_comments(struct ywriter *w, const struct ynode *n, int indent)
{
	if (n == NULL)
		return;
	yw_comment_lines(w, n->comments, n->ncomments, "", indent);
	yw_comment_lines(w, n->warnings, n->nwarnings, "portico -t: ", indent);
}

static void yw_block(struct ywriter *w, struct ynode *n, int indent);

/* What follows "key:" or "- ": a scalar on the same line, or a block below. */
static void
yw_after_key(struct ywriter *w, struct ynode *n, int indent)
{
	if (n->kind == Y_SCALAR || n->kind == Y_RAW) {
		buf_addc(w->out, ' ');
		if (n->kind == Y_RAW)
			buf_adds(w->out, n->value);
		else
			yaml_scalar(w->out, n->value);
		buf_addc(w->out, '\n');
		w->line++;
		return;
	}
	if (n->n == 0) {
		buf_adds(w->out, n->kind == Y_MAP ? " {}\n" : " []\n");
		w->line++;
		return;
	}
	buf_addc(w->out, '\n');
	w->line++;
	yw_block(w, n, indent + 2);
}

/* The entries [from, to) of a map. */
static void
yw_map_entries(struct ywriter *w, struct ynode *map, size_t from, size_t to, int indent)
{
	for (size_t i = from; i < to; i++) {
		yw_comments(w, map->items[i], indent);
		yw_indent(w, indent);
		map->items[i]->line = w->line;
		yaml_scalar(w->out, map->keys[i]);
		buf_addc(w->out, ':');
		yw_after_key(w, map->items[i], indent);
	}
}

static void
yw_seq_item(struct ywriter *w, struct ynode *item, int indent)
{
	struct ynode *first = item->kind == Y_MAP && item->n > 0 ? item->items[0] : NULL;

	yw_comments(w, item, indent);
	yw_comments(w, first, indent);
	yw_indent(w, indent);
	item->line = w->line;
	buf_adds(w->out, "-");
	if (first == NULL) {
		yw_after_key(w, item, indent);
		return;
	}
	buf_addc(w->out, ' ');
	first->line = w->line;
	yaml_scalar(w->out, item->keys[0]);
	buf_addc(w->out, ':');
	yw_after_key(w, first, indent + 2);
	yw_map_entries(w, item, 1, item->n, indent + 2);
}

static void
yw_block(struct ywriter *w, struct ynode *n, int indent)
{
	if (n->kind == Y_MAP) {
		yw_map_entries(w, n, 0, n->n, indent);
		return;
	}
	for (size_t i = 0; i < n->n; i++)
		yw_seq_item(w, n->items[i], indent);
}

/* Top-level keys are separated by an empty line. */
void
ynode_write(struct ynode *root, struct buf *out)
{
	struct ywriter w = {.out = out, .line = 1};

	yw_comments(&w, root, 0);
	for (size_t i = 0; i < root->n; i++) {
		buf_addc(out, '\n');
		w.line++;
		yw_map_entries(&w, root, i, i + 1, 0);
	}
}
