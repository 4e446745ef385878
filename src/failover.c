/*
 * failover.c: the exchange and upstream groups (SPEC section 12): the
 * server a request goes to (group.h chooses, on the hash key taken from
 * the request here), where the connection goes, what a failure does to the
 * server, and moving the request to another server when that is safe, so
 * that the client never sees the failure.  Part of the exchange
 * (exchange_int.h); the down/up log lines are written here.
 */
#include <string.h>

#include "exchange_int.h"
#include "portico/group.h"
#include "portico/log.h"
#include "portico/route.h"

/* --- the hash key ------------------------------------------------------------------ */

/* The value of cookie `name` in the request's Cookie fields, or NULL. */
static const char *
cookie_value(const struct head *h, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];
		const char *p = head_value(h, f), *end = p + f->value_len;

		if (!ascii_casecmp_eq(head_name(h, f), f->name_len, "cookie", 6))
			continue;
		while (p < end) {
			const char *semi = memchr(p, ';', (size_t)(end - p)), *stop;

			stop = semi ? semi : end;
			while (p < stop && (*p == ' ' || *p == '\t'))
				p++;
			if ((size_t)(stop - p) > nlen && memcmp(p, name, nlen) == 0 &&
			    p[nlen] == '=') {
				*len = (size_t)(stop - p) - nlen - 1;
				return p + nlen + 1;
			}
			p = stop + 1;
		}
	}
	return NULL;
}

/* The value of the first field named `name`, or NULL. */
static const char *
field_value(const struct head *h, const char *name, size_t *len)
{
	size_t nlen = strlen(name);

	for (unsigned i = 0; i < h->nfields; i++) {
		const struct head_field *f = &h->fields[i];

		if (ascii_casecmp_eq(head_name(h, f), f->name_len, name, nlen)) {
			*len = f->value_len;
			return head_value(h, f);
		}
	}
	return NULL;
}

static struct group_key
hash_key(const struct exchange *ex, const struct server_group *g)
{
	struct group_key k = {0};

	switch (g->hash_key) {
	case GROUP_HASH_CLIENT_IP:
		k.data = ex->client;
		k.len = strlen(ex->client);
		break;
	case GROUP_HASH_HEADER:
		k.data = field_value(ex->req, g->hash_name, &k.len);
		break;
	case GROUP_HASH_COOKIE:
		k.data = cookie_value(ex->req, g->hash_name, &k.len);
		break;
	}
	return k;
}

/* --- choosing and connecting ----------------------------------------------------------- */

static void
use_server(struct exchange *ex, const struct group_server *s)
{
	if (ex->srv != NULL)
		group_server_end(ex->srv);
	ex->srv = s;
	if (s != NULL) {
		group_server_begin(s);
		ex->tried |= (uint64_t)1 << s->index;
	}
}

int
failover_pick(struct exchange *ex, const char **why)
{
	const struct server_group *g = ex->route->group;
	struct group_key key = {0};
	const struct group_server *s;
	uint64_t now = ex_now_us();

	if (g->balance == GROUP_HASH)
		key = hash_key(ex, g);
	s = group_pick(g, &key, ex->tried, now);
	if (s == NULL) {
		*why = "no server up";
		ex->s->retry_after = group_retry_after(g, now);
		log_req(LOG_LEVEL_ERROR, ex_id(ex), "no server up in upstream group %s route=%s",
			g->name, ex->route->name);
		return -1;
	}
	use_server(ex, s);
	return 0;
}

void
failover_dest(const struct exchange *ex, struct upstream_dest *d)
{
	const struct route *r = ex->route;
	const struct group_server *s = ex->srv;

	if (s != NULL) {
		d->host = s->host;
		d->port = s->port;
		d->unix_path = s->unix_path;
		d->sni = r->group->host ? r->group->host : s->host ? s->host : "localhost";
	} else {
		d->host = r->upstream.host;
		d->port = r->upstream.port;
		d->unix_path = r->unix_path;
		d->sni = r->upstream.host;
	}
}

const char *
failover_authority(const struct exchange *ex)
{
	const struct route *r = ex->route;

	if (ex->srv == NULL)
		return r->upstream.authority;
	return r->group->host ? r->group->host : ex->srv->authority;
}

void
failover_release(struct exchange *ex)
{
	use_server(ex, NULL);
}

/* --- outcomes ---------------------------------------------------------------------------- */

void
failover_ok(struct exchange *ex)
{
	const struct group_server *s = ex->srv;

	if (s != NULL && group_server_ok(s))
		log_info("upstream server up group=%s server=%s reason=a request succeeded",
			 ex->route->group->name, s->address);
}

bool
failover_retry(struct exchange *ex, const struct upstream_failure *f)
{
	const struct server_group *g = ex->route->group;
	const struct group_server *s = ex->srv, *next;
	struct group_key key = {0};
	uint64_t now = ex_now_us();

	/* A failure (SPEC 12): nothing of the response, or a read timeout before its head. */
	if (s == NULL || ex->rs != EXCHANGE_RESP_WAIT || (f->got_bytes && f->status != 504))
		return false;
	if (group_server_failed(g, s, f->reason, now))
		log_warn("upstream server down group=%s server=%s reason=%s failures=%llu "
			 "down_for=%llums",
			 g->name, s->address, f->reason, (unsigned long long)g->passive.failures,
			 (unsigned long long)g->passive.down_ms);
	if (ex->failovers >= g->retries || !ex_is_idempotent(ex->req->method) ||
	    !(ex->req->body == HEAD_BODY_NONE ||
	      (ex->body_bytes == 0 && ex->rq == EXCHANGE_REQ_BODY)))
		return false;
	if (g->balance == GROUP_HASH)
		key = hash_key(ex, g);
	if ((next = group_pick(g, &key, ex->tried, now)) == NULL)
		return false;
	log_req(LOG_LEVEL_INFO, ex_id(ex),
		"retrying on another server group=%s from=%s to=%s reason=%s", g->name, s->address,
		next->address, f->reason);
	ex->failovers++;
	upstream_close(ex->up, f->reason);
	ex->up = NULL;
	use_server(ex, next);
	return true;
}
