/*
 * resolve.c: the per-worker resolver.  Owns the name tables (`hosts:`
 * overrides, then /etc/hosts), the answer cache with its expiry, and the
 * evdns queries: at most one per name at a time, shared by every lookup that
 * waits for it.  Every answer reaches its caller through the request's own
 * zero-timeout event, so no callback ever runs inside resolver_lookup().
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "portico/config.h"
#include "portico/resolve.h"
#include "portico/util.h"

#define RESOLVER_MAGIC 0x7265736fu
#define TTL_MIN_S      1
#define TTL_MAX_S      300
#define TTL_NEGATIVE_S 5
#define HOSTS_FILE     "/etc/hosts"

struct name_addr {
	char *name; /* lower case */
	struct sockaddr_storage sa;
	socklen_t salen;
};

struct name_table {
	struct name_addr *v;
	size_t n, cap;
};

enum entry_state {
	ENTRY_QUERY_A,	  /* the A query is in flight */
	ENTRY_QUERY_AAAA, /* the A query found nothing; the AAAA query is in flight */
	ENTRY_DONE,	  /* answered (err NULL) or failed, until expires_us */
};

struct cache_entry {
	struct cache_entry *next;
	struct resolver *r;
	char *name;
	enum entry_state state;
	const char *err;   /* ENTRY_DONE: NULL when sa holds the answer */
	const char *a_err; /* ENTRY_QUERY_AAAA: why the A query found nothing */
	struct sockaddr_storage sa;
	socklen_t salen;
	int64_t expires_us; /* CLOCK_MONOTONIC */
	bool dropped;	    /* the cache was dropped while querying: forget the answer */
	struct resolve_req *waiters;
};

struct resolve_req {
	struct resolve_req *prev, *next; /* in entry->waiters, else in r->ready */
	struct resolver *r;
	struct cache_entry *entry; /* waited for; NULL once the answer is in */
	struct event *ev;
	uint16_t port;
	const char *err;
	struct sockaddr_storage sa;
	socklen_t salen;
	resolve_cb cb;
	void *arg;
};

struct resolver {
	unsigned magic;
	struct event_base *base;
	struct evdns_base *dns;
	struct name_table overrides;
	struct name_table hosts;
	struct cache_entry *cache;
	struct resolve_req *ready; /* answered; their events are active */
};

static int64_t
monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
parse_numeric(const char *host, struct sockaddr_storage *sa, socklen_t *salen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*salen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*salen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static void
set_port(struct sockaddr_storage *sa, uint16_t port)
{
	if (sa->ss_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
}

/* ---- name tables: `hosts:` overrides and /etc/hosts ---- */

static const struct name_addr *
name_table_find(const struct name_table *t, const char *host)
{
	size_t hlen = strlen(host);

	for (size_t i = 0; i < t->n; i++)
		if (ascii_casecmp_eq(t->v[i].name, strlen(t->v[i].name), host, hlen))
			return &t->v[i];
	return NULL;
}

/* Adds name -> addr unless the name is there already (the first one wins). */
static void
name_table_add(struct name_table *t, const char *name, size_t len, const char *addr)
{
	struct name_addr *na;
	char *lower = xstrndup(name, len);

	for (size_t i = 0; i < len; i++)
		lower[i] = ascii_lower(lower[i]);
	if (name_table_find(t, lower) != NULL)
		goto skip;
	t->v = xgrow(t->v, &t->cap, t->n, sizeof(*t->v));
	na = &t->v[t->n];
	if (parse_numeric(addr, &na->sa, &na->salen) < 0)
		goto skip;
	na->name = lower;
	t->n++;
	return;
skip:
	xfree(lower);
}

static void
name_table_clear(struct name_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		xfree(t->v[i].name);
	xfree(t->v);
	memset(t, 0, sizeof(*t));
}

/* One /etc/hosts line: an address, then its names; '#' starts a comment. */
static void
hosts_parse_line(struct name_table *t, char *line)
{
	static const char *const ws = " \t\r\n";
	char *save = NULL, *addr, *name;

	line[strcspn(line, "#")] = '\0';
	addr = strtok_r(line, ws, &save);
	if (addr == NULL)
		return;
	while ((name = strtok_r(NULL, ws, &save)) != NULL)
		name_table_add(t, name, strlen(name), addr);
}

/*
 * Read once when the resolver is built, before its event loop runs (evdns
 * only consults its own copy of this file from evdns_getaddrinfo(), which
 * cannot report a TTL, so the resolver keeps its own).
 */
static void
hosts_load(struct name_table *t, const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL)
		return;
	while (getline(&line, &cap, f) >= 0)
		hosts_parse_line(t, line);
	free(line);
	fclose(f);
}

/* ---- requests ---- */

static void
req_link(struct resolve_req **head, struct resolve_req *q)
{
	q->prev = NULL;
	q->next = *head;
	if (*head)
		(*head)->prev = q;
	*head = q;
}

static void
req_unlink(struct resolve_req **head, struct resolve_req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		*head = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void
req_destroy(struct resolve_req *q)
{
	event_free(q->ev);
	xfree(q);
}

/* The answer is in: queue the callback for the next loop iteration. */
static void
req_answer(struct resolve_req *q, const char *err, const struct sockaddr_storage *sa,
	   socklen_t salen)
{
	struct resolver *r = q->r;

	if (q->entry) {
		req_unlink(&q->entry->waiters, q);
		q->entry = NULL;
	}
	q->err = err;
	if (err == NULL) {
		memcpy(&q->sa, sa, salen);
		q->salen = salen;
		set_port(&q->sa, q->port);
	}
	req_link(&r->ready, q);
	event_active(q->ev, EV_TIMEOUT, 1);
}

static void
req_fire(evutil_socket_t fd, short what, void *arg)
{
	struct resolve_req *q = arg;
	struct sockaddr_storage sa = q->sa;
	socklen_t salen = q->salen;
	const char *err = q->err;
	resolve_cb cb = q->cb;
	void *cbarg = q->arg;

	(void)fd;
	(void)what;
	PORTICO_ASSERT(q->r->magic == RESOLVER_MAGIC);
	req_unlink(&q->r->ready, q);
	req_destroy(q);
	cb(err, err ? NULL : (const struct sockaddr *)&sa, err ? 0 : salen, cbarg);
}

/* ---- the cache and its queries ---- */

static struct cache_entry *
cache_find(struct resolver *r, const char *host)
{
	size_t hlen = strlen(host);

	for (struct cache_entry *e = r->cache; e; e = e->next)
		if (!e->dropped && ascii_casecmp_eq(e->name, strlen(e->name), host, hlen))
			return e;
	return NULL;
}

static void
cache_remove(struct resolver *r, struct cache_entry *e)
{
	struct cache_entry **pp = &r->cache;

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	while (e->waiters) {
		struct resolve_req *q = e->waiters;

		req_unlink(&e->waiters, q);
		req_destroy(q);
	}
	xfree(e->name);
	xfree(e);
}

static bool
entry_is_fresh(const struct cache_entry *e)
{
	return e->state == ENTRY_DONE && monotonic_us() < e->expires_us;
}

static void
entry_finish(struct cache_entry *e, const char *err, const struct sockaddr_storage *sa,
	     socklen_t salen, int ttl)
{
	if (err) {
		ttl = TTL_NEGATIVE_S;
	} else {
		memcpy(&e->sa, sa, salen);
		e->salen = salen;
		ttl = ttl < TTL_MIN_S ? TTL_MIN_S : ttl > TTL_MAX_S ? TTL_MAX_S : ttl;
	}
	e->state = ENTRY_DONE;
	e->err = err;
	e->expires_us = monotonic_us() + (int64_t)ttl * 1000000;
	while (e->waiters)
		req_answer(e->waiters, err, &e->sa, e->salen);
	if (e->dropped)
		cache_remove(e->r, e);
}

static const char *
dns_error_string(int result)
{
	switch (result) {
	case DNS_ERR_NOTEXIST:
		return "name not found";
	case DNS_ERR_NODATA:
		return "no address for the name";
	case DNS_ERR_TIMEOUT:
		return "timeout";
	case DNS_ERR_REFUSED:
		return "refused by the name server";
	case DNS_ERR_SERVERFAILED:
		return "name server failure";
	default:
		return "lookup failed";
	}
}

static void dns_answered(int result, char type, int count, int ttl, void *addrs, void *arg);

static void
entry_query(struct cache_entry *e, enum entry_state state)
{
	struct evdns_base *dns = e->r->dns;
	struct evdns_request *req;

	e->state = state;
	if (state == ENTRY_QUERY_A)
		req = evdns_base_resolve_ipv4(dns, e->name, 0, dns_answered, e);
	else
		req = evdns_base_resolve_ipv6(dns, e->name, 0, dns_answered, e);
	if (req == NULL)
		entry_finish(e, "lookup failed", NULL, 0, 0);
}

static int
dns_first_address(char type, const void *addrs, struct sockaddr_storage *sa, socklen_t *salen)
{
	memset(sa, 0, sizeof(*sa));
	if (type == DNS_IPv4_A) {
		struct sockaddr_in *sin = (struct sockaddr_in *)sa;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, addrs, sizeof(sin->sin_addr));
		*salen = sizeof(*sin);
		return 0;
	}
	if (type == DNS_IPv6_AAAA) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)sa;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, addrs, sizeof(sin6->sin6_addr));
		*salen = sizeof(*sin6);
		return 0;
	}
	return -1;
}

/* evdns reply: an address ends the lookup; no A record moves on to AAAA. */
static void
dns_answered(int result, char type, int count, int ttl, void *addrs, void *arg)
{
	struct cache_entry *e = arg;
	struct sockaddr_storage sa;
	socklen_t salen;

	PORTICO_ASSERT(e->r->magic == RESOLVER_MAGIC);
	if (result == DNS_ERR_NONE && count > 0 &&
	    dns_first_address(type, addrs, &sa, &salen) == 0) {
		entry_finish(e, NULL, &sa, salen, ttl);
		return;
	}
	if (result == DNS_ERR_NONE)
		result = DNS_ERR_NODATA;
	if (e->state == ENTRY_QUERY_A && result != DNS_ERR_NOTEXIST) {
		e->a_err = dns_error_string(result);
		entry_query(e, ENTRY_QUERY_AAAA);
		return;
	}
	if (e->state == ENTRY_QUERY_AAAA && result == DNS_ERR_NODATA)
		entry_finish(e, e->a_err, NULL, 0, 0);
	else
		entry_finish(e, dns_error_string(result), NULL, 0, 0);
}

/* The entry `q` waits on, with a query started when there is no fresh answer. */
static void
cache_wait(struct resolver *r, const char *host, struct resolve_req *q)
{
	struct cache_entry *e = cache_find(r, host);

	if (e == NULL) {
		e = xcalloc(1, sizeof(*e));
		e->r = r;
		e->name = xstrdup(host);
		e->state = ENTRY_DONE;
		e->next = r->cache;
		r->cache = e;
	}
	if (entry_is_fresh(e)) {
		req_answer(q, e->err, &e->sa, e->salen);
		return;
	}
	q->entry = e;
	req_link(&e->waiters, q);
	if (e->state == ENTRY_DONE)
		entry_query(e, ENTRY_QUERY_A);
}

/* ---- the public functions ---- */

static int
answer_now(struct resolver *r, const char *host, struct sockaddr_storage *sa, socklen_t *salen)
{
	const struct name_addr *na;
	struct cache_entry *e;

	if (parse_numeric(host, sa, salen) == 0)
		return 0;
	if ((na = name_table_find(&r->overrides, host)) == NULL)
		na = name_table_find(&r->hosts, host);
	if (na) {
		memcpy(sa, &na->sa, na->salen);
		*salen = na->salen;
		return 0;
	}
	e = cache_find(r, host);
	if (e && e->err == NULL && entry_is_fresh(e)) {
		memcpy(sa, &e->sa, e->salen);
		*salen = e->salen;
		return 0;
	}
	return -1;
}

static struct resolver *
resolver_wrap(struct event_base *base, struct evdns_base *dns)
{
	struct resolver *r = xcalloc(1, sizeof(*r));

	r->magic = RESOLVER_MAGIC;
	r->base = base;
	r->dns = dns;
	hosts_load(&r->hosts, HOSTS_FILE);
	return r;
}

struct resolver *
resolver_new(struct event_base *base)
{
	struct evdns_base *dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS);

	/* An unreadable resolv.conf leaves a resolver that only knows the tables. */
	if (dns == NULL && (dns = evdns_base_new(base, 0)) == NULL)
		fatal("cannot create a DNS resolver");
	return resolver_wrap(base, dns);
}

struct resolver *
resolver_new_with_nameserver(struct event_base *base, const char *nameserver)
{
	struct evdns_base *dns = evdns_base_new(base, 0);

	if (dns == NULL)
		fatal("cannot create a DNS resolver");
	if (evdns_base_nameserver_ip_add(dns, nameserver) != 0) {
		evdns_base_free(dns, 0);
		return NULL;
	}
	return resolver_wrap(base, dns);
}

/*
 * Pending evdns queries are discarded without calling back (fail_requests
 * 0), so the entries they point to can go.  Call it from outside the
 * resolver's own callbacks.
 */
void
resolver_free(struct resolver *r)
{
	if (r == NULL)
		return;
	PORTICO_ASSERT(r->magic == RESOLVER_MAGIC);
	evdns_base_free(r->dns, 0);
	while (r->ready) {
		struct resolve_req *q = r->ready;

		req_unlink(&r->ready, q);
		req_destroy(q);
	}
	while (r->cache)
		cache_remove(r, r->cache);
	name_table_clear(&r->overrides);
	name_table_clear(&r->hosts);
	r->magic = 0;
	xfree(r);
}

void
resolver_set_config(struct resolver *r, const struct config *cfg)
{
	struct cache_entry *e, *next;

	PORTICO_ASSERT(r->magic == RESOLVER_MAGIC);
	name_table_clear(&r->overrides);
	for (size_t i = 0; cfg && i < cfg->nhosts; i++)
		name_table_add(&r->overrides, cfg->hosts[i].name, strlen(cfg->hosts[i].name),
			       cfg->hosts[i].addr);
	/* Answers in flight still reach their waiters but are not kept. */
	for (e = r->cache; e; e = next) {
		next = e->next;
		if (e->state == ENTRY_DONE)
			cache_remove(r, e);
		else
			e->dropped = true;
	}
}

int
resolver_lookup_now(struct resolver *r, const char *host, uint16_t port,
		    struct sockaddr_storage *sa, socklen_t *salen)
{
	PORTICO_ASSERT(r->magic == RESOLVER_MAGIC);
	if (answer_now(r, host, sa, salen) < 0)
		return -1;
	set_port(sa, port);
	return 0;
}

struct resolve_req *
resolver_lookup(struct resolver *r, const char *host, uint16_t port, resolve_cb cb, void *arg)
{
	struct resolve_req *q = xcalloc(1, sizeof(*q));
	struct sockaddr_storage sa;
	socklen_t salen;

	PORTICO_ASSERT(r->magic == RESOLVER_MAGIC);
	q->r = r;
	q->port = port;
	q->cb = cb;
	q->arg = arg;
	q->ev = evtimer_new(r->base, req_fire, q);
	if (q->ev == NULL)
		fatal("out of memory creating an event");
	if (answer_now(r, host, &sa, &salen) == 0)
		req_answer(q, NULL, &sa, salen);
	else
		cache_wait(r, host, q);
	return q;
}

void
resolve_cancel(struct resolve_req *q)
{
	if (q == NULL)
		return;
	if (q->entry)
		req_unlink(&q->entry->waiters, q);
	else
		req_unlink(&q->r->ready, q);
	req_destroy(q);
}
