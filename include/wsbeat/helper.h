/*
 * helper: what a connect_command printed, parsed and checked before an attempt uses it. The
 * helper prints one JSON object, every member optional:
 *
 *   {"url": "wss://...", "headers": {"K": "V"}, "on_open": ["...", ...], "expires_in": 30}
 *
 * What it gives replaces the feed's url, headers or on_open for that attempt. Its values are
 * secrets: no message here ever quotes one, nor any other byte of the output. Pure: no
 * processes and no I/O (the shell runs the helper and hands its output here).
 */
#ifndef WSBEAT_HELPER_H
#define WSBEAT_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wsbeat/cfg.h"
#include "wsbeat/url.h"

/* More output than this is a failure (the shell stops reading and kills the helper). */
#define HELPER_OUT_MAX (64 * 1024)
/* At most this many headers and on_open messages. */
#define HELPER_MAX_ITEMS 64
/* The longest expires_in taken (ten years), in seconds. */
#define HELPER_EXPIRES_MAX 315360000.0
/* Room for the first line of the helper's stderr, sanitized (see helper_clean_line). */
#define HELPER_ERR_LINE 128

struct helper_header {
	char *name;
	char *value;
	size_t value_len;
};

struct helper_out {
	struct url url; /* when has_url */
	bool has_url, has_headers, has_on_open;
	struct helper_header *headers;
	size_t n_headers;
	/* Messages only (no waits): each send is a flat, secret template. */
	struct cfg_step *on_open;
	size_t n_on_open;
	int64_t expires_in_ms; /* -1 = not given */
	/* Set by the feed: CLOCK_MONOTONIC µs when the credentials expire, 0 = never said. */
	int64_t expires_at_us;
};

/*
 * Parses len bytes of a helper's stdout. Returns 0 and a new *out (free with helper_out_free),
 * or -1 with a reason in err that quotes nothing of the output.
 */
int helper_parse(const char *text, size_t len, struct helper_out **out, char *err, size_t errlen);

/* Wipes the secrets and frees h; NULL is a no-op. */
void helper_out_free(struct helper_out *h);

/*
 * Copies the first line of n bytes of stderr into out (size bytes, NUL-terminated): printable
 * ASCII kept, tabs as spaces, any other byte as '?', cut at size - 1 bytes and at the first
 * newline, surrounding blanks dropped. Returns its length.
 */
size_t helper_clean_line(const char *in, size_t n, char *out, size_t size);

#endif
