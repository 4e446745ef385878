/*
 * group.h: upstream groups (SPEC section 12): the servers of a group, the
 * choice of one for a request (smooth weighted round robin, least
 * connections, consistent hash; backups only while no primary is up), and
 * the health state of every server.
 *
 * The groups are part of the configuration snapshot and immutable, except
 * for what changes at run time, which sits in each server's struct
 * group_state: consecutive failures, down/up, connections in flight,
 * counters.  That state is shared by every worker and by the health
 * checker (health.h) through atomics only: no lock is taken on the request
 * path.  A round-robin position is one atomic counter per group and tier,
 * so the weights hold across workers, not per worker.  A reload keeps the
 * state of every server whose group and address are unchanged
 * (group_adopt_state).
 *
 * The functions here do not log: the ones that change a server's state
 * return true when it went down or came back up, and the caller logs.
 */
#ifndef PORTICO_GROUP_H
#define PORTICO_GROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "portico/util.h"

struct config;

/* At most this many servers per group (a retry excludes the ones tried: a 64-bit set). */
#define GROUP_MAX_SERVERS 64

enum group_balance {
	GROUP_ROUND_ROBIN, /* smooth weighted round robin, as nginx */
	GROUP_LEAST_CONN,  /* fewest requests in flight (all workers) per unit of weight */
	GROUP_HASH,	   /* consistent hash ring of the key */
};

enum group_hash_key {
	GROUP_HASH_CLIENT_IP,
	GROUP_HASH_HEADER, /* header:NAME */
	GROUP_HASH_COOKIE, /* cookie:NAME */
};

struct group_state;
struct group_tier;

struct group_server {
	char *address;	 /* as written */
	char *host;	 /* lower case; an IPv6 literal without brackets; NULL for unix */
	uint16_t port;	 /* 0 for unix */
	char *unix_path; /* "unix:/path": the socket's path, else NULL */
	char *authority; /* host[:port] for a Host header ("localhost" for unix) */
	uint64_t weight;
	bool backup;
	unsigned index; /* in the group's servers */
	int line, col;
	struct group_state *st;
};

struct server_group {
	char *name;
	int line, col;
	struct group_server *servers;
	size_t nservers;
	int balance; /* enum group_balance */
	enum group_hash_key hash_key;
	char *hash_name; /* header or cookie name; NULL for client_ip */
	char *host;	 /* Host sent upstream; NULL: the server's authority */
	uint64_t retries;
	struct {
		uint64_t failures; /* consecutive failures before down; 0: never down */
		uint64_t down_ms;
	} passive;
	bool active; /* health checks */
	struct {
		char *path;
		uint64_t interval_ms, timeout_ms;
		unsigned expect_lo, expect_hi;
		uint64_t rise, fall;
	} check;
	struct group_tier *tiers; /* [2]: primaries, backups; built by group_build() */
	bool used;		  /* some route passes to it */
};

/* What a hash is computed on; `data` NULL: the request has no key (round robin then). */
struct group_key {
	const char *data;
	size_t len;
};

/* --- the snapshot -------------------------------------------------------------- */

/* After parsing: the round-robin sequences, the hash ring, a fresh state per server. */
void group_build(struct server_group *g);
void group_free(struct server_group *g);
/* The group named `name` (any case), or NULL. */
struct server_group *group_find(struct server_group *groups, size_t n, const char *name,
				size_t len);
/*
 * A reload: every server of `cfg` whose group name and address are in `old`
 * takes over the old one's state (failures, down or up, counters).  Before
 * `cfg` is published to the workers.
 */
void group_adopt_state(struct config *cfg, const struct config *old);

/* --- choosing a server ---------------------------------------------------------- */

/*
 * A server for a request: among the primaries that are up, else among the
 * backups that are up; never one in `tried` (bit i: servers[i]).  NULL
 * when none is left.  `now_us` is monotonic time.
 */
const struct group_server *group_pick(const struct server_group *g, const struct group_key *key,
				      uint64_t tried, uint64_t now_us);
/* A server down passively comes back for a trial once its down period is over. */
bool group_server_is_up(const struct server_group *g, const struct group_server *s,
			uint64_t now_us);
/* Seconds a client should wait before trying again when no server is up (at least 1). */
unsigned group_retry_after(const struct server_group *g, uint64_t now_us);

/* 64-bit hash of bytes (FNV-1a, then a finalizer that spreads the bits). */
uint64_t group_hash(const void *data, size_t len);

/* --- what happens to a server --------------------------------------------------- */

/* A request goes to `s` / is over with it: connections in flight (least_conn). */
void group_server_begin(const struct group_server *s);
void group_server_end(const struct group_server *s);
/* A failure (SPEC 12) with its reason; true when `s` went down because of it. */
bool group_server_failed(const struct server_group *g, const struct group_server *s,
			 const char *reason, uint64_t now_us);
/* A response head arrived from `s`; true when it was down and is up again. */
bool group_server_ok(const struct group_server *s);
/* An active check's result; true when `s` changed between up and down. */
bool group_server_checked(const struct server_group *g, const struct group_server *s, bool ok,
			  const char *reason);
/* Active checks only: whether the checker holds `s` down. */
bool group_server_check_down(const struct group_server *s);

/* --- reporting -------------------------------------------------------------------- */

/* GET /upstreams: every group, every server, its state, weight, connections, last failure. */
void group_write_json(const struct config *cfg, struct buf *out, uint64_t now_us);
/* The per-server series of /metrics (Prometheus text format). */
void group_write_metrics(const struct config *cfg, struct buf *out, uint64_t now_us);

#endif
