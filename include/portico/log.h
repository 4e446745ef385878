/*
 * log.h: the error log.  One line per event:
 *   2026-11-27T10:00:00.123Z [warn] message key=value ...
 * Lines are written with one write(2) each, so threads never interleave
 * within a line.  Request-scoped lines carry the request id (log_req*).
 */
#ifndef PORTICO_LOG_H
#define PORTICO_LOG_H

#include "portico/util.h"

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

/* Opens the error log: NULL or "stderr" is standard error.  0, or -1 with errno. */
int log_open(const char *path);
/* Reopens the file given to log_open (SIGUSR1). */
int log_reopen(void);
void log_set_level(enum log_level level);
bool log_is_enabled(enum log_level level);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Request-scoped: appends " id=<reqid>" to the line. */
void log_req(enum log_level level, const char *reqid, const char *fmt, ...) PRINTF_LIKE(3, 4);

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_is_enabled(LOG_LEVEL_DEBUG))                                               \
			log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__);                                     \
	} while (0)

/* Formats the current UTC time as 2026-11-27T10:00:00.123Z into buf (>= 25 bytes). */
void log_format_time(char *buf, size_t len);

#endif
