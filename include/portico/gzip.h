/*
 * gzip.h: zlib body filters (filter.h) for HTML rewriting of compressed
 * responses: a decoder for gzip, zlib-wrapped deflate and raw deflate (told
 * apart by the first two bytes, whatever Content-Encoding said), and a gzip
 * encoder.  Each streams: it keeps only zlib's own state and passes its
 * output on at once, to the next filter of the chain or to the evbuffer
 * given to write/finish.  free() releases the rest of the chain.
 */
#ifndef PORTICO_GZIP_H
#define PORTICO_GZIP_H

#include "portico/filter.h"

/*
 * Decompression-bomb guard: one write of `len` compressed bytes may produce
 * at most GZIP_OUT_FLOOR + GZIP_RATIO_MAX * len bytes, else it fails.
 */
#define GZIP_OUT_FLOOR (1024 * 1024)
#define GZIP_RATIO_MAX 256

/*
 * write() returns -1 on a corrupt stream or a bomb; finish() returns -1 on
 * a truncated stream.  An empty body is accepted (no output); bytes after
 * the end of the compressed stream are ignored.
 */
struct filter *gzip_decoder_new(void);

/*
 * The level HTML responses are re-compressed at: zlib's fastest.  On text
 * it compresses nearly as well as the default (6) for a third of the
 * instructions, and the response is compressed on every request, not once.
 */
#define GZIP_LEVEL 1

/* A gzip encoder at zlib `level` (-1: zlib's default). */
struct filter *gzip_encoder_new(int level);

#endif
