/*
 * status_client: `wsbeat status`. Fetches GET /status from a running daemon's metrics listener
 * and prints one line per feed. The JSON parser and the table renderer are pure (text in, text
 * out) so tests drive them without sockets.
 */
#ifndef WSBEAT_STATUS_CLIENT_H
#define WSBEAT_STATUS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "wsbeat/feed.h"
#include "wsbeat/metrics.h"

/* One feed of a /status document. Strings are owned by the document; NULL stands for null. */
struct status_feed {
	char *name, *url, *state, *last_error;
	double in_state_s;
	double rtt_ms;             /* < 0 when null */
	double last_message_age_s; /* < 0 when null */
	uint64_t attempt, connects, reconnects;
	int close_code; /* 0 when null */
};

struct status_doc {
	struct status_feed *feeds;
	size_t n_feeds;
	uint64_t counts[FEED_NSTATES]; /* from "counts"; unknown state names are ignored */
	bool has_counts;
};

/*
 * Parses a /status document (json need not be NUL-terminated). Unknown keys are skipped, so
 * the server may add fields; duplicate keys and trailing data are errors. On success returns 0
 * and fills *doc (free with status_client_doc_fini); on malformed input returns -1 with the
 * reason in err: the offset of a syntax error, the path (feeds[2].attempt) of a wrong type.
 */
int status_client_parse(const char *json, size_t len, struct status_doc *doc, char *err,
                        size_t errlen);

/* Frees what doc owns and zeroes it; safe on a zeroed doc. */
void status_client_doc_fini(struct status_doc *doc);

/*
 * Appends the table (NAME STATE FOR ATTEMPT RTT LAST-MSG RECONN LAST-ERROR) and the summary
 * line ("12/14 feeds open, 2 in backoff") for json to out; ANSI colours on the state only when
 * color. Returns 0, or -1 with a reason in err (malformed JSON, or out of memory).
 */
int status_client_render(const char *json, size_t len, bool color, struct mbuf *out, char *err,
                         size_t errlen);

/* Writes a duration as 3s, 5m12s, 2h03m or 4d07h into buf (negative counts as 0). */
void status_client_duration(double secs, char *buf, size_t buflen);

/*
 * Connects to listen ("ADDR:PORT", IPv6 in brackets) with a 3 s timeout, sends
 * GET /status HTTP/1.0 and prints the table to out. Blocking; for the command line only.
 * Returns 0, or -1 with a one-line reason in err.
 */
int status_client_run(const char *listen, FILE *out, bool color, char *err, size_t errlen);

#endif
