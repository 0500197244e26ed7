/* ws_http: the optional metrics/status HTTP endpoint, served from the same lws loop. */
#ifndef WSBEAT_WS_HTTP_H
#define WSBEAT_WS_HTTP_H

#include <stddef.h>

#include "wsbeat/metrics.h"

struct lws_context;

/*
 * A document is produced in slices, one per turn of the loop, so a large scrape never holds
 * the loop for long: begin() decides whether the path exists, step() appends a slice and
 * says when the document is complete, end() releases what begin() took.
 */
struct ws_http_hooks {
	/* Returns the HTTP status: 200 with *job and *content_type set, or 404. */
	int (*begin)(void *arg, const char *path, void **job, const char **content_type);
	/* Appends the next slice to body: 1 when complete, 0 when more remains, -1 on error. */
	int (*step)(void *arg, void *job, struct mbuf *body);
	void (*end)(void *arg, void *job);
	void *arg;
};

/* Adds a listening vhost on "ADDR:PORT" to ctx. hooks must outlive the context. 0 or -1. */
int ws_http_listen(struct lws_context *ctx, const char *listen, const struct ws_http_hooks *hooks,
                   char *err, size_t errlen);

#endif
