/* ws_http: the optional metrics/status HTTP endpoint, served from the same lws loop. */
#ifndef WSBEAT_WS_HTTP_H
#define WSBEAT_WS_HTTP_H

#include <stddef.h>

#include "wsbeat/metrics.h"

struct ws;

/*
 * A document is produced in slices, one per turn of the loop, so a large scrape never holds
 * the loop for long: begin() decides whether the path exists, step() appends a slice and
 * says when the document is complete, end() releases what begin() took.
 */
/* What a 200 answer is sent with. */
struct ws_http_reply {
	const char *type;
	const char *csp; /* Content-Security-Policy, or NULL for none */
};

struct ws_http_hooks {
	/* Returns the HTTP status: 200 with *job and *reply set, or 404 (or 500). */
	int (*begin)(void *arg, const char *path, void **job, struct ws_http_reply *reply);
	/* Appends the next slice to body: 1 when complete, 0 when more remains, -1 on error. */
	int (*step)(void *arg, void *job, struct mbuf *body);
	void (*end)(void *arg, void *job);
	void *arg;
};

/*
 * Serves hooks on "ADDR:PORT" (numeric) from w's loop; called again with another address, moves
 * the endpoint there, closing the old socket only once the new one listens (reload). hooks
 * must outlive w; listen NULL stops serving. 0, or -1 with the reason in err (the endpoint
 * stays where it was).
 */
int ws_http_listen(struct ws *w, const char *listen, const struct ws_http_hooks *hooks, char *err,
                   size_t errlen);

#endif
