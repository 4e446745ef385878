/*
 * proxyproto.h: the PROXY protocol header that an L4 balancer puts before a
 * client's bytes (haproxy's doc/proxy-protocol.txt, versions 1 and 2; SPEC
 * section 13).  A pure parser: no allocation, no state between calls, no I/O.
 *
 * The caller keeps the bytes received so far and hands them all to
 * proxyproto_parse() after each read.  The answer only ever moves forward:
 * while it is PROXYPROTO_MORE, more bytes may complete the header; once a
 * prefix is PROXYPROTO_INVALID or PROXYPROTO_DONE, every longer input gives
 * the same answer.  A header is at most PROXYPROTO_MAX_LEN bytes, so a caller
 * that holds that many bytes always has a final answer.
 *
 * Thread-safe: the functions only read their arguments.
 */
#ifndef PORTICO_PROXYPROTO_H
#define PORTICO_PROXYPROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Version 1: one US-ASCII line of at most 107 bytes, CRLF included. */
#define PROXYPROTO_V1_MAX_LEN 107
/*
 * Version 2: 16 bytes and the length they announce, bounded here (the wire
 * format allows 64 KiB) to keep per-connection memory small.  Addresses take
 * at most 216 bytes; the rest is TLVs (ALPN, SNI, TLS details, unique id).
 */
#define PROXYPROTO_V2_MAX_LEN 4096
#define PROXYPROTO_MAX_LEN    PROXYPROTO_V2_MAX_LEN

/* The reason given when the first bytes are not a PROXY header at all. */
#define PROXYPROTO_NOT_PROXY "not a PROXY protocol header"

enum proxyproto_status {
	PROXYPROTO_MORE,    /* a valid prefix: read more bytes */
	PROXYPROTO_DONE,    /* a complete header of h->len bytes */
	PROXYPROTO_INVALID, /* not a PROXY header, or a malformed one: close */
};

struct proxyproto_header {
	size_t len;	  /* bytes the header takes at the start of the input */
	unsigned version; /* 1 or 2 */
	/*
	 * true: no client address is carried (v1 UNKNOWN, v2 LOCAL, or a v2
	 * family or transport other than TCP over IPv4/IPv6: UNSPEC, UDP, UNIX);
	 * the connection's own addresses stand.  src and dst are then zeroed.
	 */
	bool local;
	/* The client and the address it connected to: AF_INET or AF_INET6, with ports. */
	struct sockaddr_storage src;
	struct sockaddr_storage dst;
};

/*
 * Parses the first `n` bytes of a connection.  DONE fills *h; INVALID sets
 * *reason to a static description ("version 1: no CRLF within 107 bytes");
 * MORE leaves both alone.  TLVs of version 2 are checked to fit the header
 * exactly and are otherwise ignored.
 */
enum proxyproto_status proxyproto_parse(const void *buf, size_t n, struct proxyproto_header *h,
					const char **reason);

#endif
