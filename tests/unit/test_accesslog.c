/*
 * test_accesslog.c: both line formats on fixed entries, escaping of hostile
 * bytes (with a small JSON checker), and the writer: four threads into one
 * file, reopen after a rename, and dropping when the backlog is full.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "portico/accesslog.h"
#include "portico/util.h"

#define T_2026_11_27_100000 ((time_t)1795773600)
#define T_2026_01_05_030405 ((time_t)1767582245)

#define S(lit) lit, sizeof(lit) - 1

static struct accesslog_entry
full_entry(void)
{
	struct accesslog_entry e = {
	    .client = "192.0.2.1",
	    .reqid = "a1b2c3",
	    .start = T_2026_11_27_100000,
	    .method = S("GET"),
	    .target = S("/internal/logo.png?x=1"),
	    .http_minor = 1,
	    .status = 200,
	    .bytes_sent = 1234,
	    .referer = S("https://www.example.com/"),
	    .user_agent = S("curl/8.0"),
	    .host = S("www.example.com"),
	    .route = "internal",
	    .upstream = "192.0.2.10:80",
	    .duration_us = 1534,
	};
	return e;
}

static char *
format(enum log_format f, const struct accesslog_entry *e)
{
	struct buf b;

	buf_init(&b);
	accesslog_format(&b, f, e);
	return buf_steal(&b);
}

static void
assert_format(enum log_format f, const struct accesslog_entry *e, const char *want)
{
	char *got = format(f, e);

	assert_string_equal(got, want);
	free(got);
}

/* ---- formats ---- */

static void
test_combined(void **state)
{
	struct accesslog_entry e = full_entry();

	(void)state;
	assert_format(LOG_FORMAT_COMBINED, &e,
		      "192.0.2.1 - - [27/Nov/2026:10:00:00 +0000] "
		      "\"GET /internal/logo.png?x=1 HTTP/1.1\" 200 1234 "
		      "\"https://www.example.com/\" \"curl/8.0\" 1534 192.0.2.10:80\n");

	e.start = T_2026_01_05_030405;
	e.client = "2001:db8::7";
	e.method = "HEAD";
	e.method_len = 4;
	e.target = "/";
	e.target_len = 1;
	e.http_minor = 0;
	e.status = 404;
	e.bytes_sent = 0;
	e.referer = NULL;
	e.user_agent = NULL;
	e.upstream = NULL;
	e.duration_us = 87;
	assert_format(LOG_FORMAT_COMBINED, &e,
		      "2001:db8::7 - - [05/Jan/2026:03:04:05 +0000] \"HEAD / HTTP/1.0\" 404 0 "
		      "\"-\" \"-\" 87 -\n");

	/* A request that never parsed has no request line. */
	e.method = NULL;
	e.method_len = 0;
	e.target = NULL;
	e.target_len = 0;
	e.status = 400;
	e.bytes_sent = 150;
	assert_format(
	    LOG_FORMAT_COMBINED, &e,
	    "2001:db8::7 - - [05/Jan/2026:03:04:05 +0000] \"-\" 400 150 \"-\" \"-\" 87 -\n");
}

static void
test_json(void **state)
{
	struct accesslog_entry e = full_entry();

	(void)state;
	assert_format(LOG_FORMAT_JSON, &e,
		      "{\"time\":\"2026-11-27T10:00:00Z\",\"client\":\"192.0.2.1\","
		      "\"id\":\"a1b2c3\",\"method\":\"GET\",\"target\":\"/internal/logo.png?x=1\","
		      "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":1234,"
		      "\"referer\":\"https://www.example.com/\",\"user_agent\":\"curl/8.0\","
		      "\"host\":\"www.example.com\",\"route\":\"internal\","
		      "\"upstream\":\"192.0.2.10:80\",\"duration_us\":1534}\n");

	e.start = T_2026_01_05_030405;
	e.method = NULL;
	e.method_len = 0;
	e.status = 400;
	e.bytes_sent = 0;
	e.referer = NULL;
	e.user_agent = NULL;
	e.host = NULL;
	e.route = NULL;
	e.upstream = NULL;
	e.duration_us = 0;
	assert_format(LOG_FORMAT_JSON, &e,
		      "{\"time\":\"2026-01-05T03:04:05Z\",\"client\":\"192.0.2.1\","
		      "\"id\":\"a1b2c3\",\"method\":null,\"target\":null,\"protocol\":null,"
		      "\"status\":400,\"bytes\":0,\"referer\":null,\"user_agent\":null,"
		      "\"host\":null,\"route\":null,\"upstream\":null,\"duration_us\":0}\n");
}

/* An HTTP/2 stream's request logs as HTTP/2.0 in both formats. */
static void
test_http2_protocol(void **state)
{
	struct accesslog_entry e = full_entry();

	(void)state;
	e.http_major = 2;
	assert_format(LOG_FORMAT_COMBINED, &e,
		      "192.0.2.1 - - [27/Nov/2026:10:00:00 +0000] "
		      "\"GET /internal/logo.png?x=1 HTTP/2.0\" 200 1234 "
		      "\"https://www.example.com/\" \"curl/8.0\" 1534 192.0.2.10:80\n");
	assert_format(LOG_FORMAT_JSON, &e,
		      "{\"time\":\"2026-11-27T10:00:00Z\",\"client\":\"192.0.2.1\","
		      "\"id\":\"a1b2c3\",\"method\":\"GET\",\"target\":\"/internal/logo.png?x=1\","
		      "\"protocol\":\"HTTP/2.0\",\"status\":200,\"bytes\":1234,"
		      "\"referer\":\"https://www.example.com/\",\"user_agent\":\"curl/8.0\","
		      "\"host\":\"www.example.com\",\"route\":\"internal\","
		      "\"upstream\":\"192.0.2.10:80\",\"duration_us\":1534}\n");
}

/* ---- escaping ---- */

/* A client's attempt to end the line and forge a second one. */
static const char hostile[] = "a\"b\\c\nforged - - [x] \"GET / HTTP/1.1\" 200\x01\x7f\xff";

static void
test_combined_escaping(void **state)
{
	struct accesslog_entry e = full_entry();
	char *line;
	int quotes = 0;

	(void)state;
	e.target = hostile;
	e.target_len = sizeof(hostile) - 1;
	e.referer = "\"";
	e.referer_len = 1;
	e.user_agent = hostile;
	e.user_agent_len = sizeof(hostile) - 1;
	line = format(LOG_FORMAT_COMBINED, &e);
	assert_string_equal(line, "192.0.2.1 - - [27/Nov/2026:10:00:00 +0000] "
				  "\"GET a\\x22b\\x5Cc\\x0Aforged - - [x] \\x22GET / HTTP/1.1\\x22 "
				  "200\\x01\\x7F\\xFF HTTP/1.1\" 200 1234 \"\\x22\" "
				  "\"a\\x22b\\x5Cc\\x0Aforged - - [x] \\x22GET / HTTP/1.1\\x22 "
				  "200\\x01\\x7F\\xFF\" 1534 192.0.2.10:80\n");
	/* One line, and only the six quotes of the format itself. */
	assert_ptr_equal(strchr(line, '\n'), line + strlen(line) - 1);
	for (const char *q = line; (q = strchr(q, '"')) != NULL; q++)
		quotes++;
	assert_int_equal(quotes, 6);
	free(line);
}

/* ---- a minimal JSON checker: one object of string keys and scalar values ---- */

static size_t
check_utf8(const unsigned char *s)
{
	unsigned cp;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		n = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		n = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Parses a JSON string at *p into `out` (decoded); returns 0 or -1. */
static int
json_string(const char **p, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)*p;

	if (*s++ != '"')
		return -1;
	while (*s != '"') {
		size_t n;

		if (*s < 0x20)
			return -1;
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				unsigned v;

				if (sscanf((const char *)s + 1, "%4x", &v) != 1 || v > 0xff)
					return -1;
				buf_addc(out, (char)v);
				s += 5;
				continue;
			}
			if (strchr("\"\\/bfnrt", *s) == NULL || *s == '\0')
				return -1;
			buf_addc(out, (char)*s++);
			continue;
		}
		if ((n = check_utf8(s)) == 0)
			return -1;
		buf_add(out, s, n);
		s += n;
	}
	*p = (const char *)s + 1;
	return 0;
}

static int
json_scalar(const char **p)
{
	if (strncmp(*p, "null", 4) == 0) {
		*p += 4;
		return 0;
	}
	if (**p < '0' || **p > '9')
		return -1;
	while (**p >= '0' && **p <= '9')
		(*p)++;
	return 0;
}

/* Checks the line is one JSON object; returns the decoded value of `key`. */
static char *
json_check(const char *line, const char *key)
{
	const char *p = line;
	char *found = NULL;
	struct buf k, v;

	assert_int_equal(*p++, '{');
	for (;;) {
		buf_init(&k);
		buf_init(&v);
		assert_int_equal(json_string(&p, &k), 0);
		assert_int_equal(*p++, ':');
		if (*p == '"')
			assert_int_equal(json_string(&p, &v), 0);
		else
			assert_int_equal(json_scalar(&p), 0);
		if (k.data && strcmp(k.data, key) == 0)
			found = buf_steal(&v);
		buf_free(&k);
		buf_free(&v);
		if (*p != ',')
			break;
		p++;
	}
	assert_int_equal(*p++, '}');
	assert_string_equal(p, "\n");
	return found;
}

static void
test_json_escaping(void **state)
{
	/* valid é and U+1F600; invalid: lone 0xff, 0xc3 then '(', overlong, surrogate, truncated */
	static const char ua[] =
	    "\"\\\n\x01\x7f é \xf0\x9f\x98\x80 \xff \xc3( \xc0\xaf \xed\xa0\x80 \xe2\x82";
	struct accesslog_entry e = full_entry();
	char *line, *got;

	(void)state;
	e.user_agent = ua;
	e.user_agent_len = sizeof(ua) - 1;
	e.target = hostile;
	e.target_len = sizeof(hostile) - 1;
	line = format(LOG_FORMAT_JSON, &e);
	assert_non_null(strstr(line, "\"user_agent\":\"\\\"\\\\\\u000A\\u0001\\u007F "
				     "\xc3\xa9 \xf0\x9f\x98\x80 \\u00FF \\u00C3( \\u00C0\\u00AF "
				     "\\u00ED\\u00A0\\u0080 \\u00E2\\u0082\","));
	got = json_check(line, "user_agent");
	assert_non_null(got);
	/* Decoding gives back every byte: escaped ones as their \u00XX value. */
	assert_memory_equal(got, ua, sizeof(ua) - 1);
	free(got);
	got = json_check(line, "target");
	assert_memory_equal(got, hostile, sizeof(hostile) - 1);
	free(got);
	free(line);
}

/* ---- the writer ---- */

struct tmpdir {
	char dir[64];
	char path[128];
};

static void
tmpdir_make(struct tmpdir *t)
{
	strcpy(t->dir, "/tmp/portico-accesslog-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/access.log", t->dir);
}

static void
tmpdir_remove(struct tmpdir *t, const char *extra)
{
	char p[160];

	unlink(t->path);
	if (extra) {
		snprintf(p, sizeof(p), "%s/%s", t->dir, extra);
		unlink(p);
	}
	rmdir(t->dir);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[65536];
	size_t n;

	assert_non_null(f);
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_add(&b, chunk, n);
	fclose(f);
	*len = b.len;
	buf_adds(&b, "");
	return buf_steal(&b);
}

/* The entry for line `i` of thread `t`: the target says which it is. */
static void
numbered_entry(struct accesslog_entry *e, char *target, size_t cap, int t, int i)
{
	static const char ua[] = "Mozilla/5.0 (X11; Linux x86_64) portico-test";

	*e = full_entry();
	e->target = target;
	e->target_len = (size_t)snprintf(target, cap, "/t%d/%d", t, i);
	e->user_agent = ua;
	e->user_agent_len = sizeof(ua) - 1;
	e->duration_us = (uint64_t)i;
}

/*
 * Checks every line of `data` is one intact numbered line; marks it in
 * seen[t * per + i].  Returns the number of lines.
 */
static size_t
check_numbered_lines(char *data, size_t len, unsigned char *seen, int per)
{
	size_t lines = 0;
	char *save = NULL;

	assert_true(len == 0 || data[len - 1] == '\n');
	for (char *l = strtok_r(data, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		struct accesslog_entry e;
		char target[32], *want;
		int t, i;

		assert_int_equal(sscanf(strstr(l, "\"GET /t"), "\"GET /t%d/%d ", &t, &i), 2);
		numbered_entry(&e, target, sizeof(target), t, i);
		want = format(LOG_FORMAT_COMBINED, &e);
		want[strlen(want) - 1] = '\0';
		assert_string_equal(l, want);
		free(want);
		assert_int_equal(seen[t * per + i], 0);
		seen[t * per + i] = 1;
		lines++;
	}
	return lines;
}

#define THREADS 4
#define PER	10000

static void *
writer_thread(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int i = 0; i < PER; i++) {
		struct accesslog_entry e;
		char target[32];

		numbered_entry(&e, target, sizeof(target), t, i);
		accesslog_write(&e);
	}
	return NULL;
}

static void
test_threads_into_file(void **state)
{
	struct tmpdir td;
	pthread_t th[THREADS];
	unsigned char *seen = calloc(THREADS * PER, 1);
	size_t len;
	char *data;

	(void)state;
	tmpdir_make(&td);
	assert_int_equal(accesslog_open(td.path, LOG_FORMAT_COMBINED), 0);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(pthread_create(&th[t], NULL, writer_thread, (void *)(intptr_t)t),
				 0);
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	accesslog_close();
	assert_int_equal(accesslog_dropped(), 0);

	data = read_file(td.path, &len);
	assert_int_equal(check_numbered_lines(data, len, seen, PER), THREADS * PER);
	free(data);
	free(seen);
	tmpdir_remove(&td, NULL);
}

static void
write_numbered(int t, int from, int to)
{
	for (int i = from; i < to; i++) {
		struct accesslog_entry e;
		char target[32];

		numbered_entry(&e, target, sizeof(target), t, i);
		accesslog_write(&e);
	}
}

static void
test_reopen_after_rename(void **state)
{
	struct tmpdir td;
	char rotated[160];
	unsigned char seen[300] = {0};
	size_t len;
	char *data;

	(void)state;
	tmpdir_make(&td);
	snprintf(rotated, sizeof(rotated), "%s/access.log.1", td.dir);
	assert_int_equal(accesslog_open(td.path, LOG_FORMAT_COMBINED), 0);
	write_numbered(0, 0, 100);
	assert_int_equal(rename(td.path, rotated), 0);
	accesslog_reopen();
	write_numbered(0, 100, 150);
	accesslog_close();

	/* Lines written before the reopen stay in the renamed file, the rest go to the new one. */
	data = read_file(rotated, &len);
	assert_int_equal(check_numbered_lines(data, len, seen, 300), 100);
	free(data);
	for (int i = 0; i < 100; i++)
		assert_int_equal(seen[i], 1);
	data = read_file(td.path, &len);
	assert_int_equal(check_numbered_lines(data, len, seen, 300), 50);
	free(data);
	for (int i = 100; i < 150; i++)
		assert_int_equal(seen[i], 1);
	tmpdir_remove(&td, "access.log.1");
}

struct drain {
	int fd;
	struct buf data;
};

static void *
drain_thread(void *arg)
{
	struct drain *d = arg;
	char chunk[65536];
	ssize_t n;

	while ((n = read(d->fd, chunk, sizeof(chunk))) > 0)
		buf_add(&d->data, chunk, (size_t)n);
	return NULL;
}

/* A reader that stops reading: the backlog fills, lines are dropped and counted. */
static void
test_backlog_full_drops(void **state)
{
	struct tmpdir td;
	struct drain d;
	pthread_t th;
	int written = 0;
	unsigned char *seen = calloc(PER * 10, 1);

	(void)state;
	tmpdir_make(&td);
	assert_int_equal(mkfifo(td.path, 0600), 0);
	d.fd = open(td.path, O_RDONLY | O_NONBLOCK);
	assert_true(d.fd >= 0);
	assert_int_equal(fcntl(d.fd, F_SETFL, 0), 0);
	buf_init(&d.data);
	assert_int_equal(accesslog_open(td.path, LOG_FORMAT_COMBINED), 0);

	/* ~150-byte lines: about 56,000 fill 8 MiB plus the pipe. */
	while (accesslog_dropped() == 0 && written < PER * 10) {
		write_numbered(0, written, written + 1);
		written++;
	}
	assert_true(accesslog_dropped() > 0);
	assert_true(written < PER * 10);

	assert_int_equal(pthread_create(&th, NULL, drain_thread, &d), 0);
	accesslog_close();
	pthread_join(th, NULL);
	close(d.fd);
	assert_int_equal(check_numbered_lines(d.data.data, d.data.len, seen, PER * 10) +
			     accesslog_dropped(),
			 written);
	buf_free(&d.data);
	free(seen);
	tmpdir_remove(&td, NULL);
}

static void
test_off_and_errors(void **state)
{
	struct accesslog_entry e = full_entry();

	(void)state;
	assert_int_equal(accesslog_open("off", LOG_FORMAT_JSON), 0);
	accesslog_write(&e);
	accesslog_reopen();
	accesslog_close();
	assert_int_equal(accesslog_dropped(), 0);

	errno = 0;
	assert_int_equal(accesslog_open("/nonexistent-dir/portico/access.log", LOG_FORMAT_JSON),
			 -1);
	assert_int_equal(errno, ENOENT);
	accesslog_write(&e); /* not open: nothing happens */
	accesslog_close();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_combined),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_http2_protocol),
	    cmocka_unit_test(test_combined_escaping),
	    cmocka_unit_test(test_json_escaping),
	    cmocka_unit_test(test_threads_into_file),
	    cmocka_unit_test(test_reopen_after_rename),
	    cmocka_unit_test(test_backlog_full_drops),
	    cmocka_unit_test(test_off_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
