/*
 * errpage.c: the small HTML responses portico generates (SPEC section 9).
 */
#include <stdio.h>

#include <event2/buffer.h>

#include "portico/errpage.h"
#include "portico/http.h"

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

uint64_t
errpage_write_retry(struct evbuffer *out, int status, const char *reqid, bool close,
		    bool keep_alive_10, bool head_only, unsigned retry_after)
{
	const char *reason = http_reason(status);
	char body[ERRPAGE_BODY_MAX];
	size_t n = errpage_body(body, sizeof(body), status, reqid);

	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\n"
			    "Content-Type: text/html; charset=utf-8\r\n"
			    "Content-Length: %zu\r\n"
			    "Cache-Control: no-store\r\n"
			    "X-Request-Id: %s\r\n",
			    status, reason, n, reqid);
	if (retry_after != 0)
		evbuffer_add_printf(out, "Retry-After: %u\r\n", retry_after);
	evbuffer_add_printf(out, "%s\r\n",
			    close ? "Connection: close\r\n"
				  : (keep_alive_10 ? "Connection: keep-alive\r\n" : ""));
	if (head_only)
		return 0;
	evbuffer_add(out, body, n);
	return (uint64_t)n;
}
