/*
 * import_access.c: Apache authorization (mod_authz_core, mod_authz_host,
 * mod_access_compat) as a portico access list (SPEC section 7).
 *
 * A scope's Require lines (an implicit <RequireAny>), <RequireAll>,
 * <RequireAny>, <RequireNone> and the 2.2 Order/Allow/Deny are evaluated
 * into a union of terms "addresses in P and not in N"; a portico first-match
 * list expresses a union of positive terms plus at most one term with
 * exceptions (its denies, then its allows).  What cannot be expressed is
 * replaced by something that grants less, never more (a rule naming hosts,
 * users or expressions grants no one), and the directive is reported.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "import_int.h"

#define AZ_MAX_TERMS 64

/* A set of addresses: every address, or a list of blocks. */
struct az_set {
	bool all;
	struct access_rule *r;
	size_t n, cap;
};

/* Addresses in `p` and not in `neg`. */
struct az_term {
	struct az_set p, neg;
};

/* A union of terms; empty grants no one. */
struct az_val {
	struct az_term *t;
	size_t n, cap;
};

static bool
eq(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0;
}

bool
imp_is_authz(const char *name)
{
	return eq(name, "RequireAll") || eq(name, "RequireAny") || eq(name, "RequireNone");
}

/* ---- sets ---- */

static void
set_add(struct az_set *s, const struct access_rule *r)
{
	s->r = xgrow(s->r, &s->cap, s->n, sizeof(*s->r));
	s->r[s->n++] = *r;
}

static void
set_copy(struct az_set *dst, const struct az_set *src)
{
	dst->all = src->all;
	dst->r = NULL;
	dst->n = dst->cap = 0;
	for (size_t i = 0; i < src->n; i++)
		set_add(dst, &src->r[i]);
}

static void
set_free(struct az_set *s)
{
	xfree(s->r);
	s->r = NULL;
	s->n = s->cap = 0;
}

static bool
block_contains(const struct access_rule *outer, const struct access_rule *inner)
{
	size_t full;

	if (outer->family != inner->family || outer->prefix > inner->prefix)
		return false;
	full = outer->prefix / 8;
	if (memcmp(outer->addr, inner->addr, full) != 0)
		return false;
	if (outer->prefix % 8 == 0)
		return true;
	return ((outer->addr[full] ^ inner->addr[full]) & (0xff00u >> (outer->prefix % 8))) == 0;
}

/* a ∩ b into out. */
static void
set_intersect(const struct az_set *a, const struct az_set *b, struct az_set *out)
{
	memset(out, 0, sizeof(*out));
	if (a->all || b->all) {
		set_copy(out, a->all ? b : a);
		return;
	}
	for (size_t i = 0; i < a->n; i++)
		for (size_t k = 0; k < b->n; k++) {
			if (block_contains(&a->r[i], &b->r[k]))
				set_add(out, &b->r[k]);
			else if (block_contains(&b->r[k], &a->r[i]))
				set_add(out, &a->r[i]);
		}
}

static void
set_union(struct az_set *dst, const struct az_set *src)
{
	dst->all = dst->all || src->all;
	for (size_t i = 0; i < src->n; i++)
		set_add(dst, &src->r[i]);
}

static bool
set_empty(const struct az_set *s)
{
	return !s->all && s->n == 0;
}

/* ---- values ---- */

static void
val_free(struct az_val *v)
{
	for (size_t i = 0; i < v->n; i++) {
		set_free(&v->t[i].p);
		set_free(&v->t[i].neg);
	}
	xfree(v->t);
	memset(v, 0, sizeof(*v));
}

static struct az_term *
val_push(struct az_val *v)
{
	v->t = xgrow(v->t, &v->cap, v->n, sizeof(*v->t));
	memset(&v->t[v->n], 0, sizeof(v->t[v->n]));
	return &v->t[v->n++];
}

static void
val_all(struct az_val *v)
{
	val_push(v)->p.all = true;
}

/* dst ∪= src (src is consumed). */
static void
val_union(struct az_val *dst, struct az_val *src)
{
	for (size_t i = 0; i < src->n; i++) {
		*val_push(dst) = src->t[i];
	}
	xfree(src->t);
	memset(src, 0, sizeof(*src));
}

/* a ∧ b distributed over the terms; false when it grows too large. */
static bool
val_and(const struct az_val *a, const struct az_val *b, struct az_val *out)
{
	memset(out, 0, sizeof(*out));
	if (a->n * b->n > AZ_MAX_TERMS)
		return false;
	for (size_t i = 0; i < a->n; i++)
		for (size_t k = 0; k < b->n; k++) {
			struct az_set p;
			struct az_term *t;

			set_intersect(&a->t[i].p, &b->t[k].p, &p);
			if (set_empty(&p)) {
				set_free(&p);
				continue;
			}
			t = val_push(out);
			t->p = p;
			set_copy(&t->neg, &a->t[i].neg);
			set_union(&t->neg, &b->t[k].neg);
		}
	return true;
}

/* ---- leaves ---- */

/* "10.1", "10.1.0.0/16", "10.1.0.0/255.255.0.0", "2001:db8::/32" as a block. */
static bool
parse_block(const char *arg, struct access_rule *r)
{
	char text[96];
	const char *slash = strchr(arg, '/'), *err;
	struct in_addr mask;
	size_t dots = 0;

	if (strlen(arg) >= 64 || eq(arg, "all"))
		return false;
	if (slash != NULL && strchr(slash + 1, '.') != NULL) {
		uint32_t m;
		unsigned prefix = 0;

		if (inet_pton(AF_INET, slash + 1, &mask) != 1)
			return false;
		m = ntohl(mask.s_addr);
		while (prefix < 32 && (m & (0x80000000u >> prefix)))
			prefix++;
		if (prefix < 32 && (m << prefix) != 0)
			return false;
		snprintf(text, sizeof(text), "%.*s/%u", (int)(slash - arg), arg, prefix);
	} else if (slash == NULL && strspn(arg, "0123456789.") == strlen(arg)) {
		char base[64];
		size_t n = strlen(arg);

		memcpy(base, arg, n + 1);
		if (n > 0 && base[n - 1] == '.')
			base[--n] = '\0';
		for (size_t i = 0; i < n; i++)
			dots += base[i] == '.';
		if (n == 0 || dots > 3)
			return false;
		snprintf(text, sizeof(text), "%s%s/%zu", base,
			 dots == 0   ? ".0.0.0"
			 : dots == 1 ? ".0.0"
			 : dots == 2 ? ".0"
				     : "",
			 (dots + 1) * 8);
	} else {
		snprintf(text, sizeof(text), "%s", arg);
	}
	return access_rule_parse(text, true, r, &err) == 0 && !r->all;
}

/* The addresses of `args`; false (and reported) when one is not an address. */
static bool
parse_blocks(struct imp *im, adir *d, char *const *args, size_t n, struct az_set *s)
{
	for (size_t i = 0; i < n; i++) {
		struct access_rule r;

		if (!parse_block(args[i], &r)) {
			imp_report(im, d,
				   "\"%s\": portico decides by client address only; this rule "
				   "grants no one in the result",
				   args[i]);
			return false;
		}
		set_add(s, &r);
	}
	return true;
}

static void
add_local(struct az_set *s)
{
	struct access_rule r;
	const char *err;

	if (access_rule_parse("127.0.0.0/8", true, &r, &err) == 0)
		set_add(s, &r);
	if (access_rule_parse("::1", true, &r, &err) == 0)
		set_add(s, &r);
}

/* "Require [not] entity args..." */
static void
eval_require(struct imp *im, adir *d, struct az_val *v, bool *negative)
{
	bool neg = d->nargs > 0 && eq(d->args[0], "not");
	size_t a = neg ? 1 : 0;
	const char *what = d->nargs > a ? d->args[a] : "";
	struct az_set set = {0};

	*negative = neg;
	if (eq(what, "all") && d->nargs == a + 2 && !neg) {
		if (eq(d->args[a + 1], "granted"))
			val_all(v);
		else if (!eq(d->args[a + 1], "denied"))
			imp_report(im, d, "expects all granted or all denied");
		if (eq(d->args[a + 1], "granted") || eq(d->args[a + 1], "denied"))
			imp_imported(im, d);
		return;
	}
	if (eq(what, "ip") && d->nargs > a + 1) {
		if (!parse_blocks(im, d, d->args + a + 1, d->nargs - a - 1, &set)) {
			set_free(&set);
			return;
		}
	} else if (eq(what, "local") && d->nargs == a + 1) {
		add_local(&set);
	} else {
		imp_report(im, d,
			   "Require %s: portico decides by client address only; this rule "
			   "grants no one in the result",
			   what);
		return;
	}
	imp_imported(im, d);
	if (neg) {
		struct az_term *t = val_push(v);

		t->p.all = true;
		t->neg = set;
	} else {
		val_push(v)->p = set;
	}
}

/* ---- sections ---- */

static bool eval_items(struct imp *im, adir *const *items, size_t n, int kind, struct az_val *v);

enum { K_ANY, K_ALL, K_NONE };

static int
section_kind(adir *d)
{
	return eq(d->name, "RequireAll") ? K_ALL : eq(d->name, "RequireNone") ? K_NONE : K_ANY;
}

/* ¬(union of positive terms): a term "every address but those". */
static bool
negate(const struct az_val *in, struct az_val *out)
{
	struct az_term *t;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < in->n; i++)
		if (in->t[i].neg.n > 0 || in->t[i].neg.all || in->t[i].p.all)
			return in->n == 1 && in->t[i].p.all && in->t[i].neg.n == 0;
	t = val_push(out);
	t->p.all = true;
	for (size_t i = 0; i < in->n; i++)
		set_union(&t->neg, &in->t[i].p);
	return true;
}

/* One item of a Require section into `acc`, combined as `kind` says. */
static bool
eval_item(struct imp *im, adir *d, int kind, struct az_val *acc, bool *first)
{
	struct az_val one = {0}, tmp;
	bool neg = false, ok = true;

	if (d->section) {
		imp_imported(im, d);
		ok = eval_items(im, d->children, d->nchildren, section_kind(d), &one);
	} else if (eq(d->name, "Require")) {
		eval_require(im, d, &one, &neg);
	} else {
		imp_report(im, d, "not read inside <%s>", d->parent ? d->parent->name : "Require");
		return true;
	}
	if (neg && kind == K_ANY) {
		imp_report(im, d, "a negated rule decides nothing outside <RequireAll>");
		val_free(&one);
		return ok;
	}
	if (kind == K_ANY || kind == K_NONE) {
		val_union(acc, &one);
		return ok;
	}
	if (*first) {
		*acc = one;
		*first = false;
		return ok;
	}
	ok = val_and(acc, &one, &tmp) && ok;
	val_free(acc);
	val_free(&one);
	*acc = tmp;
	return ok;
}

static bool
eval_items(struct imp *im, adir *const *items, size_t n, int kind, struct az_val *v)
{
	struct az_val acc = {0}, neg;
	bool first = true, ok = true;

	for (size_t i = 0; i < n; i++)
		ok = eval_item(im, items[i], kind, &acc, &first) && ok;
	if (kind == K_ALL && first)
		val_all(&acc); /* an empty <RequireAll> */
	if (kind != K_NONE) {
		*v = acc;
		return ok;
	}
	if (!negate(&acc, &neg))
		ok = false;
	val_free(&acc);
	*v = neg;
	return ok;
}

/* ---- 2.2: Order, Allow, Deny ---- */

struct compat {
	bool deny_first; /* Order Deny,Allow (the default) */
	struct az_set allow, deny;
	bool allow_bad, deny_bad;
};

static void
compat_list(struct imp *im, adir *d, struct compat *c)
{
	bool allow = eq(d->name, "Allow");
	struct az_set *s = allow ? &c->allow : &c->deny;

	if (d->nargs < 2 || !eq(d->args[0], "from")) {
		imp_report(im, d, "expects \"from\" and addresses");
		return;
	}
	for (size_t i = 1; i < d->nargs; i++) {
		if (eq(d->args[i], "all")) {
			s->all = true;
			continue;
		}
		if (!parse_blocks(im, d, d->args + i, 1, s)) {
			*(allow ? &c->allow_bad : &c->deny_bad) = true;
			return;
		}
	}
	imp_imported(im, d);
}

static void
compat_order(struct imp *im, adir *d, struct compat *c)
{
	const char *o = d->nargs == 1 ? d->args[0] : "";

	if (eq(o, "deny,allow")) {
		c->deny_first = true;
	} else if (eq(o, "allow,deny") || eq(o, "mutual-failure")) {
		c->deny_first = false;
	} else {
		imp_report(im, d, "expects Deny,Allow, Allow,Deny or Mutual-failure");
		return;
	}
	imp_imported(im, d);
}

/*
 * Deny,Allow: allowed when in Allow or not in Deny.  Allow,Deny: allowed when
 * in Allow and not in Deny.  A host name in Deny cannot be excluded: the
 * term it belongs to is dropped (grants less).
 */
static bool
compat_value(const struct compat *c, struct az_val *v)
{
	struct az_term *t;

	memset(v, 0, sizeof(*v));
	if (c->deny_first) {
		if (!set_empty(&c->allow))
			set_copy(&val_push(v)->p, &c->allow);
		if (!c->deny_bad) {
			t = val_push(v);
			t->p.all = true;
			set_copy(&t->neg, &c->deny);
		}
		return !c->deny_bad && !c->allow_bad;
	}
	if (c->deny_bad || set_empty(&c->allow))
		return !c->deny_bad && !c->allow_bad;
	t = val_push(v);
	set_copy(&t->p, &c->allow);
	set_copy(&t->neg, &c->deny);
	return !c->allow_bad;
}

/* ---- a scope ---- */

void
imp_authz_add(struct imp *im, struct imp_scope *sc, adir *d)
{
	(void)im;
	sc->authz.has = true;
	sc->authz.items =
	    xgrow(sc->authz.items, &sc->authz.capitems, sc->authz.nitems, sizeof(adir *));
	sc->authz.items[sc->authz.nitems++] = d;
}

static void
add_rule(struct imp_authz *a, const struct access_rule *r, bool allow, size_t *cap)
{
	a->rules = xgrow(a->rules, cap, a->n, sizeof(*a->rules));
	a->rules[a->n] = *r;
	a->rules[a->n++].allow = allow;
}

static void
add_set(struct imp_authz *a, const struct az_set *s, bool allow, size_t *cap)
{
	struct access_rule all = {.all = true};

	if (s->all) {
		add_rule(a, &all, allow, cap);
		return;
	}
	for (size_t i = 0; i < s->n; i++)
		add_rule(a, &s->r[i], allow, cap);
}

/*
 * The union as a first-match list: the positive terms' allows, then the
 * first term with exceptions (its denies, then its allows).  Other terms
 * with exceptions cannot be added without granting more: false.
 */
static bool
val_to_rules(const struct az_val *v, struct imp_authz *a)
{
	const struct az_term *mixed = NULL;
	size_t cap = 0;
	bool ok = true;

	for (size_t i = 0; i < v->n; i++) {
		const struct az_term *t = &v->t[i];

		if (set_empty(&t->p) || t->neg.all)
			continue;
		if (set_empty(&t->neg)) {
			add_set(a, &t->p, true, &cap);
			if (t->p.all)
				return ok;
		} else if (mixed == NULL) {
			mixed = t;
		} else {
			ok = false;
		}
	}
	if (mixed != NULL) {
		add_set(a, &mixed->neg, false, &cap);
		add_set(a, &mixed->p, true, &cap);
	}
	if (a->n == 0) {
		struct access_rule all = {.all = true};

		add_rule(a, &all, false, &cap); /* an empty list would allow everyone */
	}
	return ok;
}

static void
compat_item(struct imp *im, adir *d, struct compat *c, bool *seen)
{
	*seen = true;
	if (eq(d->name, "Order"))
		compat_order(im, d, c);
	else
		compat_list(im, d, c);
}

void
imp_authz_finish(struct imp *im, struct imp_scope *sc)
{
	struct imp_authz *a = &sc->authz;
	struct compat c = {.deny_first = true};
	struct az_val req = {0}, cv, both;
	bool compat_seen = false, ok = true, any_require = false;
	adir **requires = xcalloc(a->nitems + 1, sizeof(adir *));
	size_t nreq = 0;

	if (!a->has) {
		xfree(requires);
		return;
	}
	for (size_t i = 0; i < a->nitems; i++) {
		adir *d = a->items[i];

		if (eq(d->name, "Order") || eq(d->name, "Allow") || eq(d->name, "Deny"))
			compat_item(im, d, &c, &compat_seen);
		else if (eq(d->name, "Satisfy") && d->nargs == 1 && eq(d->args[0], "all"))
			imp_imported(im, d);
		else if (eq(d->name, "Satisfy"))
			imp_report(im, d,
				   "portico does no authentication: the address rules "
				   "alone decide");
		else
		requires[nreq++] = d;
	}
	any_require = nreq > 0;
	if (any_require)
		ok = eval_items(im, requires, nreq, K_ANY, &req);
	if (compat_seen) {
		ok = compat_value(&c, &cv) && ok;
		if (any_require) {
			ok = val_and(&req, &cv, &both) && ok;
			val_free(&req);
			val_free(&cv);
			req = both;
		} else {
			req = cv;
		}
	}
	a->exact = val_to_rules(&req, a) && ok;
	if (!a->exact && sc->d != NULL)
		imp_report_part(im, sc->d,
				"its access rules cannot all be expressed as a "
				"first-match address list; the result grants less");
	val_free(&req);
	set_free(&c.allow);
	set_free(&c.deny);
	xfree(requires);
}

void
imp_authz_free(struct imp_authz *a)
{
	xfree(a->items);
	xfree(a->rules);
	memset(a, 0, sizeof(*a));
}

static void
source_tree(struct ynode *n, adir *d)
{
	ynode_source(n, d);
	for (size_t i = 0; d->section && i < d->nchildren; i++)
		source_tree(n, d->children[i]);
}

struct ynode *
imp_authz_yaml(const struct imp_authz *a)
{
	struct ynode *seq = ynode_seq();

	for (size_t i = 0; i < a->nitems; i++)
		source_tree(seq, a->items[i]);
	for (size_t i = 0; i < a->n; i++) {
		struct ynode *item = ynode_map();
		struct buf b;
		const char *v;

		buf_init(&b);
		access_rule_format(&a->rules[i], &b);
		v = strchr(b.data, ' ') + 1;
		ynode_put(item, a->rules[i].allow ? "allow" : "deny", ynode_scalar(v));
		ynode_push(seq, item);
		buf_free(&b);
	}
	return seq;
}
