/*
 * admin.c: the admin listener.  A tiny HTTP/1.1 server on the main thread:
 * each connection reads one request head (head.h: llhttp, strict), answers it with
 * Connection: close and is freed once the answer is written, or
 * ADMIN_TIMEOUT_S seconds after the accept, whichever comes first.
 *
 * /healthz and /metrics must answer when the process has run out of file
 * descriptors, which is when an operator needs them: the admin keeps
 * ADMIN_SPARE_FDS descriptors open on /dev/null, and when accept(2) fails
 * for want of one it closes a spare and accepts into its slot.  A closing
 * admin connection's descriptor becomes a spare again in place (dup3 of
 * /dev/null over the socket: no worker's accept can take the slot in
 * between); spares are also taken again when accepting resumes.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include "portico/acceptguard.h"
#include "portico/admin.h"
#include "portico/head.h"
#include "portico/http.h"
#include "portico/metrics.h"
#include "portico/util.h"

#define ADMIN_CONN_MAGIC 0x41444d43u
#define ADMIN_SPARE_FDS	 2

struct admin_conn {
	unsigned magic;
	struct admin *a;
	struct bufferevent *bev;
	struct event *deadline; /* ADMIN_TIMEOUT_S after the accept */
	struct head head;
	bool answered;
	struct admin_conn *prev, *next;
};

struct admin {
	struct event_base *base;
	admin_collect_fn collect;
	admin_groups_fn groups;
	void *arg;
	struct evconnlistener *lev;
	struct accept_guard *guard; /* accept(2) failures */
	struct sockaddr_storage sa;
	socklen_t salen;
	struct admin_conn *conns;
	int spare[ADMIN_SPARE_FDS]; /* on /dev/null; -1: given to a connection */
	int null;		    /* /dev/null, what a spare is made of in place */
};

/* Takes back the spare descriptors given away, as far as the limit allows. */
static void
admin_spares_refill(struct admin *a)
{
	for (int i = 0; i < ADMIN_SPARE_FDS; i++) {
		if (a->spare[i] >= 0)
			continue;
		a->spare[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (a->spare[i] < 0)
			return;
	}
}

/* A connection's descriptor: a spare again if one was given away, else closed. */
static void
admin_fd_release(struct admin *a, int fd)
{
	for (int i = 0; i < ADMIN_SPARE_FDS; i++) {
		if (a->spare[i] >= 0 || a->null < 0)
			continue;
		if (dup3(a->null, fd, O_CLOEXEC) != fd)
			break;
		a->spare[i] = fd;
		return;
	}
	close(fd);
}

/* --- connections ----------------------------------------------------------- */

static void
admin_conn_free(struct admin_conn *c)
{
	evutil_socket_t fd;

	if (c->prev)
		c->prev->next = c->next;
	else
		c->a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_free(c->deadline);
	/*
	 * bufferevent_free removes the events at once but would close the socket
	 * only from its deferred finalizer; released here, its slot is a spare
	 * again before a worker's accept can take it.
	 */
	fd = bufferevent_getfd(c->bev);
	bufferevent_free(c->bev);
	if (fd >= 0)
		admin_fd_release(c->a, fd);
	admin_spares_refill(c->a);
	head_free(&c->head);
	c->magic = 0;
	free(c);
}

static struct admin_conn *
admin_conn_from_arg(void *arg)
{
	struct admin_conn *c = arg;

	PORTICO_ASSERT(c->magic == ADMIN_CONN_MAGIC);
	return c;
}

/* Queues the whole response; the connection is freed once it is written. */
static void
admin_reply(struct admin_conn *c, int status, const char *type, const char *body, size_t len,
	    bool head_only)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);

	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			    "%sConnection: close\r\n\r\n",
			    status, http_reason(status), type, len,
			    status == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (!head_only)
		evbuffer_add(out, body, len);
	c->answered = true;
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
admin_reply_text(struct admin_conn *c, int status, const char *text)
{
	admin_reply(c, status, "text/plain; charset=utf-8", text, strlen(text), false);
}

static void
admin_reply_metrics(struct admin_conn *c, bool head_only)
{
	struct metrics_sum s = {0};
	struct buf b;

	buf_init(&b);
	c->a->collect(&s, c->a->arg);
	metrics_format(&b, &s);
	if (c->a->groups != NULL)
		c->a->groups(&b, false, c->a->arg);
	admin_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, head_only);
	metrics_sum_free(&s);
	buf_free(&b);
}

static void
admin_reply_groups(struct admin_conn *c, bool head_only)
{
	struct buf b;

	buf_init(&b);
	if (c->a->groups != NULL)
		c->a->groups(&b, true, c->a->arg);
	else
		buf_adds(&b, "{\"groups\":[]}\n");
	admin_reply(c, 200, "application/json", b.data, b.len, head_only);
	buf_free(&b);
}

/* The path of the request target: up to a query. */
static bool
admin_path_is(const struct admin_conn *c, const char *path)
{
	const char *t = c->head.bytes.data + c->head.target;
	size_t n = strlen(path), len = c->head.target_len;

	return len >= n && memcmp(t, path, n) == 0 && (len == n || t[n] == '?');
}

static void
admin_dispatch(struct admin_conn *c)
{
	int method = c->head.method;
	bool head = method == HTTP_HEAD;

	if (method != HTTP_GET && !head)
		admin_reply_text(c, 405, "method not allowed\n");
	else if (admin_path_is(c, "/metrics"))
		admin_reply_metrics(c, head);
	else if (admin_path_is(c, "/upstreams"))
		admin_reply_groups(c, head);
	else if (admin_path_is(c, "/healthz"))
		admin_reply(c, 200, "text/plain; charset=utf-8", "ok\n", 3, head);
	else
		admin_reply(c, 404, "text/plain; charset=utf-8", "not found\n", 10, head);
}

static void
admin_read_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = admin_conn_from_arg(arg);
	struct evbuffer *in = bufferevent_get_input(bev);

	if (c->answered)
		return;
	switch (head_feed(&c->head, in, ADMIN_HEAD_MAX, 0)) {
	case HEAD_MORE:
		return;
	case HEAD_DONE:
		admin_dispatch(c);
		break;
	case HEAD_ERROR:
		if (c->head.too_large)
			admin_reply_text(c, 431, "request header fields too large\n");
		else
			admin_reply_text(c, 400, "bad request\n");
		break;
	}
	evbuffer_drain(in, evbuffer_get_length(in));
}

static void
admin_write_cb(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = admin_conn_from_arg(arg);

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		admin_conn_free(c);
}

static void
admin_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct admin_conn *c = admin_conn_from_arg(arg);

	(void)bev;
	(void)what;
	/* End of file before an answer, an error or the timeout: nothing more to do. */
	admin_conn_free(c);
}

static void
admin_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	admin_conn_free(admin_conn_from_arg(arg));
}

static void
admin_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		void *arg)
{
	struct admin *a = arg;
	struct timeval tv = {.tv_sec = ADMIN_TIMEOUT_S};
	struct admin_conn *c;

	(void)lev;
	(void)sa;
	(void)salen;
	c = xcalloc(1, sizeof(*c));
	c->magic = ADMIN_CONN_MAGIC;
	c->a = a;
	c->bev = bufferevent_socket_new(a->base, fd, 0); /* closed by admin_conn_free */
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	head_init(&c->head);
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	bufferevent_setcb(c->bev, admin_read_cb, admin_write_cb, admin_event_cb, c);
	/* One deadline for the whole exchange, not re-armed by a trickle of bytes. */
	c->deadline = evtimer_new(a->base, admin_deadline_cb, c);
	evtimer_add(c->deadline, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

/* --- the listener ---------------------------------------------------------- */

/*
 * Out of descriptors.  True when the connection waiting got a spare's
 * slot, or when none is waiting (libevent's listener calls accept(2) until
 * it fails, and Linux takes a descriptor before it looks at the queue);
 * false when accepting must pause.  A worker's accept(2) or connect may
 * take the slot in the instant between close and accept: then the next
 * spare is tried, and the lost one is taken back once a descriptor is free.
 */
static bool
admin_accept_spare(struct admin *a, struct evconnlistener *lev)
{
	struct pollfd waiting = {.fd = evconnlistener_get_fd(lev), .events = POLLIN};
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err;

	if (poll(&waiting, 1, 0) != 1)
		return true;
	for (int i = 0; i < ADMIN_SPARE_FDS; i++) {
		if (a->spare[i] < 0)
			continue;
		close(a->spare[i]);
		a->spare[i] = -1;
		sl = sizeof(ss);
		fd = accept4(waiting.fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			admin_accept_cb(lev, fd, (struct sockaddr *)&ss, (int)sl, a);
			return true;
		}
		err = errno;
		if (err != EMFILE && err != ENFILE) { /* gone (EAGAIN), or failed */
			admin_spares_refill(a);
			return err == EAGAIN || err == EWOULDBLOCK;
		}
	}
	return false;
}

/* Without it libevent warns and retries at once, spinning while descriptors are short. */
static void
admin_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct admin *a = arg;
	int err = EVUTIL_SOCKET_ERROR();

	if ((err == EMFILE || err == ENFILE) && admin_accept_spare(a, lev))
		return;
	if (accept_guard_failed(a->guard, err))
		evconnlistener_disable(lev);
}

static void
admin_accept_resume(void *arg)
{
	struct admin *a = arg;

	admin_spares_refill(a);
	if (a->lev != NULL)
		evconnlistener_enable(a->lev);
}

struct admin *
admin_new(struct event_base *base, admin_collect_fn collect, void *arg)
{
	struct admin *a = xcalloc(1, sizeof(*a));

	a->base = base;
	a->collect = collect;
	a->arg = arg;
	a->guard = accept_guard_new(base, "admin", admin_accept_resume, a);
	for (int i = 0; i < ADMIN_SPARE_FDS; i++)
		a->spare[i] = -1;
	a->null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	admin_spares_refill(a);
	return a;
}

int
admin_listen(struct admin *a, const struct sockaddr *sa, socklen_t salen, const char **why)
{
	struct evconnlistener *lev = NULL;
	unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;

	if (a->lev != NULL && sa != NULL && salen == a->salen && memcmp(sa, &a->sa, salen) == 0)
		return 0;
	if (sa != NULL) {
		lev =
		    evconnlistener_new_bind(a->base, admin_accept_cb, a, flags, 64, sa, (int)salen);
		if (lev == NULL) {
			*why = "bind";
			return -1;
		}
		evconnlistener_set_error_cb(lev, admin_accept_error_cb);
		if (accept_guard_is_paused(a->guard))
			evconnlistener_disable(lev);
		memcpy(&a->sa, sa, salen);
	}
	if (a->lev != NULL)
		evconnlistener_free(a->lev);
	a->lev = lev;
	a->salen = sa != NULL ? salen : 0;
	return 0;
}

void
admin_set_groups(struct admin *a, admin_groups_fn fn)
{
	a->groups = fn;
}

void
admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	while (a->conns != NULL)
		admin_conn_free(a->conns);
	if (a->lev != NULL)
		evconnlistener_free(a->lev);
	accept_guard_free(a->guard);
	for (int i = 0; i < ADMIN_SPARE_FDS; i++)
		if (a->spare[i] >= 0)
			close(a->spare[i]);
	if (a->null >= 0)
		close(a->null);
	free(a);
}
