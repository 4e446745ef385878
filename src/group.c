/*
 * group.c: upstream groups (group.h): the per-tier round-robin sequence
 * and hash ring built at load, the choice of a server, the shared state of
 * every server (atomics only) and its reports (/upstreams, /metrics).
 *
 * Round robin: nginx's smooth weighted round robin gives, for fixed
 * weights, a fixed sequence of period sum(weights) (weights 5,1,1 give
 * a a b a c a a, never a burst of five).  It is computed once at load, and
 * a request takes the next slot with one atomic increment shared by all
 * workers; a slot whose server is down or already tried is skipped, so the
 * servers that are up keep their shares relative to each other.
 *
 * Hash: a ring with GROUP_VNODES points per unit of weight, each point the
 * hash of the server's address and the point's number, so a server's
 * points do not depend on the other servers: adding or removing one of N
 * servers moves only the keys whose nearest point was (or becomes) one of
 * its points, about 1/N of them.  A key goes to the first point clockwise
 * whose server is up and not yet tried, so while a server is down only its
 * own keys move, and they come back when it does.  Maglev hashing would
 * spread keys a little more evenly with O(1) lookups, but it needs its
 * table rebuilt whenever a server goes down or up, which here is shared
 * state changed from several threads; the ring is read-only after load.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/config.h"
#include "portico/group.h"

#define GROUP_VNODES	   100
#define GROUP_REASON_MAX   96
#define GROUP_STATE_MAGIC  0x47535441u
#define GROUP_READ_RETRIES 8

struct group_state {
	unsigned magic;
	_Atomic unsigned refs;
	_Atomic unsigned fails;		/* consecutive passive failures */
	_Atomic bool passive_down;	/* down after `passive.failures` failures */
	_Atomic uint64_t down_until_us; /* ... until then; a trial request after it */
	_Atomic bool check_down;	/* held down by the active checks */
	_Atomic unsigned check_count;	/* consecutive check results of one kind (checker only) */
	_Atomic bool check_last_ok;	/* the kind of those results */
	_Atomic int64_t conns;		/* requests in flight, every worker */
	_Atomic uint64_t requests, failures;
	_Atomic unsigned reason_seq; /* odd while `reason` is being written */
	_Atomic char reason[GROUP_REASON_MAX];
};

struct ring_point {
	uint64_t hash;
	unsigned server;
};

struct group_tier {
	unsigned *servers; /* indices into the group's servers */
	size_t n;
	uint64_t weight; /* the sum of the weights */
	unsigned *seq;	 /* the smooth round-robin sequence, `weight` slots */
	_Atomic uint64_t next;
	struct ring_point *ring;
	size_t nring;
};

/* --- hashing ---------------------------------------------------------------------- */

static uint64_t
mix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

uint64_t
group_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return mix64(h);
}

/* --- state ------------------------------------------------------------------------- */

static struct group_state *
state_new(void)
{
	struct group_state *st = xcalloc(1, sizeof(*st));

	st->magic = GROUP_STATE_MAGIC;
	atomic_init(&st->refs, 1);
	atomic_init(&st->check_last_ok, true);
	return st;
}

static struct group_state *
state_ref(struct group_state *st)
{
	atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
	return st;
}

static void
state_unref(struct group_state *st)
{
	if (st == NULL)
		return;
	PORTICO_ASSERT(st->magic == GROUP_STATE_MAGIC);
	if (atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1) {
		st->magic = 0;
		free(st);
	}
}

/*
 * The last failure's reason: a writer that finds another one at work
 * leaves the text to it; a reader copies until the sequence is even and
 * unchanged around its copy.
 */
static void
state_set_reason(struct group_state *st, const char *reason)
{
	unsigned seq = atomic_load_explicit(&st->reason_seq, memory_order_relaxed);
	size_t i = 0;

	if ((seq & 1) != 0 ||
	    !atomic_compare_exchange_strong_explicit(&st->reason_seq, &seq, seq + 1,
						     memory_order_acquire, memory_order_relaxed))
		return;
	for (; reason[i] != '\0' && i + 1 < GROUP_REASON_MAX; i++)
		atomic_store_explicit(&st->reason[i], reason[i], memory_order_relaxed);
	atomic_store_explicit(&st->reason[i], '\0', memory_order_relaxed);
	atomic_store_explicit(&st->reason_seq, seq + 2, memory_order_release);
}

static void
state_get_reason(struct group_state *st, char out[GROUP_REASON_MAX])
{
	for (int tries = 0; tries < GROUP_READ_RETRIES; tries++) {
		unsigned seq = atomic_load_explicit(&st->reason_seq, memory_order_acquire);

		for (size_t i = 0; i < GROUP_REASON_MAX; i++)
			out[i] = atomic_load_explicit(&st->reason[i], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if ((seq & 1) == 0 &&
		    seq == atomic_load_explicit(&st->reason_seq, memory_order_relaxed))
			break;
	}
	out[GROUP_REASON_MAX - 1] = '\0';
}

/* --- building ------------------------------------------------------------------------ */

static void
tier_sequence(const struct server_group *g, struct group_tier *t)
{
	int64_t *cur = xcalloc(t->n, sizeof(*cur));

	t->seq = xcalloc(t->weight, sizeof(*t->seq));
	for (uint64_t step = 0; step < t->weight; step++) {
		size_t best = 0;

		for (size_t i = 0; i < t->n; i++) {
			cur[i] += (int64_t)g->servers[t->servers[i]].weight;
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)t->weight;
		t->seq[step] = t->servers[best];
	}
	free(cur);
}

static int
point_cmp(const void *a, const void *b)
{
	const struct ring_point *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->server < y->server ? -1 : x->server > y->server;
}

static void
tier_ring(const struct server_group *g, struct group_tier *t)
{
	size_t k = 0;

	t->nring = (size_t)t->weight * GROUP_VNODES;
	t->ring = xcalloc(t->nring, sizeof(*t->ring));
	for (size_t i = 0; i < t->n; i++) {
		const struct group_server *s = &g->servers[t->servers[i]];
		uint64_t base = group_hash(s->address, strlen(s->address));

		for (uint64_t v = 0; v < s->weight * GROUP_VNODES; v++) {
			t->ring[k].hash = mix64(base + (v + 1) * 0x9e3779b97f4a7c15ull);
			t->ring[k++].server = t->servers[i];
		}
	}
	qsort(t->ring, t->nring, sizeof(*t->ring), point_cmp);
}

void
group_build(struct server_group *g)
{
	g->tiers = xcalloc(2, sizeof(*g->tiers));
	for (size_t i = 0; i < g->nservers; i++) {
		struct group_tier *t = &g->tiers[g->servers[i].backup];

		t->servers = xrealloc(t->servers, (t->n + 1) * sizeof(*t->servers));
		t->servers[t->n++] = (unsigned)i;
		t->weight += g->servers[i].weight;
		g->servers[i].index = (unsigned)i;
		g->servers[i].st = state_new();
	}
	for (int i = 0; i < 2; i++) {
		if (g->tiers[i].n == 0)
			continue;
		tier_sequence(g, &g->tiers[i]);
		if (g->balance == GROUP_HASH)
			tier_ring(g, &g->tiers[i]);
	}
}

void
group_free(struct server_group *g)
{
	for (size_t i = 0; i < g->nservers; i++) {
		struct group_server *s = &g->servers[i];

		xfree(s->address);
		xfree(s->host);
		xfree(s->unix_path);
		xfree(s->authority);
		state_unref(s->st);
	}
	xfree(g->servers);
	if (g->tiers != NULL)
		for (int i = 0; i < 2; i++) {
			xfree(g->tiers[i].servers);
			xfree(g->tiers[i].seq);
			xfree(g->tiers[i].ring);
		}
	xfree(g->tiers);
	xfree(g->name);
	xfree(g->hash_name);
	xfree(g->host);
	xfree(g->check.path);
}

struct server_group *
group_find(struct server_group *groups, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (ascii_casecmp_eq(groups[i].name, strlen(groups[i].name), name, len))
			return &groups[i];
	return NULL;
}

void
group_adopt_state(struct config *cfg, const struct config *old)
{
	for (size_t i = 0; i < cfg->ngroups; i++) {
		struct server_group *g = &cfg->groups[i];
		const struct server_group *og =
		    group_find(old->groups, old->ngroups, g->name, strlen(g->name));

		for (size_t j = 0; og != NULL && j < g->nservers; j++) {
			struct group_server *s = &g->servers[j];

			for (size_t k = 0; k < og->nservers; k++) {
				if (strcmp(og->servers[k].address, s->address) != 0)
					continue;
				state_unref(s->st);
				s->st = state_ref(og->servers[k].st);
				break;
			}
		}
	}
}

/* --- choosing ----------------------------------------------------------------------- */

bool
group_server_is_up(const struct server_group *g, const struct group_server *s, uint64_t now_us)
{
	struct group_state *st = s->st;

	if (g->active && atomic_load_explicit(&st->check_down, memory_order_relaxed))
		return false;
	if (!atomic_load_explicit(&st->passive_down, memory_order_relaxed))
		return true;
	return now_us >= atomic_load_explicit(&st->down_until_us, memory_order_relaxed);
}

static bool
usable(const struct server_group *g, unsigned i, uint64_t tried, uint64_t now_us)
{
	return (tried & ((uint64_t)1 << i)) == 0 && group_server_is_up(g, &g->servers[i], now_us);
}

/*
 * Takes a usable server for a request.  One whose passive down period is
 * over gets one trial request: the first to move its end further on takes
 * it, the others see it down until that request succeeds or fails.
 */
static bool
take(const struct server_group *g, unsigned i, uint64_t now_us)
{
	struct group_state *st = g->servers[i].st;
	uint64_t until;

	if (!atomic_load_explicit(&st->passive_down, memory_order_relaxed))
		return true;
	until = atomic_load_explicit(&st->down_until_us, memory_order_relaxed);
	return now_us >= until &&
	       atomic_compare_exchange_strong_explicit(&st->down_until_us, &until,
						       now_us + g->passive.down_ms * 1000,
						       memory_order_relaxed, memory_order_relaxed);
}

static const struct group_server *
pick_rr(const struct server_group *g, struct group_tier *t, uint64_t tried, uint64_t now_us)
{
	for (uint64_t n = 0; n < t->weight; n++) {
		uint64_t slot = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
		unsigned i = t->seq[slot % t->weight];

		if (usable(g, i, tried, now_us) && take(g, i, now_us))
			return &g->servers[i];
	}
	return NULL;
}

/* Fewest in flight per unit of weight; among equals, the round-robin order decides. */
static const struct group_server *
least_of(const struct server_group *g, struct group_tier *t, uint64_t tried, uint64_t now_us)
{
	uint64_t start = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
	const struct group_server *best = NULL;
	int64_t best_conns = 0;

	for (size_t n = 0; n < t->n; n++) {
		unsigned i = t->servers[(start + n) % t->n];
		const struct group_server *s = &g->servers[i];
		int64_t c;

		if (!usable(g, i, tried, now_us))
			continue;
		c = atomic_load_explicit(&s->st->conns, memory_order_relaxed);
		if (best == NULL || (__int128)c * (__int128)best->weight <
					(__int128)best_conns * (__int128)s->weight) {
			best = s;
			best_conns = c;
		}
	}
	return best;
}

static const struct group_server *
pick_least(const struct server_group *g, struct group_tier *t, uint64_t tried, uint64_t now_us)
{
	const struct group_server *s;

	while ((s = least_of(g, t, tried, now_us)) != NULL && !take(g, s->index, now_us))
		tried |= (uint64_t)1 << s->index; /* its trial went to another request */
	return s;
}

static const struct group_server *
pick_hash(const struct server_group *g, struct group_tier *t, uint64_t h, uint64_t tried,
	  uint64_t now_us)
{
	size_t lo = 0, hi = t->nring;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->ring[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t n = 0; n < t->nring; n++) {
		unsigned i = t->ring[(lo + n) % t->nring].server;

		if (usable(g, i, tried, now_us) && take(g, i, now_us))
			return &g->servers[i];
	}
	return NULL;
}

const struct group_server *
group_pick(const struct server_group *g, const struct group_key *key, uint64_t tried,
	   uint64_t now_us)
{
	const struct group_server *s = NULL;

	for (int tier = 0; tier < 2 && s == NULL; tier++) {
		struct group_tier *t = &g->tiers[tier];

		if (t->n == 0)
			continue;
		if (g->balance == GROUP_HASH && key != NULL && key->data != NULL)
			s = pick_hash(g, t, group_hash(key->data, key->len), tried, now_us);
		else if (g->balance == GROUP_LEAST_CONN)
			s = pick_least(g, t, tried, now_us);
		else
			s = pick_rr(g, t, tried, now_us);
	}
	return s;
}

unsigned
group_retry_after(const struct server_group *g, uint64_t now_us)
{
	uint64_t best = UINT64_MAX;

	for (size_t i = 0; i < g->nservers; i++) {
		struct group_state *st = g->servers[i].st;
		uint64_t until = atomic_load_explicit(&st->down_until_us, memory_order_relaxed);

		if (g->active && atomic_load_explicit(&st->check_down, memory_order_relaxed)) {
			uint64_t wait = g->check.interval_ms * g->check.rise * 1000;

			best = wait < best ? wait : best;
		} else if (until > now_us && until - now_us < best) {
			best = until - now_us;
		}
	}
	if (best == UINT64_MAX || best < 1000000)
		return 1;
	return (unsigned)((best + 999999) / 1000000);
}

/* --- what happens to a server --------------------------------------------------------- */

void
group_server_begin(const struct group_server *s)
{
	atomic_fetch_add_explicit(&s->st->conns, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->st->requests, 1, memory_order_relaxed);
}

void
group_server_end(const struct group_server *s)
{
	atomic_fetch_sub_explicit(&s->st->conns, 1, memory_order_relaxed);
}

bool
group_server_failed(const struct server_group *g, const struct group_server *s, const char *reason,
		    uint64_t now_us)
{
	struct group_state *st = s->st;
	unsigned fails = atomic_fetch_add_explicit(&st->fails, 1, memory_order_relaxed) + 1;
	bool was = false;

	atomic_fetch_add_explicit(&st->failures, 1, memory_order_relaxed);
	state_set_reason(st, reason);
	if (g->passive.failures == 0 || fails < g->passive.failures)
		return false;
	atomic_store_explicit(&st->down_until_us, now_us + g->passive.down_ms * 1000,
			      memory_order_relaxed);
	return atomic_compare_exchange_strong_explicit(&st->passive_down, &was, true,
						       memory_order_relaxed, memory_order_relaxed);
}

bool
group_server_ok(const struct group_server *s)
{
	struct group_state *st = s->st;
	bool was = true;

	if (atomic_load_explicit(&st->fails, memory_order_relaxed) != 0)
		atomic_store_explicit(&st->fails, 0, memory_order_relaxed);
	if (!atomic_load_explicit(&st->passive_down, memory_order_relaxed))
		return false;
	return atomic_compare_exchange_strong_explicit(&st->passive_down, &was, false,
						       memory_order_relaxed, memory_order_relaxed);
}

bool
group_server_checked(const struct server_group *g, const struct group_server *s, bool ok,
		     const char *reason)
{
	struct group_state *st = s->st;
	bool down = atomic_load_explicit(&st->check_down, memory_order_relaxed);
	unsigned n = atomic_load_explicit(&st->check_count, memory_order_relaxed);

	if (ok != atomic_load_explicit(&st->check_last_ok, memory_order_relaxed))
		n = 0;
	atomic_store_explicit(&st->check_last_ok, ok, memory_order_relaxed);
	atomic_store_explicit(&st->check_count, ++n, memory_order_relaxed);
	if (!ok)
		state_set_reason(st, reason);
	if (!down && !ok && n >= g->check.fall) {
		atomic_store_explicit(&st->check_down, true, memory_order_relaxed);
		return true;
	}
	if (down && ok && n >= g->check.rise) {
		atomic_store_explicit(&st->check_down, false, memory_order_relaxed);
		/* Back in service: the passive count starts over. */
		atomic_store_explicit(&st->fails, 0, memory_order_relaxed);
		atomic_store_explicit(&st->passive_down, false, memory_order_relaxed);
		return true;
	}
	return false;
}

bool
group_server_check_down(const struct group_server *s)
{
	return atomic_load_explicit(&s->st->check_down, memory_order_relaxed);
}

/* --- reporting ------------------------------------------------------------------------- */

static void
json_str(struct buf *out, const char *s)
{
	buf_addc(out, '"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			buf_addf(out, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			buf_addf(out, "\\u%04x", ch);
		else
			buf_addc(out, (char)ch);
	}
	buf_addc(out, '"');
}

static const char *const balance_names[] = {"round_robin", "least_conn", "hash"};

static const char *
server_state_name(const struct server_group *g, const struct group_server *s, uint64_t now_us)
{
	if (g->active && group_server_check_down(s))
		return "down";
	if (!atomic_load_explicit(&s->st->passive_down, memory_order_relaxed))
		return "up";
	return group_server_is_up(g, s, now_us) ? "trial" : "down";
}

static void
json_server(struct buf *out, const struct server_group *g, const struct group_server *s,
	    uint64_t now_us)
{
	struct group_state *st = s->st;
	char reason[GROUP_REASON_MAX];

	state_get_reason(st, reason);
	buf_adds(out, "{\"address\":");
	json_str(out, s->address);
	buf_addf(out,
		 ",\"state\":\"%s\",\"weight\":%llu,\"backup\":%s,\"active_connections\":%lld,"
		 "\"requests\":%llu,\"failures\":%llu,\"consecutive_failures\":%u,"
		 "\"last_failure\":",
		 server_state_name(g, s, now_us), (unsigned long long)s->weight,
		 s->backup ? "true" : "false",
		 (long long)atomic_load_explicit(&st->conns, memory_order_relaxed),
		 (unsigned long long)atomic_load_explicit(&st->requests, memory_order_relaxed),
		 (unsigned long long)atomic_load_explicit(&st->failures, memory_order_relaxed),
		 atomic_load_explicit(&st->fails, memory_order_relaxed));
	if (reason[0] != '\0')
		json_str(out, reason);
	else
		buf_adds(out, "null");
	buf_addc(out, '}');
}

void
group_write_json(const struct config *cfg, struct buf *out, uint64_t now_us)
{
	buf_adds(out, "{\"groups\":[");
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct server_group *g = &cfg->groups[i];

		buf_adds(out, i ? ",{\"name\":" : "{\"name\":");
		json_str(out, g->name);
		buf_addf(out, ",\"balance\":\"%s\",\"active_checks\":%s,\"servers\":[",
			 balance_names[g->balance], g->active ? "true" : "false");
		for (size_t j = 0; j < g->nservers; j++) {
			if (j)
				buf_addc(out, ',');
			json_server(out, g, &g->servers[j], now_us);
		}
		buf_adds(out, "]}");
	}
	buf_adds(out, "]}\n");
}

static void
prom_labels(struct buf *out, const struct server_group *g, const struct group_server *s)
{
	const char *parts[2] = {g->name, s->address};

	for (int i = 0; i < 2; i++) {
		buf_adds(out, i ? ",server=\"" : "{group=\"");
		for (const char *p = parts[i]; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				buf_addc(out, '\\');
			if (*p == '\n')
				buf_adds(out, "\\n");
			else
				buf_addc(out, *p);
		}
		buf_addc(out, '"');
	}
	buf_adds(out, "} ");
}

enum series { S_REQUESTS, S_FAILURES, S_UP, S_CONNS, S_N };

static const char *const series_head[S_N] = {
    "# HELP portico_upstream_server_requests_total Requests sent to each server of a group.\n"
    "# TYPE portico_upstream_server_requests_total counter\n",
    "# HELP portico_upstream_server_failures_total Failures of each server (SPEC 12).\n"
    "# TYPE portico_upstream_server_failures_total counter\n",
    "# HELP portico_upstream_server_up Whether each server takes requests (1) or is down (0).\n"
    "# TYPE portico_upstream_server_up gauge\n",
    "# HELP portico_upstream_server_connections Requests in flight on each server.\n"
    "# TYPE portico_upstream_server_connections gauge\n",
};

static const char *const series_name[S_N] = {
    "portico_upstream_server_requests_total",
    "portico_upstream_server_failures_total",
    "portico_upstream_server_up",
    "portico_upstream_server_connections",
};

static long long
series_value(enum series k, const struct server_group *g, const struct group_server *s,
	     uint64_t now_us)
{
	switch (k) {
	case S_REQUESTS:
		return (long long)atomic_load_explicit(&s->st->requests, memory_order_relaxed);
	case S_FAILURES:
		return (long long)atomic_load_explicit(&s->st->failures, memory_order_relaxed);
	case S_UP:
		return group_server_is_up(g, s, now_us);
	case S_CONNS:
	case S_N:
		break;
	}
	return (long long)atomic_load_explicit(&s->st->conns, memory_order_relaxed);
}

void
group_write_metrics(const struct config *cfg, struct buf *out, uint64_t now_us)
{
	if (cfg->ngroups == 0)
		return;
	for (int k = 0; k < S_N; k++) {
		buf_adds(out, series_head[k]);
		for (size_t i = 0; i < cfg->ngroups; i++)
			for (size_t j = 0; j < cfg->groups[i].nservers; j++) {
				const struct server_group *g = &cfg->groups[i];

				buf_adds(out, series_name[k]);
				prom_labels(out, g, &g->servers[j]);
				buf_addf(out, "%lld\n",
					 series_value((enum series)k, g, &g->servers[j], now_us));
			}
	}
}
