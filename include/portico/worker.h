/*
 * worker.h: one event-loop thread.  A worker owns its event_base, its
 * listening sockets (one per listener, SO_REUSEPORT), its client
 * connections, its upstream pool and its resolver; it shares nothing on the
 * request path with other workers but the immutable configuration snapshot.
 * The daemon talks to a worker only through worker_post_*(), which are safe
 * to call from another thread.
 */
#ifndef PORTICO_WORKER_H
#define PORTICO_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "portico/util.h"

struct config;
struct client;
struct request;
struct upstream;
struct upstream_pool;
struct resolver;
struct event;
struct event_base;
struct evconnlistener;

/* A listening socket as the daemon bound it: one fd per worker. */
struct listen_sock {
	char *address;
	struct sockaddr_storage sa;
	socklen_t salen;
	bool any;
	bool tls;
	int *fds; /* [nworkers] */
};

/* The daemon's listener table for one configuration generation. */
struct listen_set {
	struct listen_sock *socks;
	size_t n;
};

/* One listener inside a worker. */
struct wlistener {
	struct worker *w;
	struct evconnlistener *lev;
	int fd;
	const char *scheme; /* "http"; a TLS listener will say "https" */
};

#define WORKER_MAGIC 0x574f524bu

struct worker {
	unsigned magic;
	unsigned id;
	unsigned nworkers;
	pthread_t thread;
	struct event_base *base;
	struct config *cfg; /* current snapshot, one reference held */

	struct wlistener *listeners;
	size_t nlisteners;
	bool accept_paused;

	struct resolver *resolver;
	struct upstream_pool *pool;

	/* Client connections: all of them, and those marked for close. */
	struct client *clients;
	struct client *closing;
	struct upstream *up_closing;
	struct event *reap_ev;
	uint64_t nclients, max_clients;

	/* Request ids: process start, worker id and a counter. */
	uint64_t reqid_base;
	uint64_t reqseq;

	/* Request structures kept for reuse. */
	struct request *free_reqs;
	unsigned nfree_reqs;
	struct buf scratch; /* header rewriting; only used synchronously */

	/* Cross-thread mailbox, guarded by `lock`. */
	pthread_mutex_t lock;
	struct event *notify_ev;
	struct config *pending_cfg;
	struct listen_set *pending_set;
	bool stop_requested;

	bool draining;
	struct event *shutdown_ev;
	uint64_t shutdown_ms;
};

/* Creates a worker with its base; 0 or -1.  `set` gives its listening fds. */
int worker_init(struct worker *w, unsigned id, unsigned nworkers, struct config *cfg,
		const struct listen_set *set, uint64_t start_time);
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* From another thread: hand over a new snapshot (a reference is taken) and listener set. */
void worker_post_config(struct worker *w, struct config *cfg, struct listen_set *set);
/* From another thread: graceful stop. */
void worker_post_stop(struct worker *w);

/* Inside the worker: schedule the deferred teardown pass. */
void worker_schedule_reap(struct worker *w);
/* A new request id. */
void worker_next_reqid(struct worker *w, char out[17]);
/* Called when a client connection is gone: resumes accepting, ends a drain. */
void worker_client_gone(struct worker *w);

#endif
