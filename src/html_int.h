/*
 * html_int.h: what html.c and html_url.c share: finding the URLs inside an
 * attribute value or a CSS statement.  Each finder calls `visit` once per
 * URL, in order, with its position inside the value; the caller passes the
 * bytes between the URLs through and rewrites the URLs.
 */
#ifndef PORTICO_HTML_INT_H
#define PORTICO_HTML_INT_H

#include <stdbool.h>
#include <stddef.h>

typedef void (*html_url_visit)(void *arg, const char *url, size_t len);

static inline bool
html_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* A URL attribute: the URL without the whitespace around it. */
void html_urls_trimmed(const char *v, size_t len, html_url_visit visit, void *arg);
/* srcset: "url [descriptor], url [descriptor], ...": every URL. */
void html_urls_srcset(const char *v, size_t len, html_url_visit visit, void *arg);
/* The url= part of a refresh value ("5; url=/x", "0;URL='/x'", "3, /x"). */
void html_urls_refresh(const char *v, size_t len, html_url_visit visit, void *arg);
/* CSS: the targets of url(...) and @import "...". */
void html_urls_css(const char *s, size_t len, html_url_visit visit, void *arg);

#endif
