/*
 * log.c: the error log.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "portico/log.h"

static atomic_int log_fd = 2;
static atomic_int log_level = LOG_LEVEL_INFO;
static char *log_path;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

const char *
log_level_name(enum log_level level)
{
	if ((unsigned)level >= ARRAY_SIZE(level_names))
		return "?";
	return level_names[level];
}

int
log_open(const char *path)
{
	int fd, old;

	if (path == NULL || strcmp(path, "stderr") == 0) {
		old = atomic_exchange(&log_fd, 2);
		xfree(log_path);
		log_path = NULL;
	} else {
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd == -1)
			return -1;
		old = atomic_exchange(&log_fd, fd);
		if (log_path != path) {
			xfree(log_path);
			log_path = xstrdup(path);
		}
	}
	if (old > 2)
		close(old);
	return 0;
}

int
log_reopen(void)
{
	if (log_path == NULL)
		return 0;
	return log_open(log_path);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level, level);
}

bool
log_is_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level);
}

void
log_format_time(char *buf, size_t len)
{
	struct timeval tv;
	struct tm tm;

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000));
}

static void
log_write(enum log_level level, const char *reqid, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n;
	int r;

	log_format_time(line, sizeof(line));
	n = strlen(line);
	r = snprintf(line + n, sizeof(line) - n, " [%s] ", log_level_name(level));
	n += (size_t)r;
	r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	n = r < 0 ? n : n + (size_t)r;
	if (n > sizeof(line) - 64)
		n = sizeof(line) - 64; /* truncated: keep room for the id */
	if (reqid != NULL) {
		r = snprintf(line + n, sizeof(line) - n, " id=%s", reqid);
		n += (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* Control bytes from untrusted input never reach the log as such. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	while (write(atomic_load(&log_fd), line, n) == -1 && errno == EINTR)
		;
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!log_is_enabled(level))
		return;
	va_start(ap, fmt);
	log_write(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_req(enum log_level level, const char *reqid, const char *fmt, ...)
{
	va_list ap;

	if (!log_is_enabled(level))
		return;
	va_start(ap, fmt);
	log_write(level, reqid, fmt, ap);
	va_end(ap);
}
