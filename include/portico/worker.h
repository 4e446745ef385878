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
struct config_listen;
struct client;
struct exchange;
struct head;
struct stream_field;
struct upstream;
struct upstream_pool;
struct resolver;
struct metrics;
struct event;
struct event_base;
struct evconnlistener;
struct tls_server;
struct accept_guard;

/* A listening socket as the daemon bound it: one fd per worker. */
struct listen_sock {
	char *address;
	struct sockaddr_storage sa;
	socklen_t salen;
	bool any;
	bool tls;
	struct tls_server *tls_server; /* this generation's contexts (TLS listeners), a reference */
	int *fds;		       /* [nworkers] */
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
	const char *scheme;	/* "http" or "https" */
	struct tls_server *tls; /* TLS listeners: a reference */
	size_t index;		/* in the listen set, and in the configuration's listen[] */
};

/*
 * The deferred teardown.  Connections and exchanges are never freed inside
 * the callback that ends them: they are marked (worker_defer_free) and the
 * worker frees them from a zero-timeout event, once the loop is back at its
 * top.  An object embeds one struct worker_reap and names its free function.
 */
struct worker_reap {
	struct worker_reap *next;
	void (*free)(struct worker_reap *r);
	bool queued;
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
	bool accept_paused;		   /* at limits.connections */
	struct accept_guard *accept_guard; /* accept(2) failures: pauses, counted log lines */
	/*
	 * limits.connections counts every worker's clients: one counter shared
	 * by the workers (touched on accept and close only), and a wake-up
	 * (WORKER_WAKE_LIMIT) each worker sends the others when the count
	 * crosses the limit.
	 */
	struct worker_shared *shared;
	struct worker *siblings; /* [nworkers] */

	struct resolver *resolver;
	struct upstream_pool *pool;
	struct metrics *metrics; /* written by this thread only (metrics.h) */

	/* Client connections (client.c keeps the list), exchanges in flight, the deferred teardown.
	 */
	struct client *clients;
	uint64_t nclients;
	struct exchange *exchanges;
	struct worker_reap *reap;
	struct event *reap_ev;
	unsigned io_depth; /* inside a socket callback: frees wait for its end (worker_io_leave) */

	/* Request ids: process start, worker id and a counter. */
	uint64_t reqid_base;
	uint64_t reqseq;

	/* Structures kept for reuse: exchanges (exchange.c) and request heads. */
	struct exchange *free_ex;
	unsigned nfree_ex;
	struct head **free_heads;
	size_t nfree_heads, free_heads_cap;
	/* Scratch space, only used synchronously. */
	struct buf scratch; /* header rewriting */
	struct buf head;    /* a head being assembled */
	char *flat;	    /* WORKER_FLAT_SIZE bytes: a read between requests (client.c) */
	struct stream_field *fields; /* a response head's fields (relay.c) */
	size_t *field_off;	     /* where a rewritten value sits in `scratch` */
	size_t fields_cap;
	struct evbuffer *resp_staging; /* a chunked response body, decoded (upstream.c) */
	struct evbuffer *req_staging;  /* a chunked request body, decoded (forward.c) */
	struct evbuffer *filter_out;   /* body filter output (relay.c) */
	/* Socket bufferevents of idle connections, kept for the next active one. */
	struct bufferevent **spare_bevs;
	size_t nspare, spare_cap;
	struct bufferevent *kept_bev; /* parked still bound (worker_bev_park) */
	const void *kept_owner;

	/*
	 * Wake-ups from other threads: an eventfd and the reasons (WORKER_WAKE_*)
	 * set before it is written.  The base itself takes no locks: nothing but
	 * this fd reaches it from another thread.
	 */
	int wake_fd;
	struct event *wake_ev;
	_Atomic unsigned wake_bits;

	/* Cross-thread mailbox, guarded by `lock`. */
	pthread_mutex_t lock;
	struct config *pending_cfg;
	struct listen_set *pending_set;
	bool stop_requested;

	bool draining;
	struct event *shutdown_ev;
	/* Returning memory after a burst (worker.c, malloc_trim). */
	uint64_t peak_clients;
	struct event *trim_ev;
	uint64_t shutdown_ms;
};

/* What the workers share: the count of open client connections. */
struct worker_shared {
	_Atomic uint64_t nclients;
	_Atomic uint64_t max_clients; /* limits.connections of the current snapshot; 0: none */
	_Atomic uint64_t fd_clients;  /* the clients the open-file limit leaves room for; 0: any */
};

/*
 * Creates worker `id` of the array `all` with its base; 0 or -1.  `set`
 * gives its listening fds.
 */
int worker_init(struct worker *all, unsigned id, unsigned nworkers, struct worker_shared *shared,
		struct config *cfg, const struct listen_set *set, uint64_t start_time);
int worker_start(struct worker *w);
void worker_join(struct worker *w);
void worker_destroy(struct worker *w);

/* From another thread: hand over a new snapshot (a reference is taken) and listener set. */
void worker_post_config(struct worker *w, struct config *cfg, struct listen_set *set);
/* From another thread: graceful stop. */
void worker_post_stop(struct worker *w);

/* Inside the worker: frees `r` from the deferred teardown pass (once, however often called). */
/*
 * Around a socket callback (the plain client and upstream reads): what it
 * defers is freed when it returns, the stack unwound, without another pass
 * of the loop.
 */
void worker_io_enter(struct worker *w);
void worker_io_leave(struct worker *w);
void worker_defer_free(struct worker *w, struct worker_reap *r);
/* A request head from the pool, reset for a request; and back (trimmed). */
struct head *worker_head_get(struct worker *w);
void worker_head_put(struct worker *w, struct head *h);
/* Monotonic microseconds (vDSO, no system call): the data path's clock for durations. */
uint64_t worker_mono_us(void);
/* A new request id (http_reqid_format writes it as text). */
uint64_t worker_next_reqid(struct worker *w);
/*
 * The plain-socket I/O path.  libevent 2.1's socket bufferevent reads at
 * most 4 KiB per read(2) and asks FIONREAD first, and it arms and disarms
 * the write event around every write.  For plain sockets the data path
 * therefore reads with its own read event (worker_read: one readv of up to
 * WORKER_READ_SIZE bytes straight into the bufferevent's input buffer) and
 * writes from the caller (worker_flush), leaving the bufferevent's write
 * event to the rare case where the kernel does not take everything.  A TLS
 * bufferevent will keep libevent's own read and write paths.
 */
#define WORKER_READ_SIZE (64 * 1024)
/*
 * A plain client connection between requests, with nothing buffered, reads
 * into the worker's `flat` buffer instead: a head that arrives whole is
 * parsed there and never goes through the evbuffer (client.c).
 */
#define WORKER_FLAT_SIZE (16 * 1024)
struct bufferevent;
struct evbuffer;
/* Adds bytes read elsewhere (the flat buffer) to a bufferevent's input, as a read would. */
void worker_input_add(struct evbuffer *in, const void *p, size_t n);
/* Bytes read (> 0), 0 at end of file, -1 with errno (EAGAIN: nothing yet). */
long worker_read(int fd, struct evbuffer *in);
/* The same, reading `max` bytes at most (> 0). */
long worker_read_at_most(int fd, struct evbuffer *in, size_t max);
/*
 * Writes what `bev`'s output holds now to `fd`, its socket (passed, as
 * asking the bufferevent costs more than the rest).  When the kernel does not take it
 * all, enables the bufferevent's write event, which finishes the job and
 * calls the write callback; that callback calls worker_write_done().
 * Returns the bytes still queued.
 */
size_t worker_flush(struct bufferevent *bev, int fd);
/* From a write callback: back to direct writes once the output is empty. */
void worker_write_done(struct bufferevent *bev);
/* A socket bufferevent for the caller to point at its fd: a spare, the kept one, or new. */
struct bufferevent *worker_bev_get(struct worker *w);
/* Takes back an empty bufferevent (its fd is not closed). */
void worker_bev_put(struct worker *w, struct bufferevent *bev);
/*
 * A keep-alive connection going idle parks its bufferevent still bound to
 * its socket and callbacks (buffers empty, events disabled), so the same
 * connection's next request takes it back without setting it up again.
 * One is kept so; parking another, or worker_bev_get() finding no spare,
 * unbinds it.  worker_bev_unpark() returns it only to `owner`, else NULL;
 * an owner going away calls worker_bev_forget() before closing its socket.
 */
void worker_bev_park(struct worker *w, struct bufferevent *bev, const void *owner);
struct bufferevent *worker_bev_unpark(struct worker *w, const void *owner);
void worker_bev_forget(struct worker *w, const void *owner);

/* Called when a client connection is gone: resumes accepting, ends a drain. */
void worker_client_gone(struct worker *w);

#endif
