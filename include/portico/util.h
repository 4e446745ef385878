/*
 * util.h: allocation that never returns NULL, a growable byte buffer and
 * small string helpers shared by every module.
 */
#ifndef PORTICO_UTIL_H
#define PORTICO_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/time.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#define NORETURN	  __attribute__((noreturn))
#else
#define PRINTF_LIKE(f, a)
#define NORETURN
#endif

/* Allocators abort on out-of-memory; they never return NULL. */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Grows an array of `*cap` elements of `size` bytes so that index `need` fits. */
void *xgrow(void *p, size_t *cap, size_t need, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);
char *xvasprintf(const char *fmt, va_list ap) PRINTF_LIKE(1, 0);
/* free() that is a no-op on NULL, like free(). */
void xfree(void *p);
NORETURN void fatal(const char *fmt, ...) PRINTF_LIKE(1, 2);

/*
 * Invariants that ship: unlike assert(), PORTICO_ASSERT is compiled in every
 * build type (NDEBUG does not remove it) and aborts with file:line.  For
 * invariants only, never for input: untrusted bytes get an error status.
 */
#if defined(__GNUC__)
#define PORTICO_LIKELY(e) __builtin_expect(!!(e), 1)
#else
#define PORTICO_LIKELY(e) (e)
#endif
#define PORTICO_ASSERT(e)                                                                          \
	(PORTICO_LIKELY(e) ? (void)0 : portico_assert_fail(#e, __FILE__, __LINE__, __func__))
NORETURN void portico_assert_fail(const char *expr, const char *file, int line, const char *func);

/* A growable byte buffer, always NUL-terminated after `len` bytes. */
struct buf {
	char *data;
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_reserve(struct buf *b, size_t extra);
void buf_add(struct buf *b, const void *p, size_t n);
void buf_adds(struct buf *b, const char *s);
void buf_addc(struct buf *b, char c);
void buf_addf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* Hands the contents to the caller (who frees them) and resets the buffer. */
char *buf_steal(struct buf *b);

/* ASCII-only helpers, independent of the locale. */
static inline char
ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}
bool ascii_casecmp_eq(const char *a, size_t alen, const char *b, size_t blen);
bool ascii_has_prefix_case(const char *s, size_t len, const char *prefix);
int hex_value(int c); /* 0..15, or -1 */

/* `ms` milliseconds as the timeval libevent's timeouts take. */
static inline void
tv_from_ms(struct timeval *tv, uint64_t ms)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

#endif
