/*
 * config_walk.c: the YAML document walked along the key table
 * (config_keys.h, compiled here).  Every key of a mapping is checked
 * against the table (unknown keys get a "did you mean"), every value is
 * parsed, bounds-checked and stored where its row says, absent keys get the
 * row's default, and lists of scopes are walked item by item.  Errors carry
 * the libyaml mark of the offending node: "file:line:col: key.path: message".
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "config_int.h"
#include "portico/group.h"

#include "config_keys.h"

const size_t config_nkeys = ARRAY_SIZE(config_keys);

int
cfg_node_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 1;
}

int
cfg_node_col(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.column + 1 : 1;
}

/* `s` with its control bytes escaped: a key or value never breaks a message's line. */
static void
add_escaped(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '\n')
			buf_adds(b, "\\n");
		else if (*p == '\t')
			buf_adds(b, "\\t");
		else if (*p < 0x20 || *p == 0x7f)
			buf_addf(b, "\\x%02X", *p);
		else
			buf_addc(b, (char)*p);
	}
}

/* Records the first error as "file:line:col: kp: message", on one line; returns -1. */
PRINTF_LIKE(4, 5)
int
cfg_fail(struct cctx *c, const yaml_node_t *n, const char *kp, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	struct buf b;

	if (c->err != NULL)
		return -1;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	buf_init(&b);
	buf_addf(&b, "%s:%d:%d: ", c->file, cfg_node_line(n), cfg_node_col(n));
	if (kp != NULL && *kp != '\0') {
		add_escaped(&b, kp);
		buf_adds(&b, ": ");
	}
	add_escaped(&b, msg);
	c->err = buf_steal(&b);
	xfree(msg);
	return -1;
}

PRINTF_LIKE(4, 5)
void
cfg_warn(struct cctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;
	struct warning *w;
	struct buf b;
	char *msg;

	c->warns = xgrow(c->warns, &c->capwarns, c->nwarns, sizeof(*c->warns));
	w = &c->warns[c->nwarns++];
	w->line = line;
	w->col = col;
	w->seq = c->nwarns - 1;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	buf_init(&b);
	add_escaped(&b, msg);
	w->text = buf_steal(&b);
	xfree(msg);
}

static bool
node_is_null(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (n->data.scalar.length == 0 || strcmp((char *)n->data.scalar.value, "~") == 0 ||
		strcmp((char *)n->data.scalar.value, "null") == 0);
}

/* `s` in double quotes, control bytes escaped, so that an error stays on one line. */
char *
cfg_quote(const char *s)
{
	struct buf b;

	buf_init(&b);
	buf_addc(&b, '"');
	add_escaped(&b, s);
	buf_addc(&b, '"');
	return buf_steal(&b);
}

/* What was found, for "expected X; got Y". */
static char *
node_describe(const yaml_node_t *n)
{
	if (n == NULL)
		return xstrdup("the built-in default"); /* a table row's default is wrong */
	if (n->type == YAML_MAPPING_NODE)
		return xstrdup("a mapping");
	if (n->type == YAML_SEQUENCE_NODE)
		return xstrdup("a list");
	if (node_is_null(n))
		return xstrdup("an empty value");
	return cfg_quote((const char *)n->data.scalar.value);
}

/* "kp: <prefix><what>; got <n>" */
static int
fail_got(struct cctx *c, const yaml_node_t *n, const char *kp, const char *prefix, const char *what)
{
	char *got = node_describe(n);

	cfg_fail(c, n, kp, "%s%s; got %s", prefix, what, got);
	xfree(got);
	return -1;
}

int
cfg_fail_expected(struct cctx *c, const yaml_node_t *n, const char *kp, const char *expected)
{
	return fail_got(c, n, kp, "expected ", expected);
}

/* `why`: a parser's own message ("expected ..." or what is wrong). */
int
cfg_fail_why(struct cctx *c, const yaml_node_t *n, const char *kp, const char *why)
{
	return fail_got(c, n, kp, "", why);
}

/* Key paths: "routes[2]" + "pass" -> "routes[2].pass" */
void
cfg_kp_join(char *out, const char *dpath, const char *key)
{
	if (*dpath == '\0')
		snprintf(out, KP_MAX, "%s", key);
	else
		snprintf(out, KP_MAX, "%s.%s", dpath, key);
}

static void
kp_index(char *out, const char *dpath, size_t i)
{
	snprintf(out, KP_MAX, "%s[%zu]", dpath, i);
}

yaml_node_t *
cfg_node_get(struct cctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

const char *
cfg_scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* The pair of key `name` in mapping `map` (keys are unique by then), or NULL. */
static yaml_node_pair_t *
map_pair(struct cctx *c, const yaml_node_t *map, const char *name)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = cfg_node_get(c, p->key);

		if (k->type == YAML_SCALAR_NODE && strcmp(cfg_scalar(k), name) == 0)
			return p;
	}
	return NULL;
}

/* The value of key `name`, or NULL. */
yaml_node_t *
cfg_map_get(struct cctx *c, const yaml_node_t *map, const char *name)
{
	yaml_node_pair_t *p = map_pair(c, map, name);

	return p != NULL ? cfg_node_get(c, p->value) : NULL;
}

/* The key node `name` itself, for errors about the key rather than its value. */
yaml_node_t *
cfg_map_get_key(struct cctx *c, const yaml_node_t *map, const char *name)
{
	yaml_node_pair_t *p = map_pair(c, map, name);

	return p != NULL ? cfg_node_get(c, p->key) : NULL;
}

static size_t
seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *
seq_item(struct cctx *c, const yaml_node_t *n, size_t i)
{
	return cfg_node_get(c, n->data.sequence.items.start[i]);
}

/* A "\0" escape would cut the value short where the C strings end: refused, not truncated. */
static bool
scalar_has_nul(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       memchr(n->data.scalar.value, '\0', n->data.scalar.length);
}

int
cfg_need_scalar(struct cctx *c, const yaml_node_t *n, const char *kp, const char *expected)
{
	if (n->type != YAML_SCALAR_NODE || node_is_null(n))
		return cfg_fail_expected(c, n, kp, expected);
	if (scalar_has_nul(n))
		return cfg_fail(c, n, kp, "a value may not hold a NUL byte (\\0)");
	return 0;
}

int
cfg_need_mapping(struct cctx *c, const yaml_node_t *n, const char *kp)
{
	if (n->type != YAML_MAPPING_NODE)
		return cfg_fail_expected(c, n, kp, "a mapping");
	return 0;
}

static int
need_list(struct cctx *c, const yaml_node_t *n, const char *kp, bool nonempty)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return cfg_fail_expected(c, n, kp, "a list");
	if (nonempty && seq_len(n) == 0)
		return cfg_fail(c, n, kp, "expected at least one item; got an empty list");
	return 0;
}

/* The row's key name relative to `scope` ("limits."), or NULL when not a direct child. */
static const char *
key_child_name(const struct ckey *k, const char *scope)
{
	size_t n = strlen(scope);
	const char *rest;

	if (strncmp(k->path, scope, n) != 0)
		return NULL;
	rest = k->path + n;
	if (*rest == '\0' || strchr(rest, '.') != NULL || strchr(rest, '[') != NULL)
		return NULL;
	return rest;
}

size_t
cfg_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 63 || lb >= 63)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, cur, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

/* The closest key of `scope` to `typo`: edit distance <= 2, or one a prefix of the other. */
static const char *
key_suggest(const char *scope, const char *typo)
{
	const char *best = NULL;
	size_t bestd = 3;

	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const char *name = key_child_name(&config_keys[i], scope);
		size_t d;

		if (name == NULL)
			continue;
		d = cfg_edit_distance(typo, name);
		if (d > 1 && *typo != '\0' &&
		    (strncmp(name, typo, strlen(typo)) == 0 ||
		     strncmp(typo, name, strlen(name)) == 0))
			d = 1; /* a prefix says more than two edits */
		if (d < bestd) {
			best = name;
			bestd = d;
		}
	}
	return best;
}

static const struct ckey *
key_find(const char *scope, const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const char *child = key_child_name(&config_keys[i], scope);

		if (child != NULL && strcmp(child, name) == 0)
			return &config_keys[i];
	}
	return NULL;
}

/* Every key of `map` must be a scalar, known in `scope` and unique. */
int
cfg_keys_check(struct cctx *c, const char *scope, const yaml_node_t *map, const char *dpath)
{
	char kp[KP_MAX];

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = cfg_node_get(c, p->key);
		const char *hint;

		if (k->type != YAML_SCALAR_NODE)
			return cfg_fail_expected(c, k, dpath, "a key name");
		if (scalar_has_nul(k))
			return cfg_fail(c, k, dpath, "a key may not hold a NUL byte (\\0)");
		cfg_kp_join(kp, dpath, cfg_scalar(k));
		if (key_find(scope, cfg_scalar(k)) == NULL) {
			hint = key_suggest(scope, cfg_scalar(k));
			if (hint != NULL)
				return cfg_fail(c, k, kp, "unknown key; did you mean \"%s\"?",
						hint);
			return cfg_fail(c, k, kp, "unknown key");
		}
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *prev = cfg_node_get(c, q->key);

			if (prev->type == YAML_SCALAR_NODE &&
			    strcmp(cfg_scalar(prev), cfg_scalar(k)) == 0)
				return cfg_fail(c, k, kp, "duplicate key (first at line %d)",
						cfg_node_line(prev));
		}
	}
	return 0;
}

static const char *
type_noun(const struct ckey *k)
{
	if (k->type == KT_SIZE)
		return "a size";
	if (k->type == KT_DURATION)
		return "a duration";
	return "a number";
}

static int
check_bounds(struct cctx *c, const struct ckey *k, const yaml_node_t *n, const char *kp, uint64_t v)
{
	char lo[32], hi[32], want[128];

	if (v >= k->min && v <= k->max)
		return 0;
	cfg_bound_text(k, lo, sizeof(lo), k->min);
	cfg_bound_text(k, hi, sizeof(hi), k->max);
	if (k->max == UINT64_MAX)
		snprintf(want, sizeof(want), "%s of at least %s", type_noun(k), lo);
	else
		snprintf(want, sizeof(want), "%s from %s to %s", type_noun(k), lo, hi);
	return cfg_fail_expected(c, n, kp, want);
}

void
cfg_choices_text(const struct kchoice *ch, char *out, size_t len, const char *sep)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; ch[i].name != NULL && used < len; i++)
		used += (size_t)snprintf(out + used, len - used, "%s%s", i ? sep : "", ch[i].name);
}

static int
scalar_enum(struct cctx *c, const struct ckey *k, const yaml_node_t *n, const char *kp,
	    const char *s, void *dst)
{
	char list[128], want[160];

	for (size_t i = 0; k->choices[i].name != NULL; i++) {
		if (strcmp(s, k->choices[i].name) == 0) {
			*(int *)dst = k->choices[i].value;
			return 0;
		}
	}
	cfg_choices_text(k->choices, list, sizeof(list), ", ");
	snprintf(want, sizeof(want), "one of %s", list);
	return cfg_fail_expected(c, n, kp, want);
}

static int
scalar_logdest(struct cctx *c, const struct ckey *k, const yaml_node_t *n, const char *kp,
	       const char *s, void *dst)
{
	char list[128], want[192];

	for (size_t i = 0; k->choices[i].name != NULL; i++)
		if (strcmp(s, k->choices[i].name) == 0)
			goto ok;
	if (s[0] != '/') {
		cfg_choices_text(k->choices, list, sizeof(list), ", ");
		snprintf(want, sizeof(want), "%s or an absolute file path", list);
		return cfg_fail_expected(c, n, kp, want);
	}
ok:
	*(char **)dst = xstrdup(s);
	return 0;
}

static int
scalar_number(struct cctx *c, const struct ckey *k, const yaml_node_t *n, const char *kp,
	      const char *s, void *dst)
{
	uint64_t v;
	int rc;

	if (k->type == KT_SIZE) {
		rc = config_parse_size(s, &v);
		if (rc < 0)
			return cfg_fail_expected(c, n, kp,
						 "a size like 512, 16k, 16KiB, 1m, 1MiB or 1GiB");
	} else if (k->type == KT_DURATION) {
		rc = config_parse_duration(s, &v);
		if (rc < 0)
			return cfg_fail_expected(
			    c, n, kp,
			    "a duration with a unit (ms, s, m or h), like 500ms, "
			    "10s, 5m or 1h");
	} else {
		const char *end;

		rc = cfg_parse_uint(s, &v, &end);
		if (rc < 0 || *end != '\0')
			return cfg_fail_expected(c, n, kp, "a whole number");
	}
	if (check_bounds(c, k, n, kp, v) < 0)
		return -1;
	*(uint64_t *)dst = v;
	return 0;
}

static int
scalar_url(struct cctx *c, const yaml_node_t *n, const char *kp, const char *s, void *dst)
{
	const char *why;

	if (url_parse(s, dst, &why) < 0)
		return cfg_fail_why(c, n, kp, why);
	return 0;
}

/* A relative file name is relative to the directory of the configuration file. */
static char *
file_resolve(const char *conf, const char *name)
{
	const char *slash = strrchr(conf, '/');

	if (name[0] == '/' || slash == NULL)
		return xstrdup(name);
	return xasprintf("%.*s/%s", (int)(slash - conf), conf, name);
}

/*
 * Parses the text `s` of a simple row into `base`.  `n` is the node the text
 * came from, or NULL when `s` is the row's default (which cannot fail).
 */
static int
scalar_store(struct cctx *c, const struct ckey *k, const yaml_node_t *n, const char *kp,
	     const char *s, void *base)
{
	void *dst = (char *)base + k->off;

	switch (k->type) {
	case KT_BOOL:
		if (cfg_parse_bool_text(s, dst) < 0)
			return cfg_fail_expected(c, n, kp, "true or false");
		return 0;
	case KT_UINT:
	case KT_SIZE:
	case KT_DURATION:
		return scalar_number(c, k, n, kp, s, dst);
	case KT_ENUM:
		return scalar_enum(c, k, n, kp, s, dst);
	case KT_LOGDEST:
		return scalar_logdest(c, k, n, kp, s, dst);
	case KT_PATH:
		if (s[0] != '/')
			return cfg_fail_expected(c, n, kp, "a path starting with \"/\"");
		/* fallthrough */
	case KT_STRING:
		if (k->check != NULL && !k->check(s))
			return cfg_fail_expected(c, n, kp, k->expected);
		xfree(*(char **)dst);
		*(char **)dst = xstrdup(s);
		return 0;
	case KT_FILE:
		xfree(*(char **)dst);
		*(char **)dst = file_resolve(c->file, s);
		return 0;
	case KT_URL:
		return scalar_url(c, n, kp, s, dst);
	case KT_SECTION:
	case KT_LIST:
	case KT_CUSTOM:
		break;
	}
	abort(); /* a table row with a composite type and no parse function */
}

static int
scalar_parse(struct cctx *c, const struct ckey *k, const yaml_node_t *n, const char *kp, void *base)
{
	const char *expected = k->type == KT_BOOL ? "true or false"
			       : k->expected	  ? k->expected
						  : "a value";

	if (cfg_need_scalar(c, n, kp, expected) < 0)
		return -1;
	return scalar_store(c, k, n, kp, cfg_scalar(n), base);
}

/*
 * Walks the keys of `scope` ("", "limits.", "routes[].") over `map` (NULL:
 * absent, so every key takes its default) into `base`.  `dpath` is the key
 * path shown in errors ("routes[2]").
 */
int
cfg_scope_parse(struct cctx *c, const char *scope, yaml_node_t *map, void *base, const char *dpath)
{
	char kp[KP_MAX];

	if (map != NULL &&
	    (cfg_need_mapping(c, map, dpath) < 0 || cfg_keys_check(c, scope, map, dpath) < 0))
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const struct ckey *k = &config_keys[i];
		const char *name = key_child_name(k, scope);
		yaml_node_t *v;
		int rc = 0;

		if (name == NULL)
			continue;
		v = map != NULL ? cfg_map_get(c, map, name) : NULL;
		cfg_kp_join(kp, dpath, name);
		if (v == NULL && (k->flags & KEY_REQUIRED))
			return cfg_fail(c, map, kp, "required key is missing");
		if (k->parse != NULL && k->expected != NULL) {
			if (v != NULL && cfg_need_scalar(c, v, kp, k->expected) < 0)
				return -1;
			if (v != NULL)
				rc = k->parse(c, k, v, base, kp);
		} else if (k->parse != NULL) {
			rc = k->parse(c, k, v, base, kp);
		} else if (k->type == KT_LIST) {
			rc = cfg_list_parse(c, k, v, base, kp);
		} else if (k->type == KT_SECTION) {
			rc = cfg_row_scope(c, k, ".", v, base, kp);
		} else if (v != NULL) {
			rc = scalar_parse(c, k, v, kp, base);
		} else if (k->def != NULL) {
			rc = scalar_store(c, k, NULL, kp, k->def, base);
		}
		if (rc < 0)
			return -1;
	}
	return 0;
}

/*
 * Parses `n` as the scope below row `k`: "path." for a section, "path[]."
 * for an item of a list (`suffix`).
 */
int
cfg_row_scope(struct cctx *c, const struct ckey *k, const char *suffix, yaml_node_t *n, void *base,
	      const char *kp)
{
	char scope[KP_MAX];

	snprintf(scope, sizeof(scope), "%s%s", k->path, suffix);
	return cfg_scope_parse(c, scope, n, base, kp);
}

/*
 * A KT_LIST row: `n` must be a list (not empty with KEY_NONEMPTY); an array
 * of its length goes to base + k->off, the length to base + k->aux, and
 * every item, with its key path "kp[i]", to the row's item function.
 */
int
cfg_list_parse(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	char ikp[KP_MAX];
	char *items;
	size_t len;

	if (n == NULL)
		return 0;
	if (need_list(c, n, kp, k->flags & KEY_NONEMPTY) < 0)
		return -1;
	len = seq_len(n);
	items = xcalloc(len, k->esize);
	memcpy((char *)base + k->off, &items, sizeof(items)); /* the row's typed array pointer */
	*(size_t *)((char *)base + k->aux) = len;
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *item = seq_item(c, n, i);
		void *elem = items + i * k->esize;
		int rc;

		kp_index(ikp, kp, i);
		if (k->item != NULL)
			rc = k->item(c, k, item, i, ikp, base, elem);
		else
			rc = cfg_row_scope(c, k, "[].", item, elem, ikp);
		if (rc < 0)
			return -1;
	}
	return 0;
}
