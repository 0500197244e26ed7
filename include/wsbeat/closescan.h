/*
 * closescan: finds the status code of the first close frame in a WebSocket client's receive
 * stream, as the bytes arrive, without buffering them.
 *
 * Why: libwebsockets 4.1.6 replaces the codes 1012 (service restart), 1013 (try again later)
 * and 1014 (bad gateway) with 1002 before its user sees the close frame (client-parser-ws.c
 * still checks against RFC 6455's 2011 list), so the code the server sent is read here, from
 * the bytes lws reads (src/ws_scan.c).
 *
 * The stream starts with the server's answer to the upgrade (an HTTP header block up to the
 * blank line), then frames. Only frame headers are looked at; payloads are skipped by length.
 * Once a close frame has been seen, or the stream is not what a server may send (a masked
 * frame, which lws refuses on its own), the scanner stops looking.
 */
#ifndef WSBEAT_CLOSESCAN_H
#define WSBEAT_CLOSESCAN_H

#include <stddef.h>
#include <stdint.h>

struct closescan {
	uint64_t left; /* payload bytes of the current frame still to skip */
	uint8_t phase; /* enum in closescan.c */
	uint8_t step;  /* progress through "\r\n\r\n", or header bytes collected */
	uint8_t need;  /* header bytes the current frame's header has */
	uint8_t op;    /* the current frame's first byte */
	uint16_t code; /* the close frame's code: CLOSESCAN_NONE until one is seen */
};

/* No close frame seen yet. */
#define CLOSESCAN_NONE 0
/* A close frame without a code (RFC 6455 7.1.5 "no status received"). */
#define CLOSESCAN_NO_STATUS 1005

/* Starts at the beginning of the server's HTTP answer. */
void closescan_start(struct closescan *s);
/* Looks at nothing until the next closescan_start (code: CLOSESCAN_NONE). */
void closescan_idle(struct closescan *s);
/* Takes the next n bytes of the stream. */
void closescan_feed(struct closescan *s, const void *buf, size_t n);
/* The first close frame's code; CLOSESCAN_NO_STATUS for one without a code; CLOSESCAN_NONE
 * while none has been seen (and for a malformed one: a single byte, or the code 0). */
static inline unsigned closescan_code(const struct closescan *s)
{
	return s->code;
}

#endif
