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
	double last_error_age_s;   /* < 0 when null */
	uint64_t attempt, connects, reconnects;
	int close_code; /* 0 when null */
};

struct status_doc {
	struct status_feed *feeds;
	size_t n_feeds;
	uint64_t counts[FEED_NSTATES]; /* from "counts"; unknown state names are ignored */
	bool has_counts;
	char *shard; /* "K/N" of a sharded process, else NULL */
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

/* The same table for several parsed documents (shards of one configuration): with more than
 * one, a SHARD column comes first and the summary counts them all. */
void status_client_render_docs(const struct status_doc *docs, size_t n_docs, bool color,
                               struct mbuf *out);

/* Writes a duration as 3s, 5m12s, 2h03m or 4d07h into buf (negative counts as 0). */
void status_client_duration(double secs, char *buf, size_t buflen);

/*
 * Connects to listen ("ADDR:PORT", IPv6 in brackets) with a 3 s timeout, sends
 * GET /status HTTP/1.0 and prints the table to out. Blocking; for the command line only.
 * Returns 0, or -1 with a one-line reason in err.
 */
int status_client_run(const char *listen, FILE *out, bool color, char *err, size_t errlen);

/*
 * metrics.port_per_shard: every shard of one host in one table. Shard K serves on base's port
 * + K; the first to answer says how many there are ("shard":"K/N"), and ports are tried
 * until one does (at most STATUS_SHARD_PROBE). Each shard that does not answer is named on
 * warn. Returns 0 when every shard answered, 1 when some did not (the table has the others),
 * -1 with a reason in err when none did.
 */
#define STATUS_SHARD_PROBE 16
int status_client_run_shards(const char *base, FILE *out, FILE *warn, bool color, char *err,
                             size_t errlen);

#endif
