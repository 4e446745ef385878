/*
 * config.c: portico.yaml into an immutable, reference-counted snapshot
 * (SPEC section 2).  The YAML document is walked along the key table of
 * config_keys.h: every key is checked against the table (unknown keys get a
 * "did you mean"), every value is parsed, bounds-checked and stored where
 * its row says, and absent keys get the row's default.  Errors carry the
 * libyaml mark of the offending node: "file:line:col: key.path: message".
 * The -t warnings (shadowed rules, slash mismatches, unverified upstreams,
 * open public listeners) are collected on the snapshot.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <yaml.h>

#include "portico/config.h"

struct warning {
	int line, col;
	size_t seq; /* order of discovery, for a stable sort */
	char *text;
};

/* The state of one load: the document, the snapshot being filled, the first error. */
struct cctx {
	const char *file;
	yaml_document_t *doc;
	struct config *cfg;
	char *err;
	struct warning *warns;
	size_t nwarns, capwarns;
};

enum ktype {
	KT_SECTION, /* a mapping of further keys */
	KT_BOOL,
	KT_UINT,
	KT_SIZE,
	KT_DURATION,
	KT_STRING,
	KT_ENUM,
	KT_PATH,    /* a string starting with "/" */
	KT_URL,	    /* struct url */
	KT_FILE,    /* a file name; read by whoever checks it */
	KT_LOGDEST, /* one of the choices or an absolute path */
	KT_LIST,    /* a list of "path[]." scopes, see struct ckey */
	KT_CUSTOM,  /* the row's parse function */
};

struct kchoice {
	const char *name;
	int value;
};

struct ckey;
/* Parses `node` (NULL when the key is absent) into `base`; `kp` is the key path shown. */
typedef int key_parse_fn(struct cctx *c, const struct ckey *k, yaml_node_t *node, void *base,
			 const char *kp);
/*
 * Parses item `i` of the list of row `k`, whose key path is `ikp`, into
 * `elem` (zeroed); `base` is the struct that holds the list.
 */
typedef int list_item_fn(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i,
			 const char *ikp, void *base, void *elem);

#define KEY_REQUIRED 0x1
#define KEY_NONEMPTY 0x2 /* KT_LIST: an empty list is an error */

struct ckey {
	const char *path; /* "limits.header_size", "routes[].pass" */
	enum ktype type;
	const char *tname;  /* type shown in the man page when not implied by `type` */
	const char *def;    /* default as text, NULL: none (or computed, see defdoc) */
	const char *defdoc; /* the default in words when `def` is NULL */
	uint64_t min, max;  /* KT_UINT, KT_SIZE (bytes), KT_DURATION (ms) */
	const struct kchoice *choices;
	size_t off;	    /* where the value goes in the scope's struct (KT_LIST: the array) */
	size_t aux;	    /* KT_LIST: where the item count (size_t) goes */
	size_t esize;	    /* KT_LIST: the size of one item */
	list_item_fn *item; /* KT_LIST: parses one item; NULL: the scope "path[]." */
	size_t has;	    /* key_access: the bool set when the list is present */
	bool (*check)(const char *s); /* KT_STRING: what a valid value is, as `expected` says */
	/* What a value must be.  With `parse`: the key is a scalar, checked before the call. */
	const char *expected;
	key_parse_fn *parse;
	unsigned flags;
	const char *help;
};

static key_parse_fn key_address, key_listen_tls, key_workers, key_admin_listen, key_hosts,
    key_access, key_match, key_pass, key_route_host, key_html, key_route_tls, key_server_name;
static list_item_fn listen_item, cert_item, access_item, route_item;

#define ADDR_EXPECTED                                                                              \
	"\"host:port\", \"[v6]:port\" or \"*:port\" with a numeric address and a port in 1..65535"

/* Checks of KT_STRING values, named by the key table. */
static bool check_route_name(const char *s);
static bool check_tls_server_name(const char *s);

#include "config_keys.h"

#define KP_MAX 256

/* Errors and warnings */

static int
node_line(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.line + 1 : 1;
}

static int
node_col(const yaml_node_t *n)
{
	return n ? (int)n->start_mark.column + 1 : 1;
}

/* Records the first error as "file:line:col: kp: message"; returns -1. */
PRINTF_LIKE(4, 5)
static int
fail(struct cctx *c, const yaml_node_t *n, const char *kp, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (c->err != NULL)
		return -1;
	va_start(ap, fmt);
	msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (kp != NULL && *kp != '\0')
		c->err = xasprintf("%s:%d:%d: %s: %s", c->file, node_line(n), node_col(n), kp, msg);
	else
		c->err = xasprintf("%s:%d:%d: %s", c->file, node_line(n), node_col(n), msg);
	xfree(msg);
	return -1;
}

PRINTF_LIKE(4, 5)
static void
warn(struct cctx *c, int line, int col, const char *fmt, ...)
{
	va_list ap;
	struct warning *w;

	c->warns = xgrow(c->warns, &c->capwarns, c->nwarns, sizeof(*c->warns));
	w = &c->warns[c->nwarns++];
	w->line = line;
	w->col = col;
	w->seq = c->nwarns - 1;
	va_start(ap, fmt);
	w->text = xvasprintf(fmt, ap);
	va_end(ap);
}

static bool
node_is_null(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (n->data.scalar.length == 0 || strcmp((char *)n->data.scalar.value, "~") == 0 ||
		strcmp((char *)n->data.scalar.value, "null") == 0);
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
	return xasprintf("\"%s\"", (const char *)n->data.scalar.value);
}

/* "kp: <prefix><what>; got <n>" */
static int
fail_got(struct cctx *c, const yaml_node_t *n, const char *kp, const char *prefix, const char *what)
{
	char *got = node_describe(n);

	fail(c, n, kp, "%s%s; got %s", prefix, what, got);
	xfree(got);
	return -1;
}

static int
fail_expected(struct cctx *c, const yaml_node_t *n, const char *kp, const char *expected)
{
	return fail_got(c, n, kp, "expected ", expected);
}

/* `why`: a parser's own message ("expected ..." or what is wrong). */
static int
fail_why(struct cctx *c, const yaml_node_t *n, const char *kp, const char *why)
{
	return fail_got(c, n, kp, "", why);
}

/* Key paths: "routes[2]" + "pass" -> "routes[2].pass" */
static void
kp_join(char *out, const char *dpath, const char *key)
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

/* YAML nodes */

static yaml_node_t *
node_get(struct cctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static const char *
scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* The pair of key `name` in mapping `map` (keys are unique by then), or NULL. */
static yaml_node_pair_t *
map_pair(struct cctx *c, const yaml_node_t *map, const char *name)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_get(c, p->key);

		if (k->type == YAML_SCALAR_NODE && strcmp(scalar(k), name) == 0)
			return p;
	}
	return NULL;
}

/* The value of key `name`, or NULL. */
static yaml_node_t *
map_get(struct cctx *c, const yaml_node_t *map, const char *name)
{
	yaml_node_pair_t *p = map_pair(c, map, name);

	return p != NULL ? node_get(c, p->value) : NULL;
}

/* The key node `name` itself, for errors about the key rather than its value. */
static yaml_node_t *
map_get_key(struct cctx *c, const yaml_node_t *map, const char *name)
{
	yaml_node_pair_t *p = map_pair(c, map, name);

	return p != NULL ? node_get(c, p->key) : NULL;
}

static size_t
seq_len(const yaml_node_t *n)
{
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *
seq_item(struct cctx *c, const yaml_node_t *n, size_t i)
{
	return node_get(c, n->data.sequence.items.start[i]);
}

/* A "\0" escape would cut the value short where the C strings end: refused, not truncated. */
static bool
scalar_has_nul(const yaml_node_t *n)
{
	return n->type == YAML_SCALAR_NODE &&
	       memchr(n->data.scalar.value, '\0', n->data.scalar.length);
}

static int
need_scalar(struct cctx *c, const yaml_node_t *n, const char *kp, const char *expected)
{
	if (n->type != YAML_SCALAR_NODE || node_is_null(n))
		return fail_expected(c, n, kp, expected);
	if (scalar_has_nul(n))
		return fail(c, n, kp, "a value may not hold a NUL byte (\\0)");
	return 0;
}

static int
need_mapping(struct cctx *c, const yaml_node_t *n, const char *kp)
{
	if (n->type != YAML_MAPPING_NODE)
		return fail_expected(c, n, kp, "a mapping");
	return 0;
}

static int
need_list(struct cctx *c, const yaml_node_t *n, const char *kp, bool nonempty)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return fail_expected(c, n, kp, "a list");
	if (nonempty && seq_len(n) == 0)
		return fail(c, n, kp, "expected at least one item; got an empty list");
	return 0;
}

/* The key table */

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

static size_t
edit_distance(const char *a, const char *b)
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
		d = edit_distance(typo, name);
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
static int
keys_check(struct cctx *c, const char *scope, const yaml_node_t *map, const char *dpath)
{
	char kp[KP_MAX];

	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = node_get(c, p->key);
		const char *hint;

		if (k->type != YAML_SCALAR_NODE)
			return fail_expected(c, k, dpath, "a key name");
		if (scalar_has_nul(k))
			return fail(c, k, dpath, "a key may not hold a NUL byte (\\0)");
		kp_join(kp, dpath, scalar(k));
		if (key_find(scope, scalar(k)) == NULL) {
			hint = key_suggest(scope, scalar(k));
			if (hint != NULL)
				return fail(c, k, kp, "unknown key; did you mean \"%s\"?", hint);
			return fail(c, k, kp, "unknown key");
		}
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *prev = node_get(c, q->key);

			if (prev->type == YAML_SCALAR_NODE && strcmp(scalar(prev), scalar(k)) == 0)
				return fail(c, k, kp, "duplicate key (first at line %d)",
					    node_line(prev));
		}
	}
	return 0;
}

/* Scalar values */

static int
parse_uint(const char *s, uint64_t *out, const char **end)
{
	uint64_t v = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*out = v;
	*end = p;
	return 0;
}

static int
scale(uint64_t v, uint64_t unit, uint64_t *out)
{
	if (v != 0 && unit > UINT64_MAX / v)
		return -1;
	*out = v * unit;
	return 0;
}

/* A unit a number may carry: "KiB", "s". */
struct unit {
	const char *suffix;
	uint64_t unit;
};

static const struct unit size_units[] = {
    {"", 1},	{"k", KIB},   {"K", KIB}, {"KiB", KIB}, {"m", MIB},
    {"M", MIB}, {"MiB", MIB}, {"g", GIB}, {"G", GIB},	{"GiB", GIB},
};

static const struct unit duration_units[] = {
    {"ms", 1},
    {"s", SEC},
    {"m", MIN},
    {"h", HOUR},
};

/* How bounds are written: the largest unit that divides the value; the last is 1. */
static const struct unit size_text_units[] = {
    {"GiB", GIB},
    {"MiB", MIB},
    {"KiB", KIB},
    {"", 1},
};

static const struct unit duration_text_units[] = {
    {"h", HOUR},
    {"m", MIN},
    {"s", SEC},
    {"ms", 1},
};

/* A number followed by one of the `n` suffixes of `units`, times that unit. */
static int
parse_units(const char *s, const struct unit *units, size_t n, uint64_t *out)
{
	const char *end;
	uint64_t v;

	if (parse_uint(s, &v, &end) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(end, units[i].suffix) == 0)
			return scale(v, units[i].unit, out);
	return -1;
}

int
config_parse_size(const char *s, uint64_t *out)
{
	return parse_units(s, size_units, ARRAY_SIZE(size_units), out);
}

int
config_parse_duration(const char *s, uint64_t *out_ms)
{
	return parse_units(s, duration_units, ARRAY_SIZE(duration_units), out_ms);
}

/* `v` in the first of the `n` units (largest first) that divides it; 0 in the last. */
static void
units_text(char *out, size_t len, uint64_t v, const struct unit *units, size_t n)
{
	size_t i = 0;

	while (i + 1 < n && (v == 0 || v % units[i].unit != 0))
		i++;
	snprintf(out, len, "%" PRIu64 "%s", v / units[i].unit, units[i].suffix);
}

/* A bound in the unit a person would write it in. */
static void
bound_text(const struct ckey *k, char *out, size_t len, uint64_t v)
{
	if (k->type == KT_SIZE)
		units_text(out, len, v, size_text_units, ARRAY_SIZE(size_text_units));
	else if (k->type == KT_DURATION && v == 0)
		snprintf(out, len, "0s");
	else if (k->type == KT_DURATION)
		units_text(out, len, v, duration_text_units, ARRAY_SIZE(duration_text_units));
	else
		snprintf(out, len, "%" PRIu64, v);
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
	bound_text(k, lo, sizeof(lo), k->min);
	bound_text(k, hi, sizeof(hi), k->max);
	if (k->max == UINT64_MAX)
		snprintf(want, sizeof(want), "%s of at least %s", type_noun(k), lo);
	else
		snprintf(want, sizeof(want), "%s from %s to %s", type_noun(k), lo, hi);
	return fail_expected(c, n, kp, want);
}

static int
parse_bool_text(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE"};
	static const char *const no[] = {"false", "False", "FALSE"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

static void
choices_text(const struct kchoice *ch, char *out, size_t len, const char *sep)
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
	choices_text(k->choices, list, sizeof(list), ", ");
	snprintf(want, sizeof(want), "one of %s", list);
	return fail_expected(c, n, kp, want);
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
		choices_text(k->choices, list, sizeof(list), ", ");
		snprintf(want, sizeof(want), "%s or an absolute file path", list);
		return fail_expected(c, n, kp, want);
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
			return fail_expected(c, n, kp,
					     "a size like 512, 16k, 16KiB, 1m, 1MiB or 1GiB");
	} else if (k->type == KT_DURATION) {
		rc = config_parse_duration(s, &v);
		if (rc < 0)
			return fail_expected(c, n, kp,
					     "a duration with a unit (ms, s, m or h), like 500ms, "
					     "10s, 5m or 1h");
	} else {
		const char *end;

		rc = parse_uint(s, &v, &end);
		if (rc < 0 || *end != '\0')
			return fail_expected(c, n, kp, "a whole number");
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
		return fail_why(c, n, kp, why);
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
		if (parse_bool_text(s, dst) < 0)
			return fail_expected(c, n, kp, "true or false");
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
			return fail_expected(c, n, kp, "a path starting with \"/\"");
		/* fallthrough */
	case KT_STRING:
		if (k->check != NULL && !k->check(s))
			return fail_expected(c, n, kp, k->expected);
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

	if (need_scalar(c, n, kp, expected) < 0)
		return -1;
	return scalar_store(c, k, n, kp, scalar(n), base);
}

static key_parse_fn list_parse;
static int row_scope(struct cctx *c, const struct ckey *k, const char *suffix, yaml_node_t *n,
		     void *base, const char *kp);

/*
 * Walks the keys of `scope` ("", "limits.", "routes[].") over `map` (NULL:
 * absent, so every key takes its default) into `base`.  `dpath` is the key
 * path shown in errors ("routes[2]").
 */
static int
scope_parse(struct cctx *c, const char *scope, yaml_node_t *map, void *base, const char *dpath)
{
	char kp[KP_MAX];

	if (map != NULL &&
	    (need_mapping(c, map, dpath) < 0 || keys_check(c, scope, map, dpath) < 0))
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const struct ckey *k = &config_keys[i];
		const char *name = key_child_name(k, scope);
		yaml_node_t *v;
		int rc = 0;

		if (name == NULL)
			continue;
		v = map != NULL ? map_get(c, map, name) : NULL;
		kp_join(kp, dpath, name);
		if (v == NULL && (k->flags & KEY_REQUIRED))
			return fail(c, map, kp, "required key is missing");
		if (k->parse != NULL && k->expected != NULL) {
			if (v != NULL && need_scalar(c, v, kp, k->expected) < 0)
				return -1;
			if (v != NULL)
				rc = k->parse(c, k, v, base, kp);
		} else if (k->parse != NULL) {
			rc = k->parse(c, k, v, base, kp);
		} else if (k->type == KT_LIST) {
			rc = list_parse(c, k, v, base, kp);
		} else if (k->type == KT_SECTION) {
			rc = row_scope(c, k, ".", v, base, kp);
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
static int
row_scope(struct cctx *c, const struct ckey *k, const char *suffix, yaml_node_t *n, void *base,
	  const char *kp)
{
	char scope[KP_MAX];

	snprintf(scope, sizeof(scope), "%s%s", k->path, suffix);
	return scope_parse(c, scope, n, base, kp);
}

/*
 * A KT_LIST row: `n` must be a list (not empty with KEY_NONEMPTY); an array
 * of its length goes to base + k->off, the length to base + k->aux, and
 * every item, with its key path "kp[i]", to the row's item function.
 */
static int
list_parse(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
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
			rc = row_scope(c, k, "[].", item, elem, ikp);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* Addresses */

static bool
addr_is_loopback(const struct sockaddr_storage *ss)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	const struct sockaddr_in6 *in6 = (const void *)ss;
	if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
		return true;
	return memcmp(in6->sin6_addr.s6_addr, mapped, 12) == 0 && in6->sin6_addr.s6_addr[12] == 127;
}

static int
addr_port(const char *s, uint16_t *port)
{
	const char *end;
	uint64_t v;

	if (parse_uint(s, &v, &end) < 0 || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* "host:port", "[v6]:port" or "*:port", numeric only. */
static int
addr_parse(const char *s, struct sockaddr_storage *ss, socklen_t *salen, bool *any)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *h = s;
	size_t hlen;
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	*any = false;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		h = s + 1;
		hlen = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hlen = (size_t)(colon - s);
	}
	if (hlen == 0 || hlen >= sizeof(host) || addr_port(colon + 1, &port) < 0)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (s[0] != '[' && strcmp(host, "*") == 0) {
		struct sockaddr_in6 *in6 = (void *)ss;

		*any = true;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_any;
		in6->sin6_port = htons(port);
		*salen = sizeof(*in6);
		return 0;
	}
	if (s[0] != '[') {
		struct sockaddr_in *in = (void *)ss;

		if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*salen = sizeof(*in);
		return 0;
	}
	struct sockaddr_in6 *in6 = (void *)ss;
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
		return -1;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	*salen = sizeof(*in6);
	return 0;
}

/* A listening address: parsed into *ss, *salen and *any, its text copied to *text. */
static int
addr_value(struct cctx *c, const yaml_node_t *n, const char *kp, struct sockaddr_storage *ss,
	   socklen_t *salen, bool *any, char **text)
{
	if (addr_parse(scalar(n), ss, salen, any) < 0)
		return fail_expected(c, n, kp, ADDR_EXPECTED);
	*text = xstrdup(scalar(n));
	return 0;
}

static int
key_address(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config_listen *l = base;

	(void)k;
	if (addr_value(c, n, kp, &l->sa, &l->salen, &l->any, &l->address) < 0)
		return -1;
	l->public = !addr_is_loopback(&l->sa);
	return 0;
}

static int
key_admin_listen(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config *cfg = base;
	bool any;

	(void)k;
	return addr_value(c, n, kp, &cfg->admin.sa, &cfg->admin.salen, &any, &cfg->admin.listen);
}

static int
key_workers(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config *cfg = base;
	const char *s = k->def, *end;
	char want[64];
	uint64_t v;

	if (n != NULL) {
		if (need_scalar(c, n, kp, "auto or a number") < 0)
			return -1;
		s = scalar(n);
	}
	if (strcmp(s, "auto") == 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		cfg->workers = cpus < 1		     ? 1
			       : cpus > (long)k->max ? (unsigned)k->max
						     : (unsigned)cpus;
		return 0;
	}
	snprintf(want, sizeof(want), "auto or a number from %" PRIu64 " to %" PRIu64, k->min,
		 k->max);
	if (parse_uint(s, &v, &end) < 0 || *end != '\0' || v < k->min || v > k->max)
		return fail_expected(c, n, kp, want);
	cfg->workers = (unsigned)v;
	return 0;
}

/* TLS files, checked with OpenSSL */

/* The first (most specific) OpenSSL error of the failed call. */
static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "unknown error";
}

static SSL_CTX *
ssl_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_method());

	if (ctx == NULL)
		fatal("SSL_CTX_new: out of memory");
	return ctx;
}

static int
file_readable(struct cctx *c, const yaml_node_t *n, const char *kp, const char *path)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return fail(c, n, kp, "cannot open \"%s\": %s", path, strerror(errno));
	fclose(f);
	return 0;
}

/*
 * Loads a certificate chain and, in a second context, its key, then checks
 * that they belong together; errors point at the node of the failing file.
 */
static int
tls_check_pair(struct cctx *c, const yaml_node_t *map, const char *dpath, const char *cert,
	       const char *key)
{
	yaml_node_t *cn = map_get(c, map, "cert"), *kn = map_get(c, map, "key");
	SSL_CTX *cctx = ssl_ctx_new(), *kctx = ssl_ctx_new();
	char ckp[KP_MAX], kkp[KP_MAX];
	int rc = -1;

	kp_join(ckp, dpath, "cert");
	kp_join(kkp, dpath, "key");
	ERR_clear_error();
	if (file_readable(c, cn, ckp, cert) < 0 || file_readable(c, kn, kkp, key) < 0)
		goto fail;
	if (SSL_CTX_use_certificate_chain_file(cctx, cert) != 1) {
		fail(c, cn, ckp, "cannot load a PEM certificate chain from \"%s\": %s", cert,
		     ssl_reason());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(kctx, key, SSL_FILETYPE_PEM) != 1) {
		fail(c, kn, kkp, "cannot load a PEM private key from \"%s\": %s", key,
		     ssl_reason());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(cctx, SSL_CTX_get0_privatekey(kctx)) != 1 ||
	    SSL_CTX_check_private_key(cctx) != 1) {
		fail(c, kn, kkp, "the key in \"%s\" does not match the certificate in \"%s\": %s",
		     key, cert, ssl_reason());
		goto fail;
	}
	rc = 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(cctx);
	SSL_CTX_free(kctx);
	return rc;
}

/* A CA file must hold at least one PEM certificate OpenSSL accepts. */
static int
tls_check_ca(struct cctx *c, const yaml_node_t *n, const char *kp, const char *path)
{
	SSL_CTX *ctx = ssl_ctx_new();
	int rc = -1;

	ERR_clear_error();
	if (file_readable(c, n, kp, path) < 0)
		goto fail;
	if (SSL_CTX_load_verify_file(ctx, path) != 1) {
		fail(c, n, kp, "cannot load PEM CA certificates from \"%s\": %s", path,
		     ssl_reason());
		goto fail;
	}
	rc = 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

static int
tls_check_ciphers(struct cctx *c, const yaml_node_t *map, const char *dpath,
		  const struct config_listen *l)
{
	SSL_CTX *ctx = ssl_ctx_new();
	char kp[KP_MAX];
	int rc = -1;

	if (l->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, l->ciphers) != 1) {
		kp_join(kp, dpath, "ciphers");
		fail_expected(c, map_get(c, map, "ciphers"), kp, "an OpenSSL cipher list");
		goto fail;
	}
	if (l->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, l->ciphersuites) != 1) {
		kp_join(kp, dpath, "ciphersuites");
		fail_expected(c, map_get(c, map, "ciphersuites"), kp,
			      "OpenSSL TLS 1.3 cipher suites");
		goto fail;
	}
	rc = 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return rc;
}

/* Listeners */

static int
cert_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
	  void *base, void *elem)
{
	struct config_cert *cert = elem;

	(void)i;
	(void)base;
	if (row_scope(c, k, "[].", item, cert, ikp) < 0)
		return -1;
	return tls_check_pair(c, item, ikp, cert->cert, cert->key);
}

static int
key_listen_tls(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config_listen *l = base;

	l->tls_min_version = TLS1_2_VERSION;
	if (n == NULL)
		return 0;
	l->tls = true;
	if (row_scope(c, k, ".", n, l, kp) < 0)
		return -1;
	return tls_check_ciphers(c, n, kp, l);
}

static int
listen_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
	    void *base, void *elem)
{
	struct config *cfg = base;
	struct config_listen *l = elem;

	l->line = node_line(item);
	l->col = node_col(item);
	l->tls_min_version = TLS1_2_VERSION;
	if (item->type == YAML_SCALAR_NODE) {
		if (need_scalar(c, item, ikp, ADDR_EXPECTED) < 0 ||
		    key_address(c, NULL, item, l, ikp) < 0)
			return -1;
	} else if (item->type != YAML_MAPPING_NODE) {
		return fail_expected(c, item, ikp, "an address or a mapping with address");
	} else if (row_scope(c, k, "[].", item, l, ikp) < 0) {
		return -1;
	}
	for (size_t j = 0; j < i; j++)
		if (cfg->listen[j].salen == l->salen &&
		    memcmp(&cfg->listen[j].sa, &l->sa, l->salen) == 0)
			return fail(c, item, ikp, "the same address as listen[%zu] (line %d)", j,
				    cfg->listen[j].line);
	return 0;
}

/* hosts, access, reverse */

static bool
hostname_is_valid(const char *s, bool wildcard)
{
	if (wildcard && s[0] == '*' && s[1] == '.')
		s += 2;
	if (*s == '\0' || *s == '.')
		return false;
	for (; *s; s++) {
		char ch = ascii_lower(*s);

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
		      ch == '.' || ch == '_'))
			return false;
	}
	return true;
}

static bool
addr_is_numeric(const char *s)
{
	uint8_t tmp[16];

	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

static bool
host_is_v6_literal(const char *s)
{
	size_t n = strlen(s);
	char tmp[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;

	if (n < 3 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(tmp))
		return false;
	memcpy(tmp, s + 1, n - 2);
	tmp[n - 2] = '\0';
	return inet_pton(AF_INET6, tmp, &a) == 1;
}

static char *
lower_dup(const char *s)
{
	char *d = xstrdup(s);

	for (char *p = d; *p; p++)
		*p = ascii_lower(*p);
	return d;
}

/*
 * routes[].name: a label that log lines carry as route=NAME and metrics as a
 * label value, so one token.
 */
static bool
check_route_name(const char *s)
{
	return s[strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-:")] ==
	       '\0';
}

/* routes[].tls.server_name: what SNI carries and the certificate must name, or an address. */
static bool
check_tls_server_name(const char *s)
{
	return hostname_is_valid(s, false) || addr_is_numeric(s);
}

static int
key_hosts(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config *cfg = base;
	char ikp[KP_MAX];
	size_t len, i = 0;

	(void)k;
	if (n == NULL)
		return 0;
	if (need_mapping(c, n, kp) < 0)
		return -1;
	len = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	cfg->hosts = xcalloc(len, sizeof(*cfg->hosts));
	for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
	     p++, i++) {
		yaml_node_t *name = node_get(c, p->key), *addr = node_get(c, p->value);

		if (need_scalar(c, name, kp, "a host name") < 0)
			return -1;
		kp_join(ikp, kp, scalar(name));
		if (!hostname_is_valid(scalar(name), false))
			return fail_expected(c, name, ikp, "a host name");
		for (size_t j = 0; j < i; j++)
			if (strcasecmp(cfg->hosts[j].name, scalar(name)) == 0)
				return fail(c, name, ikp, "duplicate host name");
		if (need_scalar(c, addr, ikp, "a numeric IPv4 or IPv6 address") < 0)
			return -1;
		if (!addr_is_numeric(scalar(addr)))
			return fail_expected(c, addr, ikp, "a numeric IPv4 or IPv6 address");
		cfg->hosts[i].name = lower_dup(scalar(name));
		cfg->hosts[i].addr = xstrdup(scalar(addr));
		cfg->nhosts = i + 1;
	}
	return 0;
}

/* One access item: a mapping with exactly one of allow and deny. */
static int
access_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
	    void *base, void *elem)
{
	struct access_rule *r = elem;
	yaml_node_t *allow, *deny, *v;
	const char *why;
	char kp[KP_MAX];

	(void)k;
	(void)i;
	(void)base;
	if (need_mapping(c, item, ikp) < 0 || keys_check(c, "access[].", item, ikp) < 0)
		return -1;
	allow = map_get(c, item, "allow");
	deny = map_get(c, item, "deny");
	if (allow != NULL && deny != NULL)
		return fail(c, map_get_key(c, item, "deny"), ikp,
			    "expected exactly one of allow or deny; got both");
	if (allow == NULL && deny == NULL)
		return fail(c, item, ikp, "expected allow or deny; got neither");
	v = allow ? allow : deny;
	kp_join(kp, ikp, allow ? "allow" : "deny");
	if (need_scalar(c, v, kp, "an address, a CIDR block or all") < 0)
		return -1;
	if (access_rule_parse(scalar(v), allow != NULL, r, &why) < 0)
		return fail_why(c, v, kp, why);
	return 0;
}

/* A list of access_item; its presence (even empty) replaces the wider list. */
static int
key_access(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	if (n != NULL)
		*(bool *)((char *)base + k->has) = true;
	return list_parse(c, k, n, base, kp);
}

/* Routes */

/*
 * How many columns right of the node's mark the value's byte `off` sits:
 * known when the scalar is on one line and its source is as long as its
 * value (no escapes, no multi-byte characters); else 0.
 */
static size_t
scalar_offset_column(const yaml_node_t *n, size_t off)
{
	size_t quotes = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? 0 : 2;
	size_t width = n->end_mark.column - n->start_mark.column;

	if (n->start_mark.line != n->end_mark.line || width != n->data.scalar.length + quotes)
		return 0;
	return off + quotes / 2;
}

static int
key_match(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE erroff;
	int errcode;

	(void)k;
	if (r->path != NULL)
		return fail(c, n, kp, "a route has either path or match, not both");
	r->kind = ROUTE_MATCH;
	r->match = xstrdup(scalar(n));
	r->re =
	    pcre2_compile((PCRE2_SPTR)r->match, PCRE2_ZERO_TERMINATED, 0, &errcode, &erroff, NULL);
	if (r->re == NULL) {
		yaml_node_t at = *n;

		pcre2_get_error_message(errcode, msg, sizeof(msg));
		at.start_mark.column += scalar_offset_column(n, erroff);
		return fail(c, &at, kp, "invalid regular expression at offset %zu: %s",
			    (size_t)erroff, (const char *)msg);
	}
	(void)pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
	return 0;
}

/* The highest $N in a pass template, -1 when none. */
static int
pass_max_ref(const char *s)
{
	int max = -1;

	for (const char *p = s; (p = strchr(p, '$')) != NULL; p++)
		if (p[1] >= '0' && p[1] <= '9' && p[1] - '0' > max)
			max = p[1] - '0';
	return max;
}

static int
pass_check_refs(struct cctx *c, const yaml_node_t *n, const char *kp, struct route *r)
{
	int ref = pass_max_ref(r->pass);
	uint32_t groups = 0;

	r->pass_has_ref = ref >= 0;
	if (ref < 0)
		return 0;
	if (r->kind != ROUTE_MATCH)
		return fail(c, n, kp,
			    "$%d is only allowed in match routes; a path route appends "
			    "the rest of the request path",
			    ref);
	pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
	if ((uint32_t)ref > groups)
		return fail(c, n, kp,
			    "$%d refers to capture group %d, but the match has %u group%s", ref,
			    ref, groups, groups == 1 ? "" : "s");
	return 0;
}

static int
key_pass(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;
	const char *why;
	bool b;

	if (strcmp(scalar(n), "off") == 0 || (parse_bool_text(scalar(n), &b) == 0 && !b)) {
		r->pass_off = true;
		return 0;
	}
	if (url_parse(scalar(n), &r->upstream, &why) < 0) {
		if (strcmp(why, "expected an http:// or https:// URL") == 0)
			return fail_expected(c, n, kp, k->expected);
		return fail_why(c, n, kp, why);
	}
	r->pass = xstrdup(scalar(n));
	return pass_check_refs(c, n, kp, r);
}

/* server_name: a host name or [v6] literal, optionally with ":port"; no scheme, no path. */
static int
key_server_name(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct config *cfg = base;
	const char *s, *colon;
	char *host;
	uint16_t port;
	bool ok;

	s = scalar(n);
	colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
	if (colon != NULL && s[0] == '[')
		colon++;
	host = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup(s);
	ok = hostname_is_valid(host, false) || host_is_v6_literal(host);
	xfree(host);
	if (!ok || (colon != NULL && addr_port(colon + 1, &port) < 0))
		return fail_expected(c, n, kp, k->expected);
	cfg->server_name = xstrdup(s);
	return 0;
}

static int
key_route_host(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;

	(void)k;
	if (!hostname_is_valid(scalar(n), true))
		return fail_expected(c, n, kp, "a host name or *.suffix, without a port");
	r->host = lower_dup(scalar(n));
	return 0;
}

static int
key_html(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	static const char expected[] = "true, false or a mapping with map and extended";
	struct route *r = base;

	if (n == NULL)
		return parse_bool_text(k->def, &r->html);
	if (n->type == YAML_SCALAR_NODE) {
		if (need_scalar(c, n, kp, expected) < 0 || parse_bool_text(scalar(n), &r->html) < 0)
			return fail_expected(c, n, kp, expected);
		return 0;
	}
	if (n->type != YAML_MAPPING_NODE)
		return fail_expected(c, n, kp, expected);
	r->html = true;
	return row_scope(c, k, ".", n, r, kp);
}

static int
key_route_tls(struct cctx *c, const struct ckey *k, yaml_node_t *n, void *base, const char *kp)
{
	struct route *r = base;
	char vkp[KP_MAX];
	yaml_node_t *v;

	if (row_scope(c, k, ".", n, r, kp) < 0)
		return -1;
	if (n == NULL)
		return 0;
	if (r->pass_off || !r->upstream.tls)
		return fail(c, n, kp, "tls is only for https:// upstreams");
	if (r->tls.ca != NULL) {
		kp_join(vkp, kp, "ca");
		if (tls_check_ca(c, map_get(c, n, "ca"), vkp, r->tls.ca) < 0)
			return -1;
	}
	if ((r->tls.cert == NULL) != (r->tls.key == NULL)) {
		kp_join(vkp, kp, r->tls.cert ? "cert" : "key");
		return fail(c, map_get(c, n, r->tls.cert ? "cert" : "key"), vkp,
			    "cert and key go together; got only %s", r->tls.cert ? "cert" : "key");
	}
	if (r->tls.cert != NULL && tls_check_pair(c, n, kp, r->tls.cert, r->tls.key) < 0)
		return -1;
	v = map_get(c, n, "verify");
	if (!r->tls.verify)
		warn(c, node_line(v), node_col(v),
		     "%s.verify: the https upstream %s is not verified; anyone on the path can "
		     "impersonate it",
		     kp, r->upstream.authority);
	return 0;
}

static void
html_map_set(struct route_html_map *m, const char *from, const char *to)
{
	m->from = xstrdup(from);
	m->to = xstrdup(to);
}

/*
 * html: true maps the pass URL and its path to the route's path.  A pass
 * without a path sends "/internal/x" to "/x", so its maps go to the route's
 * path with a "/": "http://h/x" and "/x" become "/internal/x", where "/" to
 * "/internal" would give "/internalx", and "http://h" alone "/internal/".
 */
static void
html_default_maps(struct route *r)
{
	size_t pl = strlen(r->path);
	char *slashed, *pass_slash;

	if (*r->upstream.path != '\0') {
		r->html_maps = xcalloc(2, sizeof(*r->html_maps));
		r->html_nmaps = 2;
		html_map_set(&r->html_maps[0], r->pass, r->path);
		html_map_set(&r->html_maps[1], r->upstream.path, r->path);
		return;
	}
	slashed = xasprintf("%s%s", r->path, r->path[pl - 1] == '/' ? "" : "/");
	pass_slash = xasprintf("%s/", r->pass);
	r->html_maps = xcalloc(3, sizeof(*r->html_maps));
	r->html_nmaps = 3;
	html_map_set(&r->html_maps[0], pass_slash, slashed);
	html_map_set(&r->html_maps[1], r->pass, slashed);
	html_map_set(&r->html_maps[2], "/", slashed);
	xfree(slashed);
	xfree(pass_slash);
}

/* After a route's keys: the rules that span several keys, and computed defaults. */
static int
route_finish(struct cctx *c, yaml_node_t *item, const char *ikp, struct route *r)
{
	yaml_node_t *rev = map_get(c, item, "reverse");
	char kp[KP_MAX];

	if (r->path == NULL && r->match == NULL)
		return fail(c, item, ikp, "expected a path or a match key; got neither");
	if (r->name == NULL)
		r->name = xasprintf("%u", r->index);
	kp_join(kp, ikp, "reverse");
	if (rev == NULL)
		r->reverse = r->kind == ROUTE_PATH;
	else if (r->reverse && r->pass_has_ref)
		return fail(c, rev, kp,
			    "true needs a fixed pass URL; this pass uses $N, so no URL "
			    "maps back");
	if (r->pass_off)
		r->reverse = false;
	if (r->html && r->html_nmaps == 0 && !r->pass_off) {
		kp_join(kp, ikp, "html");
		if (r->kind == ROUTE_MATCH)
			return fail(c, map_get(c, item, "html"), kp,
				    "a match route needs html.map: it has no fixed public path to "
				    "map to");
		html_default_maps(r);
	}
	return 0;
}

static void
warn_slash(struct cctx *c, const char *ikp, const struct route *r)
{
	bool ps;

	if (!route_has_slash_mismatch(r))
		return;
	ps = r->path[strlen(r->path) - 1] == '/';
	warn(c, r->line, r->col,
	     "%s: path \"%s\" %s with \"/\" but pass \"%s\" %s; requests map to URLs like "
	     "\"%s%s\"",
	     ikp, r->path, ps ? "ends" : "does not end", r->pass, ps ? "does not" : "does", r->pass,
	     ps ? "x" : "/x");
}

static int
route_item(struct cctx *c, const struct ckey *k, yaml_node_t *item, size_t i, const char *ikp,
	   void *base, void *elem)
{
	struct config *cfg = base;
	struct route *r = elem;

	r->index = (unsigned)i;
	r->line = node_line(item);
	r->col = node_col(item);
	r->upstream_connect_ms = cfg->timeouts.upstream_connect;
	r->upstream_read_ms = cfg->timeouts.upstream_read;
	r->tunnel_ms = cfg->timeouts.tunnel;
	if (row_scope(c, k, "[].", item, r, ikp) < 0 || route_finish(c, item, ikp, r) < 0)
		return -1;
	warn_slash(c, ikp, r);
	return 0;
}

/* The whole snapshot */

/* Route mappings (path routes with reverse, in order) go before the `reverse` list. */
static void
reverse_build(struct config *cfg)
{
	size_t n = 0, j = 0;
	struct reverse_map *all;

	for (size_t i = 0; i < cfg->nroutes; i++)
		n += cfg->routes[i].reverse;
	all = xcalloc(n + cfg->nreverse + 1, sizeof(*all));
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct route *r = &cfg->routes[i];

		if (!r->reverse)
			continue;
		all[j].public_path = xstrdup(r->kind == ROUTE_PATH ? r->path : "");
		url_copy(&all[j].upstream, &r->upstream);
		j++;
	}
	if (cfg->nreverse > 0)
		memcpy(all + j, cfg->reverse, cfg->nreverse * sizeof(*all));
	xfree(cfg->reverse);
	cfg->reverse = all;
	cfg->nreverse += j;
}

static void
warn_shadowed(struct cctx *c, const struct config *cfg)
{
	for (size_t i = 1; i < cfg->nroutes; i++) {
		int j = route_table_shadowed_by(cfg->table, i);
		const struct route *r = &cfg->routes[i];

		if (j < 0)
			continue;
		warn(c, r->line, r->col,
		     "routes[%zu] (line %d) can never match: routes[%d] (line %d) matches every "
		     "request it could",
		     i, r->line, j, cfg->routes[j].line);
	}
}

static void
warn_open_listeners(struct cctx *c, const struct config *cfg)
{
	bool every_route = true;

	if (cfg->has_access)
		return;
	for (size_t i = 0; i < cfg->nroutes; i++)
		every_route = every_route && cfg->routes[i].has_access;
	if (every_route)
		return;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *l = &cfg->listen[i];

		if (l->public)
			warn(c, l->line, l->col,
			     "listen[%zu]: %s is a public address and no access rules are set: "
			     "every client may use every route",
			     i, l->address);
	}
}

static int
warning_cmp(const void *a, const void *b)
{
	const struct warning *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->col != y->col)
		return x->col < y->col ? -1 : 1;
	return x->seq < y->seq ? -1 : 1;
}

/* Sorted by position in the file, as "file:line:col: warning: text". */
static void
warnings_move(struct cctx *c, struct config *cfg)
{
	if (c->nwarns > 1)
		qsort(c->warns, c->nwarns, sizeof(*c->warns), warning_cmp);
	cfg->warnings = xcalloc(c->nwarns + 1, sizeof(char *));
	for (size_t i = 0; i < c->nwarns; i++) {
		cfg->warnings[i] = xasprintf("%s:%d:%d: warning: %s", c->file, c->warns[i].line,
					     c->warns[i].col, c->warns[i].text);
		xfree(c->warns[i].text);
	}
	cfg->nwarnings = c->nwarns;
	c->nwarns = 0;
}

/* The port of a parsed listen address, and whether it is every address (0.0.0.0, ::, *). */
static uint16_t
addr_port_of(const struct sockaddr_storage *ss, bool *unspecified)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		*unspecified = in->sin_addr.s_addr == htonl(INADDR_ANY);
		return ntohs(in->sin_port);
	}
	const struct sockaddr_in6 *in6 = (const void *)ss;
	*unspecified = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
	return ntohs(in6->sin6_port);
}

/* True when `any` (an address for every interface) takes connections meant for `b`. */
static bool
addr_covers(const struct sockaddr_storage *any, const struct sockaddr_storage *b)
{
	/* [::] and "*" may take IPv4 too (net.ipv6.bindv6only is 0 by default). */
	return any->ss_family == AF_INET6 || b->ss_family == AF_INET;
}

/* True when a socket bound to `a` would take connections meant for `b`, or the reverse. */
static bool
addr_overlaps(const struct sockaddr_storage *a, socklen_t alen, const struct sockaddr_storage *b,
	      socklen_t blen)
{
	bool aany, bany;

	if (addr_port_of(a, &aany) != addr_port_of(b, &bany))
		return false;
	if (aany || bany)
		return addr_covers(aany ? a : b, aany ? b : a);
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* The admin listener is never one of the public ones (SPEC section 2). */
static int
check_admin(struct cctx *c, const struct config *cfg, yaml_node_t *root)
{
	yaml_node_t *admin;

	if (cfg->admin.listen == NULL)
		return 0;
	for (size_t i = 0; i < cfg->nlisten; i++) {
		const struct config_listen *l = &cfg->listen[i];

		if (!addr_overlaps(&cfg->admin.sa, cfg->admin.salen, &l->sa, l->salen))
			continue;
		admin = map_get(c, root, "admin");
		return fail(c, map_get(c, admin, "listen"), "admin.listen",
			    "%s overlaps listen[%zu] %s (line %d); metrics are never served on a "
			    "public listener",
			    cfg->admin.listen, i, l->address, l->line);
	}
	return 0;
}

static int
config_build(struct cctx *c, yaml_node_t *root)
{
	struct config *cfg = c->cfg;

	if (root == NULL)
		return fail(c, NULL, NULL,
			    "expected a mapping with listen and routes; got an "
			    "empty file");
	if (root->type != YAML_MAPPING_NODE)
		return fail_expected(c, root, NULL, "a mapping with listen and routes");
	if (scope_parse(c, "", root, cfg, "") < 0 || check_admin(c, cfg, root) < 0)
		return -1;
	reverse_build(cfg);
	cfg->table = route_table_build(cfg->routes, cfg->nroutes); /* aborts rather than fail */
	warn_shadowed(c, cfg);
	warn_open_listeners(c, cfg);
	warnings_move(c, cfg);
	return 0;
}

static char *
yaml_error(const char *file, const yaml_parser_t *p)
{
	const yaml_mark_t *m = p->problem ? &p->problem_mark : &p->mark;

	if (p->error == YAML_READER_ERROR)
		return xasprintf("%s:%zu:%zu: YAML syntax error: %s", file, p->mark.line + 1,
				 p->mark.column + 1, p->problem ? p->problem : "cannot read");
	if (p->context != NULL)
		return xasprintf("%s:%zu:%zu: YAML syntax error: %s (%s started at line %zu, "
				 "column %zu)",
				 file, m->line + 1, m->column + 1, p->problem, p->context,
				 p->context_mark.line + 1, p->context_mark.column + 1);
	return xasprintf("%s:%zu:%zu: YAML syntax error: %s", file, m->line + 1, m->column + 1,
			 p->problem ? p->problem : "invalid document");
}

/* A second document after the first is refused, not silently ignored. */
static int
config_check_single(struct cctx *c, yaml_parser_t *parser)
{
	yaml_document_t extra;
	yaml_node_t *root;

	if (!yaml_parser_load(parser, &extra)) {
		c->err = yaml_error(c->file, parser);
		return -1;
	}
	root = yaml_document_get_root_node(&extra);
	if (root != NULL)
		fail(c, root, NULL, "expected one YAML document; got a second one");
	yaml_document_delete(&extra);
	return root != NULL ? -1 : 0;
}

/* Reads the YAML document of `f` and builds the snapshot from it. */
static void
config_read(struct cctx *c, FILE *f)
{
	yaml_parser_t parser;
	yaml_document_t doc;

	if (!yaml_parser_initialize(&parser))
		fatal("yaml_parser_initialize: out of memory");
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		c->err = yaml_error(c->file, &parser);
		yaml_parser_delete(&parser);
		return;
	}
	c->doc = &doc;
	if (config_check_single(c, &parser) == 0)
		config_build(c, yaml_document_get_root_node(&doc));
	c->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
}

struct config *
config_load(const char *path, char **err)
{
	struct cctx c = {.file = path};
	FILE *f;

	*err = NULL;
	c.cfg = xcalloc(1, sizeof(*c.cfg));
	atomic_init(&c.cfg->refs, 1);
	c.cfg->path = xstrdup(path);
	f = fopen(path, "rb");
	if (f == NULL) {
		c.err = xasprintf("%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	config_read(&c, f);
	fclose(f);
	if (c.err != NULL)
		goto fail;
	xfree(c.warns);
	return c.cfg;
fail:
	for (size_t i = 0; i < c.nwarns; i++)
		xfree(c.warns[i].text);
	xfree(c.warns);
	config_unref(c.cfg);
	*err = c.err;
	return NULL;
}

/* Reference counting and teardown */

struct config *
config_ref(struct config *c)
{
	atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
	return c;
}

static void
route_free(struct route *r)
{
	xfree(r->path);
	xfree(r->match);
	pcre2_code_free(r->re);
	xfree(r->pass);
	url_free(&r->upstream);
	xfree(r->name);
	xfree(r->host);
	for (size_t i = 0; i < r->html_nmaps; i++) {
		xfree(r->html_maps[i].from);
		xfree(r->html_maps[i].to);
	}
	xfree(r->html_maps);
	access_list_free(&r->access);
	xfree(r->tls.ca);
	xfree(r->tls.server_name);
	xfree(r->tls.cert);
	xfree(r->tls.key);
}

static void
listen_free(struct config_listen *l)
{
	xfree(l->address);
	for (size_t i = 0; i < l->ncerts; i++) {
		xfree(l->certs[i].cert);
		xfree(l->certs[i].key);
	}
	xfree(l->certs);
	xfree(l->ciphers);
	xfree(l->ciphersuites);
}

static void
config_free(struct config *c)
{
	if (c->table != NULL)
		route_table_free(c->table);
	for (size_t i = 0; i < c->nroutes; i++)
		route_free(&c->routes[i]);
	xfree(c->routes);
	for (size_t i = 0; i < c->nreverse; i++) {
		xfree(c->reverse[i].public_path);
		url_free(&c->reverse[i].upstream);
	}
	xfree(c->reverse);
	for (size_t i = 0; i < c->nlisten; i++)
		listen_free(&c->listen[i]);
	xfree(c->listen);
	for (size_t i = 0; i < c->nhosts; i++) {
		xfree(c->hosts[i].name);
		xfree(c->hosts[i].addr);
	}
	xfree(c->hosts);
	access_list_free(&c->access);
	for (size_t i = 0; i < c->nwarnings; i++)
		xfree(c->warnings[i]);
	xfree(c->warnings);
	xfree(c->user);
	xfree(c->group);
	xfree(c->server_name);
	xfree(c->log.access);
	xfree(c->log.error);
	xfree(c->admin.listen);
	xfree(c->path);
	xfree(c);
}

void
config_unref(struct config *c)
{
	if (c == NULL)
		return;
	if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
		config_free(c);
}

const struct access_list *
config_route_access(const struct config *c, const struct route *r)
{
	const struct access_list *l = r->has_access   ? &r->access
				      : c->has_access ? &c->access
						      : NULL;

	return l != NULL && l->n > 0 ? l : NULL;
}

/* The man page key list */

static void
mdoc_type(FILE *out, const struct ckey *k)
{
	static const char *const names[] = {
	    [KT_SECTION] = "mapping", [KT_BOOL] = "bool",	  [KT_UINT] = "number",
	    [KT_SIZE] = "size",	      [KT_DURATION] = "duration", [KT_STRING] = "string",
	    [KT_PATH] = "path",	      [KT_URL] = "URL",		  [KT_FILE] = "file",
	    [KT_LIST] = "list",
	};
	char list[128];

	if (k->tname != NULL) {
		fprintf(out, " Ar %s", k->tname);
	} else if (k->type == KT_ENUM) {
		choices_text(k->choices, list, sizeof(list), " | ");
		fprintf(out, " Ar %s", list);
	} else if (k->type == KT_LOGDEST) {
		choices_text(k->choices, list, sizeof(list), " | ");
		fprintf(out, " Ar %s | path", list);
	} else {
		fprintf(out, " Ar %s", names[k->type]);
	}
}

static void
mdoc_default(FILE *out, const struct ckey *k)
{
	if (k->flags & KEY_REQUIRED)
		fprintf(out, "Required.\n");
	else if (k->def != NULL)
		fprintf(out, "Default:\n.Ql %s .\n", k->def);
	else if (k->defdoc != NULL)
		fprintf(out, "Default: %s.\n", k->defdoc);
}

static void
mdoc_bounds(FILE *out, const struct ckey *k)
{
	char lo[32], hi[32];

	if (k->type != KT_UINT && k->type != KT_SIZE && k->type != KT_DURATION &&
	    k->parse != key_workers)
		return;
	bound_text(k, lo, sizeof(lo), k->min);
	bound_text(k, hi, sizeof(hi), k->max);
	if (k->max == UINT64_MAX && k->min == 0)
		return;
	if (k->max == UINT64_MAX)
		fprintf(out, "At least %s.\n", lo);
	else
		fprintf(out, "From %s to %s.\n", lo, hi);
}

/* Text wrapped at 80 columns, as mandoc's style check asks. */
static void
mdoc_text(FILE *out, const char *text)
{
	size_t col = 0;

	while (*text != '\0') {
		size_t n = strcspn(text, " ");

		if (col > 0 && col + 1 + n > 80) {
			fputc('\n', out);
			col = 0;
		} else if (col > 0) {
			fputc(' ', out);
			col++;
		}
		fwrite(text, 1, n, out);
		col += n;
		text += n;
		text += strspn(text, " ");
	}
	fputc('\n', out);
}

void
config_write_mdoc_keys(FILE *out)
{
	fprintf(out, ".Bl -tag -width Ds\n");
	for (size_t i = 0; i < ARRAY_SIZE(config_keys); i++) {
		const struct ckey *k = &config_keys[i];

		fprintf(out, ".It Ic %s", k->path);
		mdoc_type(out, k);
		fputc('\n', out);
		mdoc_text(out, k->help);
		mdoc_default(out, k);
		mdoc_bounds(out, k);
	}
	fprintf(out, ".El\n");
}
