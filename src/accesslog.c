/*
 * accesslog.c: the access log.  Owns the two line formats (combined with the
 * request time and upstream appended, and JSON), their escaping, and the
 * queue between the event loops and the writer thread.  A worker formats into
 * a thread-local buffer and appends the whole line to the queue under one
 * mutex, so lines never interleave; the writer swaps the queue for an empty
 * buffer and does the write(2) calls with the lock released.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "portico/accesslog.h"
#include "portico/util.h"

/* Beyond this many queued bytes new lines are dropped (and counted). */
#define ACCESSLOG_BACKLOG_MAX (8u << 20)
/* A thread's line buffer is given back when a line made it larger than this. */
#define LINE_BUF_KEEP (64u << 10)

static const char hexdigits[] = "0123456789ABCDEF";
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* ---- formatting ---- */

static void
add_u64(struct buf *b, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do {
		tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	buf_add(b, tmp + sizeof(tmp) - n, n);
}

/* Appends v as exactly `width` digits (v < 10^width). */
static void
add_digits(struct buf *b, unsigned v, int width)
{
	char tmp[4];

	for (int i = width - 1; i >= 0; i--) {
		tmp[i] = (char)('0' + v % 10);
		v /= 10;
	}
	buf_add(b, tmp, (size_t)width);
}

static void
add_hex_byte(struct buf *b, const char *prefix, unsigned char c)
{
	buf_adds(b, prefix);
	buf_addc(b, hexdigits[c >> 4]);
	buf_addc(b, hexdigits[c & 15]);
}

static bool
log_needs_escape(unsigned char c)
{
	return c < 0x20 || c >= 0x7f || c == '"' || c == '\\';
}

/* Combined format: '"', '\', control and non-ASCII bytes become \xHH (as nginx). */
static void
add_log_escaped(struct buf *b, const char *s, size_t len)
{
	size_t run = 0;

	if (s == NULL || len == 0) {
		buf_addc(b, '-');
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!log_needs_escape(c))
			continue;
		buf_add(b, s + run, i - run);
		add_hex_byte(b, "\\x", c);
		run = i + 1;
	}
	buf_add(b, s + run, len - run);
}

static bool
is_cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	/* The second byte excludes overlong forms, surrogates and > U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (!is_cont(s[i]))
			return 0;
	return len;
}

/*
 * JSON string contents: '"' and '\' get a backslash; control bytes, DEL and
 * bytes that are not well-formed UTF-8 become \u00XX, so the output is always
 * valid JSON whatever the client sent.
 */
static void
add_json_escaped(struct buf *b, const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t run = 0, i = 0;

	while (i < len) {
		size_t n = u[i] < 0x20 || u[i] == 0x7f ? 0 : utf8_len(u + i, len - i);

		if (n != 0 && u[i] != '"' && u[i] != '\\') {
			i += n;
			continue;
		}
		buf_add(b, s + run, i - run);
		if (n != 0) {
			buf_addc(b, '\\');
			buf_addc(b, s[i]);
		} else {
			add_hex_byte(b, "\\u00", u[i]);
		}
		run = ++i;
	}
	buf_add(b, s + run, len - run);
}

static void
add_json_field(struct buf *b, const char *key, const char *s, size_t len)
{
	buf_addc(b, ',');
	buf_addc(b, '"');
	buf_adds(b, key);
	buf_adds(b, "\":");
	if (s == NULL) {
		buf_adds(b, "null");
		return;
	}
	buf_addc(b, '"');
	add_json_escaped(b, s, len);
	buf_addc(b, '"');
}

static void
add_json_number(struct buf *b, const char *key, uint64_t v)
{
	buf_addc(b, ',');
	buf_addc(b, '"');
	buf_adds(b, key);
	buf_adds(b, "\":");
	add_u64(b, v);
}

static size_t
str_len(const char *s)
{
	return s ? strlen(s) : 0;
}

static bool
has_request_line(const struct accesslog_entry *e)
{
	return e->method != NULL && e->method_len > 0;
}

/* 10:00:00 */
static void
add_hms(struct buf *b, const struct tm *tm)
{
	add_digits(b, (unsigned)tm->tm_hour, 2);
	buf_addc(b, ':');
	add_digits(b, (unsigned)tm->tm_min, 2);
	buf_addc(b, ':');
	add_digits(b, (unsigned)tm->tm_sec, 2);
}

/* [27/Nov/2026:10:00:00 +0000] */
static void
add_clf_time(struct buf *b, const struct tm *tm)
{
	buf_addc(b, '[');
	add_digits(b, (unsigned)tm->tm_mday, 2);
	buf_addc(b, '/');
	buf_adds(b, months[tm->tm_mon]);
	buf_addc(b, '/');
	add_digits(b, (unsigned)(tm->tm_year + 1900), 4);
	buf_addc(b, ':');
	add_hms(b, tm);
	buf_adds(b, " +0000]");
}

/* 2026-11-27T10:00:00Z */
static void
add_iso_time(struct buf *b, const struct tm *tm)
{
	add_digits(b, (unsigned)(tm->tm_year + 1900), 4);
	buf_addc(b, '-');
	add_digits(b, (unsigned)tm->tm_mon + 1, 2);
	buf_addc(b, '-');
	add_digits(b, (unsigned)tm->tm_mday, 2);
	buf_addc(b, 'T');
	add_hms(b, tm);
	buf_addc(b, 'Z');
}

/* "HTTP/1.1" or "HTTP/2.0"; returns its length. */
static size_t
protocol_text(char *out, size_t cap, int http_major, int http_minor)
{
	int n = http_major == 2 ? snprintf(out, cap, "HTTP/2.0")
				: snprintf(out, cap, "HTTP/1.%d", http_minor < 0 ? 0 : http_minor);

	return n < 0 ? 0 : (size_t)n;
}

/* The request line as Apache's %r: method, target and protocol, escaped. */
static void
add_request_line(struct buf *b, const struct accesslog_entry *e)
{
	char proto[32];
	size_t plen = protocol_text(proto, sizeof(proto), e->http_major, e->http_minor);

	if (!has_request_line(e)) {
		buf_addc(b, '-');
		return;
	}
	add_log_escaped(b, e->method, e->method_len);
	buf_addc(b, ' ');
	add_log_escaped(b, e->target, e->target_len);
	buf_addc(b, ' ');
	buf_add(b, proto, plen);
}

static void
format_combined(struct buf *b, const struct accesslog_entry *e, const struct tm *tm)
{
	add_log_escaped(b, e->client, str_len(e->client));
	buf_adds(b, " - - ");
	add_clf_time(b, tm);
	buf_adds(b, " \"");
	add_request_line(b, e);
	buf_adds(b, "\" ");
	add_u64(b, (uint64_t)(e->status < 0 ? 0 : e->status));
	buf_addc(b, ' ');
	add_u64(b, e->bytes_sent);
	buf_adds(b, " \"");
	add_log_escaped(b, e->referer, e->referer_len);
	buf_adds(b, "\" \"");
	add_log_escaped(b, e->user_agent, e->user_agent_len);
	buf_adds(b, "\" ");
	add_u64(b, e->duration_us);
	buf_addc(b, ' ');
	add_log_escaped(b, e->upstream, str_len(e->upstream));
	buf_addc(b, '\n');
}

static void
format_json(struct buf *b, const struct accesslog_entry *e, const struct tm *tm)
{
	bool req = has_request_line(e);
	char proto[32];
	size_t plen = protocol_text(proto, sizeof(proto), e->http_major, e->http_minor);

	buf_adds(b, "{\"time\":\"");
	add_iso_time(b, tm);
	buf_addc(b, '"');
	add_json_field(b, "client", e->client, str_len(e->client));
	add_json_field(b, "id", e->reqid, str_len(e->reqid));
	add_json_field(b, "method", req ? e->method : NULL, e->method_len);
	add_json_field(b, "target", req ? e->target : NULL, e->target_len);
	add_json_field(b, "protocol", req ? proto : NULL, plen);
	add_json_number(b, "status", (uint64_t)(e->status < 0 ? 0 : e->status));
	add_json_number(b, "bytes", e->bytes_sent);
	add_json_field(b, "referer", e->referer, e->referer_len);
	add_json_field(b, "user_agent", e->user_agent, e->user_agent_len);
	add_json_field(b, "host", e->host, e->host_len);
	add_json_field(b, "route", e->route, str_len(e->route));
	add_json_field(b, "upstream", e->upstream, str_len(e->upstream));
	add_json_number(b, "duration_us", e->duration_us);
	buf_adds(b, "}\n");
}

void
accesslog_format(struct buf *out, enum log_format format, const struct accesslog_entry *e)
{
	struct tm tm;

	if (gmtime_r(&e->start, &tm) == NULL) {
		time_t epoch = 0;

		gmtime_r(&epoch, &tm);
	}
	if (format == LOG_FORMAT_JSON)
		format_json(out, e, &tm);
	else
		format_combined(out, e, &tm);
}

/* ---- the queue and the writer thread ---- */

/*
 * The one access log of the process.  `queue`, `stopping` and the reopen
 * request are guarded by `mu`; `fd` and `path` belong to the writer thread
 * while it runs.
 */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	struct buf queue;
	bool stopping;
	bool reopen; /* reopen the file once queue[0, reopen_at) is written */
	size_t reopen_at;
	int fd;
	bool own_fd; /* a file we opened (and may reopen) */
	char *path;
	enum log_format format;
	atomic_bool active; /* open and not "off" */
	atomic_uint_fast64_t dropped;
} al = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .fd = -1,
};

static pthread_once_t line_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t line_key;

static void
line_buf_destroy(void *p)
{
	buf_free(p);
	xfree(p);
}

static void
line_key_create(void)
{
	if (pthread_key_create(&line_key, line_buf_destroy) != 0)
		fatal("pthread_key_create failed");
}

/* This thread's formatting buffer: no allocation per line once it has grown. */
static struct buf *
line_buf(void)
{
	struct buf *b;

	pthread_once(&line_key_once, line_key_create);
	b = pthread_getspecific(line_key);
	if (b == NULL) {
		b = xcalloc(1, sizeof(*b));
		if (pthread_setspecific(line_key, b) != 0)
			fatal("pthread_setspecific failed");
	}
	return b;
}

static size_t
count_lines(const char *p, size_t n)
{
	size_t lines = 0;

	for (const char *q = p; (q = memchr(q, '\n', n - (size_t)(q - p))) != NULL; q++)
		lines++;
	return lines;
}

/* Writes all of p, or counts the lines it could not write as dropped. */
static void
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w >= 0) {
			p += w;
			n -= (size_t)w;
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			poll(&pfd, 1, -1);
		} else if (errno != EINTR) {
			atomic_fetch_add(&al.dropped, count_lines(p, n));
			return;
		}
	}
}

static int
open_path(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
}

/* After a rename (logrotate): the new file, or the old one if it cannot be opened. */
static void
reopen_file(void)
{
	int fd = open_path(al.path);

	if (fd < 0)
		return;
	close(al.fd);
	al.fd = fd;
}

/* Writes one batch taken from the queue, reopening the file at its mark. */
static void
write_batch(const struct buf *out, bool reopen, size_t reopen_at)
{
	if (!reopen) {
		write_all(al.fd, out->data, out->len);
		return;
	}
	write_all(al.fd, out->data, reopen_at);
	reopen_file();
	write_all(al.fd, out->data + reopen_at, out->len - reopen_at);
}

static void *
writer_main(void *arg)
{
	struct buf out;
	bool reopen;
	size_t reopen_at;

	(void)arg;
	buf_init(&out);
	pthread_mutex_lock(&al.mu);
	for (;;) {
		while (al.queue.len == 0 && !al.reopen && !al.stopping)
			pthread_cond_wait(&al.cv, &al.mu);
		if (al.queue.len == 0 && !al.reopen)
			break; /* stopping, and everything is written */
		struct buf tmp = out;
		out = al.queue;
		al.queue = tmp;
		reopen = al.reopen;
		reopen_at = al.reopen_at;
		al.reopen = false;
		pthread_mutex_unlock(&al.mu);

		write_batch(&out, reopen, reopen_at);
		buf_reset(&out);
		pthread_mutex_lock(&al.mu);
	}
	pthread_mutex_unlock(&al.mu);
	buf_free(&out);
	return NULL;
}

static int
open_destination(const char *dest)
{
	if (strcmp(dest, "stdout") == 0) {
		al.fd = STDOUT_FILENO;
		return 0;
	}
	if (strcmp(dest, "stderr") == 0) {
		al.fd = STDERR_FILENO;
		return 0;
	}
	if ((al.fd = open_path(dest)) < 0)
		return -1;
	al.own_fd = true;
	al.path = xstrdup(dest);
	return 0;
}

int
accesslog_open(const char *dest, enum log_format format)
{
	int err;

	if (atomic_load(&al.active)) {
		errno = EBUSY;
		return -1;
	}
	al.format = format;
	al.stopping = false;
	al.reopen = false;
	atomic_store(&al.dropped, 0);
	if (strcmp(dest, "off") == 0)
		return 0;
	if (open_destination(dest) < 0)
		return -1;
	if ((err = pthread_create(&al.thread, NULL, writer_main, NULL)) != 0)
		goto fail;
	atomic_store(&al.active, true);
	return 0;
fail:
	if (al.own_fd)
		close(al.fd);
	al.fd = -1;
	al.own_fd = false;
	xfree(al.path);
	al.path = NULL;
	errno = err;
	return -1;
}

bool
accesslog_is_active(void)
{
	return atomic_load_explicit(&al.active, memory_order_acquire);
}

void
accesslog_write(const struct accesslog_entry *e)
{
	struct buf *line;

	if (!atomic_load_explicit(&al.active, memory_order_acquire))
		return;
	line = line_buf();
	buf_reset(line);
	accesslog_format(line, al.format, e);
	pthread_mutex_lock(&al.mu);
	if (al.stopping || al.queue.len + line->len > ACCESSLOG_BACKLOG_MAX) {
		pthread_mutex_unlock(&al.mu);
		atomic_fetch_add(&al.dropped, 1);
	} else {
		if (al.queue.len == 0)
			pthread_cond_signal(&al.cv);
		buf_add(&al.queue, line->data, line->len);
		pthread_mutex_unlock(&al.mu);
	}
	if (line->cap > LINE_BUF_KEEP)
		buf_free(line);
}

void
accesslog_reopen(void)
{
	if (!atomic_load(&al.active) || !al.own_fd)
		return;
	pthread_mutex_lock(&al.mu);
	if (!al.reopen) {
		al.reopen = true;
		al.reopen_at = al.queue.len;
		pthread_cond_signal(&al.cv);
	}
	pthread_mutex_unlock(&al.mu);
}

void
accesslog_close(void)
{
	if (!atomic_load(&al.active))
		return;
	atomic_store(&al.active, false);
	pthread_mutex_lock(&al.mu);
	al.stopping = true;
	pthread_cond_signal(&al.cv);
	pthread_mutex_unlock(&al.mu);
	pthread_join(al.thread, NULL);

	buf_free(&al.queue);
	if (al.own_fd)
		close(al.fd);
	al.fd = -1;
	al.own_fd = false;
	xfree(al.path);
	al.path = NULL;
}

uint64_t
accesslog_dropped(void)
{
	return atomic_load(&al.dropped);
}
