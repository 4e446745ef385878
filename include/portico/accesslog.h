/*
 * accesslog.h: one line per request, in combined log format followed by the
 * request time in microseconds and the upstream address, or as one JSON
 * object per line with the same fields (SPEC section 11).  Workers format
 * into memory; a writer thread does the write(2), so a slow disk or a full
 * pipe never blocks an event loop (lines are dropped and counted when the
 * backlog passes its bound).
 */
#ifndef PORTICO_ACCESSLOG_H
#define PORTICO_ACCESSLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "portico/config.h"
#include "portico/util.h"

struct accesslog_entry {
	const char *client; /* client address, text */
	const char *reqid;
	time_t start; /* request start, wall clock */
	const char *method;
	size_t method_len;
	const char *target; /* request target as received */
	size_t target_len;
	int http_minor; /* HTTP/1.<minor> */
	int http_major; /* 2: HTTP/2.0 (0 or 1: HTTP/1.<minor>) */
	int status;
	uint64_t bytes_sent; /* response body bytes */
	const char *referer; /* NULL: "-" */
	size_t referer_len;
	const char *user_agent;
	size_t user_agent_len;
	const char *host;
	size_t host_len;
	const char *route;    /* route name, NULL when none */
	const char *upstream; /* "addr:port" or NULL */
	uint64_t duration_us;
};

/* Starts the writer.  dest: "stdout", "stderr", "off" or a path.  0, or -1 with errno. */
int accesslog_open(const char *dest, enum log_format format);
void accesslog_write(const struct accesslog_entry *e);
/* Whether lines are written at all (log.access is not "off"): callers skip building entries. */
bool accesslog_is_active(void);
/* Reopens a file destination (SIGUSR1). */
void accesslog_reopen(void);
/* Flushes what is queued and stops the writer. */
void accesslog_close(void);
/* Lines dropped because the backlog was full. */
uint64_t accesslog_dropped(void);

/*
 * Appends one line (with its newline) to `out`; exposed for tests.  The time
 * is `e->start` in UTC, so the output depends only on the entry.
 */
void accesslog_format(struct buf *out, enum log_format format, const struct accesslog_entry *e);

#endif
