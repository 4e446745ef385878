/*
 * admin.c: the admin listener.  A tiny HTTP/1.1 server on the main thread:
 * each connection reads one request head (llhttp, strict), answers it with
 * Connection: close and is freed once the answer is written, or
 * ADMIN_TIMEOUT_S seconds after the accept, whichever comes first.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <llhttp.h>

#include "portico/admin.h"
#include "portico/http.h"
#include "portico/metrics.h"
#include "portico/util.h"

#define ADMIN_CONN_MAGIC 0x41444d43u
#define ADMIN_PATH_MAX	 64 /* longer paths are no endpoint: 404 */

struct admin_conn {
	unsigned magic;
	struct admin *a;
	struct bufferevent *bev;
	struct event *deadline; /* ADMIN_TIMEOUT_S after the accept */
	llhttp_t parser;
	char path[ADMIN_PATH_MAX];
	size_t pathlen;
	bool path_long;
	bool head_done;
	size_t seen; /* head bytes fed to the parser */
	struct admin_conn *prev, *next;
};

struct admin {
	struct event_base *base;
	admin_collect_fn collect;
	void *arg;
	struct evconnlistener *lev;
	struct sockaddr_storage sa;
	socklen_t salen;
	struct admin_conn *conns;
};

/* --- connections ----------------------------------------------------------- */

static void
admin_conn_free(struct admin_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		c->a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	event_free(c->deadline);
	bufferevent_free(c->bev);
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

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
	struct admin_conn *c = p->data;

	if (len > sizeof(c->path) - 1 - c->pathlen) {
		c->path_long = true;
		return 0;
	}
	memcpy(c->path + c->pathlen, at, len);
	c->pathlen += len;
	return 0;
}

static int
on_headers_complete(llhttp_t *p)
{
	struct admin_conn *c = p->data;

	c->head_done = true;
	return HPE_PAUSED;
}

static const llhttp_settings_t admin_settings = {
    .on_url = on_url,
    .on_headers_complete = on_headers_complete,
};

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
	admin_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, head_only);
	metrics_sum_free(&s);
	buf_free(&b);
}

/* The path of the request target: up to a query. */
static bool
admin_path_is(const struct admin_conn *c, const char *path)
{
	size_t n = strlen(path);

	return !c->path_long && c->pathlen >= n && memcmp(c->path, path, n) == 0 &&
	       (c->pathlen == n || c->path[n] == '?');
}

static void
admin_dispatch(struct admin_conn *c)
{
	int method = llhttp_get_method(&c->parser);
	bool head = method == HTTP_HEAD;

	if (method != HTTP_GET && !head)
		admin_reply_text(c, 405, "method not allowed\n");
	else if (admin_path_is(c, "/metrics"))
		admin_reply_metrics(c, head);
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
	size_t n = evbuffer_get_length(in);
	llhttp_errno_t err;

	if (c->head_done)
		return;
	if (n > ADMIN_HEAD_MAX - c->seen)
		n = ADMIN_HEAD_MAX - c->seen;
	err = llhttp_execute(&c->parser, (const char *)evbuffer_pullup(in, (ssize_t)n), n);
	c->seen += n;
	evbuffer_drain(in, evbuffer_get_length(in));
	if (err == HPE_PAUSED && c->head_done)
		admin_dispatch(c);
	else if (err != HPE_OK)
		admin_reply_text(c, 400, "bad request\n");
	else if (c->seen >= ADMIN_HEAD_MAX)
		admin_reply_text(c, 431, "request header fields too large\n");
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
	c->bev = bufferevent_socket_new(a->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		evutil_closesocket(fd);
		free(c);
		return;
	}
	llhttp_init(&c->parser, HTTP_REQUEST, &admin_settings);
	c->parser.data = c;
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

struct admin *
admin_new(struct event_base *base, admin_collect_fn collect, void *arg)
{
	struct admin *a = xcalloc(1, sizeof(*a));

	a->base = base;
	a->collect = collect;
	a->arg = arg;
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
		memcpy(&a->sa, sa, salen);
	}
	if (a->lev != NULL)
		evconnlistener_free(a->lev);
	a->lev = lev;
	a->salen = sa != NULL ? salen : 0;
	return 0;
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
	free(a);
}
