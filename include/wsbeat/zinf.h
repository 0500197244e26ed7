/*
 * zinf: inflating one compressed message at a time (decompress = gzip | deflate | auto), piece
 * by piece as it arrives, into a buffer bounded by max_message_size: an inflation bomb is cut
 * off at the bound instead of being buffered whole. Pure (zlib only).
 *
 *   gzip     RFC 1952 only
 *   deflate  RFC 1950 (zlib header) or raw RFC 1951, told apart by the header check
 *   auto     any of the three
 */
#ifndef WSBEAT_ZINF_H
#define WSBEAT_ZINF_H

#include <stddef.h>

#include "wsbeat/cfg.h"
#include "wsbeat/mbuf.h"

enum { ZINF_OK = 0, ZINF_CORRUPT = -1, ZINF_TOO_BIG = -2, ZINF_NOMEM = -3 };

struct zinf;

/* A stream, reusable for message after message (zinf_begin resets it). NULL on ENOMEM. */
struct zinf *zinf_new(void);
void zinf_free(struct zinf *z);

/* Starts a message; mode is not DEC_NONE. */
void zinf_begin(struct zinf *z, enum decompress mode);

/*
 * Inflates len more bytes of the message, appending to out. ZINF_OK; ZINF_TOO_BIG as soon as
 * out would hold more than max bytes; ZINF_CORRUPT on bad data (zinf_error says why);
 * ZINF_NOMEM.
 */
int zinf_feed(struct zinf *z, const void *in, size_t len, struct mbuf *out, size_t max);

/* The message has ended: ZINF_OK when it held one complete stream (or nothing), else
 * ZINF_CORRUPT (truncated). */
int zinf_end(struct zinf *z);

/* Why the last call failed, for logs. */
const char *zinf_error(const struct zinf *z);

#endif
