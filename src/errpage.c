/*
 * errpage.c: the small HTML responses portico generates (SPEC section 9).
 */
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "portico/errpage.h"
#include "portico/http.h"
#include "portico/stream.h"

uint64_t
errpage_write(struct evbuffer *out, int status, const char *reqid, bool close, bool keep_alive_10,
	      bool head_only)
{
	return errpage_write_retry(out, status, reqid, close, keep_alive_10, head_only, 0);
}

size_t
errpage_body(char *out, size_t cap, int status, const char *reqid)
{
	const char *reason = http_reason(status);
	int n;

	n = snprintf(out, cap,
		     "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
		     "<body><h1>%d %s</h1>\n<p>Request id: %s</p>\n"
		     "<hr><address>portico</address></body></html>\n",
		     status, reason, status, reason, reqid);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

size_t
errpage_fields(struct stream_field *f, const char *reqid, const char *retry)
{
	size_t n = 0;

	f[n++] = (struct stream_field){"Content-Type", 12, "text/html; charset=utf-8", 24};
	f[n++] = (struct stream_field){"Cache-Control", 13, "no-store", 8};
	f[n++] = (struct stream_field){"X-Request-Id", 12, reqid, strlen(reqid)};
	if (retry[0] != '\0')
		f[n++] = (struct stream_field){"Retry-After", 11, retry, strlen(retry)};
	return n;
}

uint64_t
errpage_write_retry(struct evbuffer *out, int status, const char *reqid, bool close,
		    bool keep_alive_10, bool head_only, unsigned retry_after)
{
	char body[ERRPAGE_BODY_MAX], retry[16] = "";
	size_t n = errpage_body(body, sizeof(body), status, reqid), nf;
	struct stream_field f[ERRPAGE_FIELDS_MAX];

	if (retry_after != 0)
		snprintf(retry, sizeof(retry), "%u", retry_after);
	nf = errpage_fields(f, reqid, retry);
	evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status,
			    http_reason(status), n);
	for (size_t i = 0; i < nf; i++)
		evbuffer_add_printf(out, "%.*s: %.*s\r\n", (int)f[i].name_len, f[i].name,
				    (int)f[i].value_len, f[i].value);
	evbuffer_add_printf(out, "%s\r\n",
			    close ? "Connection: close\r\n"
				  : (keep_alive_10 ? "Connection: keep-alive\r\n" : ""));
	if (head_only)
		return 0;
	evbuffer_add(out, body, n);
	return (uint64_t)n;
}
