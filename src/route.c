/*
 * route.c: the ordered rule table (SPEC section 3): Apache ProxyPass prefix
 * matching, ProxyPassMatch regular expressions, host restrictions, and the
 * mapping of a matched request to its upstream request target.
 *
 * Prefix rules are compiled into a byte trie in which every run of "/" is one
 * "/" edge, in rules and in request paths alike.  Each node lists, in file
 * order, the rules whose prefix ends there.  Regular expressions that start
 * with a literal prefix ("^/api/v1/...", see route_prefix.c) are listed at
 * the node of that prefix too, apart from the prefix rules.  A lookup walks
 * the trie once along the path: it finds the first prefix rule that matches
 * and collects the expressions whose prefix the path starts with; it then
 * runs, in file order, those expressions and the ones without a literal
 * prefix that come before the prefix rule in the file.  The first that
 * matches wins, so the order is Apache's linear one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "portico/path.h"
#include "portico/route.h"

#define NO_RULE UINT32_MAX

/*
 * The trie is built with growable per-node arrays, then frozen into flat
 * arrays so that a lookup touches a few contiguous bytes per path byte.
 */
struct build_node {
	unsigned char *keys; /* edge bytes */
	uint32_t *kids;	     /* child node for each key */
	size_t nkids, capkids;
	uint32_t *cands; /* positions of the rules ending here, ascending */
	size_t ncands, capcands;
	uint32_t *rcands; /* regexes[] indices whose literal prefix ends here, ascending */
	size_t nrcands, caprcands;
	bool slash;
};

struct trie_node {
	uint32_t edges;	 /* first edge in keys[] and kids[] */
	uint32_t cands;	 /* first candidate in cands[] */
	uint32_t ncands; /* rules ending here */
	uint32_t rcands; /* first regex candidate in rcands[] */
	uint32_t nrcands;
	uint16_t nedges;
	bool slash; /* reached by a "/" edge (or the root): always at a boundary */
};

struct route_regex {
	uint32_t pos;	    /* position in the rule array */
	bool jit;	    /* compiled by pcre2_jit_compile */
	uint32_t prefix;    /* offset of its literal prefix in prefixes */
	uint32_t prefixlen; /* 0: none, tried for every path */
};

struct route_table {
	const struct route *routes;
	size_t n;
	struct trie_node *nodes;     /* nodes[0] is the root */
	unsigned char *keys;	     /* edge bytes, grouped by node */
	uint32_t *kids;		     /* edge targets */
	uint32_t *cands;	     /* rule positions, grouped by node, ascending */
	uint32_t *rcands;	     /* regexes[] indices, grouped by node, ascending */
	struct route_regex *regexes; /* ascending positions */
	size_t nregexes;
	uint32_t *open; /* regexes[] indices of those without a prefix, ascending */
	size_t nopen;
	struct buf prefixes; /* the literal prefixes, end to end */
};

/* One pcre2_match_data per thread, freed when the thread exits. */
static pthread_once_t match_data_once = PTHREAD_ONCE_INIT;
static pthread_key_t match_data_key;
static _Thread_local pcre2_match_data *match_data;

static void
match_data_free(void *p)
{
	pcre2_match_data_free(p);
}

static void
match_data_key_create(void)
{
	if (pthread_key_create(&match_data_key, match_data_free) != 0)
		fatal("pthread_key_create failed");
}

static pcre2_match_data *
thread_match_data(void)
{
	if (match_data == NULL) {
		pthread_once(&match_data_once, match_data_key_create);
		match_data = pcre2_match_data_create(ROUTE_MAX_CAPTURES, NULL);
		if (match_data == NULL)
			fatal("out of memory");
		pthread_setspecific(match_data_key, match_data);
	}
	return match_data;
}

/*
 * Apache's alias_match(): the number of path bytes a prefix rule consumes, or
 * -1.  A run of "/" in the rule consumes a run of "/" in the path; the match
 * ends at the end of the path, before a "/", or after a rule ending in "/".
 */
static long
prefix_match(const char *rule, size_t rlen, const char *path, size_t plen)
{
	size_t a = 0, u = 0;

	if (rlen == 0)
		return 0;
	while (a < rlen && u < plen) {
		if (rule[a] == '/') {
			if (path[u] != '/')
				return -1;
			while (a < rlen && rule[a] == '/')
				a++;
			while (u < plen && path[u] == '/')
				u++;
		} else if (rule[a++] != path[u++]) {
			return -1;
		}
	}
	if (a != rlen)
		return -1;
	if (rule[rlen - 1] != '/' && u < plen && path[u] != '/')
		return -1;
	return (long)u;
}

bool
route_host_matches(const char *pattern, const char *host, size_t hostlen)
{
	size_t plen;

	if (pattern == NULL)
		return true;
	if (host == NULL)
		return false;
	if (hostlen > 0 && host[hostlen - 1] == '.') /* fully qualified form */
		hostlen--;
	plen = strlen(pattern);
	if (plen >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* "*.example.com": any name ending in ".example.com", not the bare suffix. */
		return hostlen > plen - 1 && ascii_casecmp_eq(host + hostlen - (plen - 1), plen - 1,
							      pattern + 1, plen - 1);
	}
	return ascii_casecmp_eq(pattern, plen, host, hostlen);
}

bool
route_has_slash_mismatch(const struct route *r)
{
	size_t plen, ulen;

	if (r->kind != ROUTE_PATH || r->pass_off || r->path == NULL || r->upstream.path == NULL)
		return false;
	plen = strlen(r->path);
	ulen = strcspn(r->upstream.path, "?"); /* the path part, before any query */
	if (plen == 0 || ulen == 0)
		return false;
	return (r->path[plen - 1] == '/') != (r->upstream.path[ulen - 1] == '/');
}

/* For route_table_shadowed_by: every host pattern `inner` accepts, `outer` accepts. */
static bool
host_covers(const char *outer, const char *inner)
{
	if (outer == NULL)
		return true;
	if (inner == NULL)
		return false;
	if (ascii_casecmp_eq(outer, strlen(outer), inner, strlen(inner)))
		return true;
	return outer[0] == '*' && outer[1] == '.' &&
	       route_host_matches(outer, inner, strlen(inner));
}

/* ---- the trie ---- */

struct trie_builder {
	struct build_node *nodes;
	size_t n, cap;
	size_t nedges, ncands, nrcands;
};

static uint32_t
build_new_node(struct trie_builder *b, bool slash)
{
	b->nodes = xgrow(b->nodes, &b->cap, b->n, sizeof(*b->nodes));
	memset(&b->nodes[b->n], 0, sizeof(b->nodes[0]));
	b->nodes[b->n].slash = slash;
	return (uint32_t)b->n++;
}

/* The child of node `at` along byte c, created when missing. */
static uint32_t
build_step(struct trie_builder *b, uint32_t at, unsigned char c)
{
	struct build_node *node = &b->nodes[at];
	const unsigned char *k = node->nkids > 0 ? memchr(node->keys, c, node->nkids) : NULL;
	uint32_t kid;

	if (k != NULL)
		return node->kids[k - node->keys];
	kid = build_new_node(b, c == '/');
	node = &b->nodes[at];
	if (node->nkids == node->capkids) {
		node->keys = xgrow(node->keys, &node->capkids, node->nkids, sizeof(*node->keys));
		node->kids = xrealloc(node->kids, node->capkids * sizeof(*node->kids));
	}
	node->keys[node->nkids] = c;
	node->kids[node->nkids++] = kid;
	b->nedges++;
	return kid;
}

/* The node of `prefix`, created when missing; a run of "/" is one edge. */
static uint32_t
build_path(struct trie_builder *b, const char *prefix, size_t len)
{
	uint32_t at = 0;

	for (size_t i = 0; i < len; i++) {
		if (prefix[i] == '/') {
			while (i + 1 < len && prefix[i + 1] == '/')
				i++;
		}
		at = build_step(b, at, (unsigned char)prefix[i]);
	}
	return at;
}

/* Adds the prefix rule at `pos`; rules arrive in ascending positions. */
static void
build_insert(struct trie_builder *b, const char *prefix, uint32_t pos)
{
	uint32_t at = build_path(b, prefix, strlen(prefix));
	struct build_node *node = &b->nodes[at]; /* after build_path, which may move nodes */

	node->cands = xgrow(node->cands, &node->capcands, node->ncands, sizeof(*node->cands));
	node->cands[node->ncands++] = pos;
	b->ncands++;
}

/* Adds regexes[k] at the node of its literal prefix; k arrives ascending. */
static void
build_insert_regex(struct trie_builder *b, const char *prefix, size_t len, uint32_t k)
{
	uint32_t at = build_path(b, prefix, len);
	struct build_node *node = &b->nodes[at];

	node->rcands = xgrow(node->rcands, &node->caprcands, node->nrcands, sizeof(*node->rcands));
	node->rcands[node->nrcands++] = k;
	b->nrcands++;
}

/* Moves the builder's nodes into the table's flat arrays and frees the builder. */
static void
build_freeze(struct trie_builder *b, struct route_table *t)
{
	size_t e = 0, c = 0, rc = 0;

	t->nodes = xcalloc(b->n, sizeof(*t->nodes));
	t->keys = xmalloc(b->nedges + 1);
	t->kids = xcalloc(b->nedges + 1, sizeof(*t->kids));
	t->cands = xcalloc(b->ncands + 1, sizeof(*t->cands));
	t->rcands = xcalloc(b->nrcands + 1, sizeof(*t->rcands));
	for (size_t i = 0; i < b->n; i++) {
		struct build_node *from = &b->nodes[i];
		struct trie_node *to = &t->nodes[i];

		to->edges = (uint32_t)e;
		to->nedges = (uint16_t)from->nkids;
		to->cands = (uint32_t)c;
		to->ncands = (uint32_t)from->ncands;
		to->rcands = (uint32_t)rc;
		to->nrcands = (uint32_t)from->nrcands;
		to->slash = from->slash;
		if (from->nkids > 0) {
			memcpy(t->keys + e, from->keys, from->nkids);
			memcpy(t->kids + e, from->kids, from->nkids * sizeof(*t->kids));
		}
		if (from->ncands > 0)
			memcpy(t->cands + c, from->cands, from->ncands * sizeof(*t->cands));
		if (from->nrcands > 0)
			memcpy(t->rcands + rc, from->rcands, from->nrcands * sizeof(*t->rcands));
		e += from->nkids;
		c += from->ncands;
		rc += from->nrcands;
		xfree(from->keys);
		xfree(from->kids);
		xfree(from->cands);
		xfree(from->rcands);
	}
	xfree(b->nodes);
}

/* Most nodes have a handful of edges: a plain loop beats a memchr() call. */
static uint32_t
trie_child(const struct route_table *t, uint32_t at, unsigned char c)
{
	const struct trie_node *node = &t->nodes[at];
	const unsigned char *keys = t->keys + node->edges;
	const unsigned char *k;

	if (node->nedges <= 16) {
		for (size_t i = 0; i < node->nedges; i++)
			if (keys[i] == c)
				return t->kids[node->edges + i];
		return NO_RULE;
	}
	k = memchr(keys, c, node->nedges);
	return k != NULL ? t->kids[k - t->keys] : NO_RULE;
}

/*
 * How many trie nodes along one path may list regular expressions before a
 * lookup gives up the merge and tries every expression in order (still
 * correct, only slower): a path that starts with more than this many
 * distinct literal prefixes, each one a prefix of the next.
 */
#define WALK_MAX_REGEX_NODES 32

/* A run of rcands[] still to try: the next index and how many are left. */
struct rlist {
	const uint32_t *next;
	size_t left;
};

/*
 * What a trie walk looks for: the lowest rule position below `best` whose host
 * pattern accepts `host` (lookups), or covers `shadow_host` (shadowing); and,
 * for lookups, the lists of regular expressions whose prefix the path
 * starts with, in `rl` (`overflow` when there were more than fit).
 */
struct walk {
	const struct route_table *t;
	bool shadow;
	const char *host;
	size_t hostlen;
	const char *shadow_host;
	uint32_t best;
	struct rlist rl[WALK_MAX_REGEX_NODES];
	size_t nrl;
	bool overflow;
};

static void
walk_visit(struct walk *w, const struct trie_node *node)
{
	const uint32_t *cands = w->t->cands + node->cands;

	for (size_t k = 0; k < node->ncands && cands[k] < w->best; k++) {
		const struct route *r = &w->t->routes[cands[k]];
		bool ok = w->shadow ? host_covers(r->host, w->shadow_host)
				    : route_host_matches(r->host, w->host, w->hostlen);

		if (ok) {
			w->best = cands[k];
			return;
		}
	}
}

/* Keeps a node's regular expressions for the lookup to try. */
static void
walk_collect(struct walk *w, const struct trie_node *node)
{
	if (w->shadow)
		return;
	if (w->nrl == WALK_MAX_REGEX_NODES) {
		w->overflow = true;
		return;
	}
	w->rl[w->nrl++] = (struct rlist){w->t->rcands + node->rcands, node->nrcands};
}

/*
 * Visits every node whose rules match `path` at a segment boundary, and
 * collects the regular expressions of every node along the path: a path
 * that starts with a literal prefix walks through the prefix's node.
 */
static void
trie_walk(struct walk *w, const char *path, size_t len)
{
	const struct trie_node *nodes = w->t->nodes;
	uint32_t at = 0;
	size_t i = 0;

	if (nodes[0].ncands > 0)
		walk_visit(w, &nodes[0]);
	while (i < len) {
		unsigned char c = (unsigned char)path[i++];

		if (c == '/') {
			while (i < len && path[i] == '/')
				i++;
		}
		at = trie_child(w->t, at, c);
		if (at == NO_RULE)
			return;
		if (nodes[at].ncands > 0 && (nodes[at].slash || i == len || path[i] == '/'))
			walk_visit(w, &nodes[at]);
		if (nodes[at].nrcands > 0)
			walk_collect(w, &nodes[at]);
	}
}

/* ---- building ---- */

/* Lists the expression of the rule at `pos`: under its literal prefix, or as open. */
static void
table_add_regex(struct route_table *t, struct trie_builder *b, const struct route *r, uint32_t pos)
{
	size_t jitsize = 0, at = t->prefixes.len;
	uint32_t k = (uint32_t)t->nregexes;
	struct route_regex *x;

	t->regexes = xrealloc(t->regexes, (t->nregexes + 1) * sizeof(*t->regexes));
	x = &t->regexes[t->nregexes++];
	x->pos = pos;
	x->jit = pcre2_pattern_info(r->re, PCRE2_INFO_JITSIZE, &jitsize) == 0 && jitsize > 0;
	x->prefix = (uint32_t)at;
	x->prefixlen = 0;
	if (r->match != NULL && route_regex_prefix(r->match, r->re, &t->prefixes)) {
		x->prefixlen = (uint32_t)(t->prefixes.len - at);
		build_insert_regex(b, t->prefixes.data + at, x->prefixlen, k);
		return;
	}
	t->open = xrealloc(t->open, (t->nopen + 1) * sizeof(*t->open));
	t->open[t->nopen++] = k;
}

struct route_table *
route_table_build(const struct route *routes, size_t n)
{
	struct route_table *t = xcalloc(1, sizeof(*t));
	struct trie_builder b = {.nodes = NULL};

	t->routes = routes;
	t->n = n;
	buf_init(&t->prefixes);
	build_new_node(&b, true);
	for (size_t pos = 0; pos < n; pos++) {
		const struct route *r = &routes[pos];

		if (r->kind == ROUTE_PATH && r->path != NULL)
			build_insert(&b, r->path, (uint32_t)pos);
		else if (r->kind == ROUTE_MATCH && r->re != NULL)
			table_add_regex(t, &b, r, (uint32_t)pos);
	}
	build_freeze(&b, t);
	return t;
}

void
route_table_free(struct route_table *t)
{
	if (t == NULL)
		return;
	xfree(t->nodes);
	xfree(t->keys);
	xfree(t->kids);
	xfree(t->cands);
	xfree(t->rcands);
	xfree(t->regexes);
	xfree(t->open);
	buf_free(&t->prefixes);
	xfree(t);
}

/* ---- lookup ---- */

/* Runs one regular expression; on a match fills `caps` when not NULL. */
static bool
regex_matches(const pcre2_code *re, bool jit, const char *path, size_t len,
	      struct route_captures *caps)
{
	pcre2_match_data *md = thread_match_data();
	int rc;

	if (jit)
		rc = pcre2_jit_match(re, (PCRE2_SPTR)path, len, 0, 0, md, NULL);
	else
		rc = pcre2_match(re, (PCRE2_SPTR)path, len, 0, 0, md, NULL);
	if (rc < 0)
		return false;
	if (caps != NULL) {
		PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);

		/* rc == 0: more groups than the vector holds; the first ones are set. */
		caps->n = rc == 0 ? ROUTE_MAX_CAPTURES : rc;
		for (int k = 0; k < 2 * ROUTE_MAX_CAPTURES; k++)
			caps->ovector[k] = k < 2 * caps->n ? ov[k] : PCRE2_UNSET;
	}
	return true;
}

/* Tries regexes[k]: its host, its literal prefix (the trie folds "/" runs), the expression. */
static bool
regex_try(const struct walk *w, uint32_t k, const char *path, size_t len,
	  struct route_captures *caps)
{
	const struct route_regex *x = &w->t->regexes[k];
	const struct route *r = &w->t->routes[x->pos];

	if (x->prefixlen > 0 && (x->prefixlen > len ||
				 memcmp(path, w->t->prefixes.data + x->prefix, x->prefixlen) != 0))
		return false;
	return route_host_matches(r->host, w->host, w->hostlen) &&
	       regex_matches(r->re, x->jit, path, len, caps);
}

/*
 * Tries, lowest index first, the expressions of the collected lists and the
 * open ones, up to the best prefix rule.  The lists are few (one per node
 * with expressions on the path), so picking the lowest head is a short loop.
 */
static int64_t
regex_merge(struct walk *w, const char *path, size_t len, struct route_captures *caps)
{
	struct rlist open = {w->t->open, w->t->nopen};

	for (;;) {
		struct rlist *min = open.left > 0 ? &open : NULL;
		uint32_t k;

		for (size_t i = 0; i < w->nrl; i++)
			if (w->rl[i].left > 0 && (min == NULL || *w->rl[i].next < *min->next))
				min = &w->rl[i];
		if (min == NULL)
			return -1;
		k = *min->next++;
		min->left--;
		if (w->t->regexes[k].pos >= w->best)
			return -1;
		if (regex_try(w, k, path, len, caps))
			return k;
	}
}

const struct route *
route_table_lookup(const struct route_table *t, const char *host, size_t hostlen, const char *path,
		   size_t pathlen, struct route_captures *caps)
{
	struct walk w; /* not zeroed as a whole: rl[] is filled up to nrl */
	int64_t k = -1;

	w.t = t;
	w.shadow = false;
	w.host = host;
	w.hostlen = hostlen;
	w.shadow_host = NULL;
	w.best = NO_RULE;
	w.nrl = 0;
	w.overflow = false;

	trie_walk(&w, path, pathlen);
	if (!w.overflow) {
		k = regex_merge(&w, path, pathlen, caps);
	} else {
		for (size_t i = 0; i < t->nregexes && t->regexes[i].pos < w.best && k < 0; i++)
			if (regex_try(&w, (uint32_t)i, path, pathlen, caps))
				k = (int64_t)i;
	}
	if (k >= 0)
		return &t->routes[t->regexes[k].pos];
	return w.best == NO_RULE ? NULL : &t->routes[w.best];
}

int
route_table_shadowed_by(const struct route_table *t, size_t i)
{
	const struct route *r = &t->routes[i];
	struct walk w = {.t = t, .shadow = true, .shadow_host = r->host, .best = (uint32_t)i};

	/* Any rule: an earlier "/" matches everything.  Prefix rules: an earlier prefix of it. */
	if (r->kind == ROUTE_PATH && r->path != NULL)
		trie_walk(&w, r->path, strlen(r->path));
	else
		trie_walk(&w, "/", 1);
	return w.best == (uint32_t)i ? -1 : (int)w.best;
}

/* ---- mapping to the upstream target ---- */

static bool
has_capture_ref(const char *s)
{
	for (; (s = strchr(s, '$')) != NULL; s++)
		if (s[1] >= '0' && s[1] <= '9')
			return true;
	return false;
}

/* The length of "scheme://authority" at the start of a URL. */
static size_t
authority_end(const char *s)
{
	const char *p = strstr(s, "://");

	if (p == NULL)
		return 0;
	return (size_t)(p + 3 - s) + strcspn(p + 3, "/?#");
}

/*
 * Appends bytes taken from the request path: percent-encoded as a path, or,
 * when they land after the "?" of the pass URL, as query data, so that they
 * can add no parameter.
 */
static void
add_from_path(struct buf *out, const char *p, size_t len, bool in_query)
{
	if (in_query)
		path_encode_query(out, p, len);
	else
		path_encode(out, p, len, true);
}

/* True when a "?" of the pass URL is in `out` from `start` on. */
static bool
has_query_mark(const struct buf *out, size_t start)
{
	return out->len > start && memchr(out->data + start, '?', out->len - start) != NULL;
}

/* Appends `tmpl` with $0..$9 replaced by the percent-encoded captures. */
static void
substitute(struct buf *out, const char *tmpl, const char *path, const struct route_captures *caps)
{
	bool in_query = false;

	for (const char *p = tmpl; *p != '\0'; p++) {
		int d;

		if (p[0] != '$' || p[1] < '0' || p[1] > '9') {
			in_query |= *p == '?';
			buf_addc(out, *p);
			continue;
		}
		d = *++p - '0';
		if (d < caps->n && caps->ovector[2 * d] != PCRE2_UNSET)
			add_from_path(out, path + caps->ovector[2 * d],
				      caps->ovector[2 * d + 1] - caps->ovector[2 * d], in_query);
	}
}

/*
 * Substitutes over the whole pass URL, checks that the scheme and authority
 * came out unchanged, and appends what follows them.
 */
static int
map_captures(const struct route *r, const char *path, const struct route_captures *caps,
	     struct buf *out, const char **err)
{
	size_t tend = authority_end(r->pass), rend;
	struct buf url;
	int rc = 0;

	buf_init(&url);
	substitute(&url, r->pass, path, caps);
	rend = authority_end(url.data);
	if (!ascii_casecmp_eq(url.data, rend, r->pass, tend)) {
		*err = "substitution changed the upstream authority";
		rc = -1;
	} else {
		buf_add(out, url.data + rend, url.len - rend);
	}
	buf_free(&url);
	return rc;
}

static int
map_match(const struct route *r, const char *path, size_t len, const struct route_captures *caps,
	  struct buf *out, const char **err)
{
	struct route_captures own;

	if (!has_capture_ref(r->pass)) {
		size_t start = out->len;

		/* Apache: a pass with no reference gets the whole path appended. */
		buf_adds(out, r->upstream.path);
		add_from_path(out, path, len, has_query_mark(out, start));
		return 0;
	}
	if (caps == NULL) {
		bool jit = false;
		size_t jitsize = 0;

		if (pcre2_pattern_info(r->re, PCRE2_INFO_JITSIZE, &jitsize) == 0)
			jit = jitsize > 0;
		if (!regex_matches(r->re, jit, path, len, &own)) {
			*err = "path does not match the rule";
			return -1;
		}
		caps = &own;
	}
	return map_captures(r, path, caps, out, err);
}

static int
map_prefix(const struct route *r, const char *path, size_t len, struct buf *out, const char **err)
{
	long matched = prefix_match(r->path, strlen(r->path), path, len);
	size_t start = out->len;

	if (matched < 0) {
		*err = "path does not match the rule";
		return -1;
	}
	buf_adds(out, r->upstream.path);
	add_from_path(out, path + matched, len - (size_t)matched, has_query_mark(out, start));
	return 0;
}

/* The target must be origin-form: "http://h" + "" becomes "/". */
static void
ensure_leading_slash(struct buf *out, size_t start)
{
	if (out->len > start && out->data[start] == '/')
		return;
	buf_reserve(out, 1);
	memmove(out->data + start + 1, out->data + start, out->len - start + 1);
	out->data[start] = '/';
	out->len++;
}

int
route_target(const struct route *r, const char *path, size_t pathlen, const char *query,
	     size_t querylen, const struct route_captures *caps, struct buf *out, const char **err)
{
	size_t start = out->len;
	int rc;

	if (r->kind == ROUTE_PATH)
		rc = map_prefix(r, path, pathlen, out, err);
	else
		rc = map_match(r, path, pathlen, caps, out, err);
	if (rc == -1)
		goto fail;
	ensure_leading_slash(out, start);
	if (query != NULL && !has_query_mark(out, start)) {
		buf_addc(out, '?'); /* an empty query stays "?" */
		buf_add(out, query, querylen);
	} else if (query != NULL && querylen > 0) {
		buf_addc(out, '&');
		buf_add(out, query, querylen);
	}
	return 0;
fail:
	out->len = start;
	if (out->data != NULL)
		out->data[start] = '\0';
	return -1;
}
