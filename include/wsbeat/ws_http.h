/* ws_http: the optional metrics/status HTTP endpoint, served from the same lws loop. */
#ifndef WSBEAT_WS_HTTP_H
#define WSBEAT_WS_HTTP_H

#include <stddef.h>

#include "wsbeat/metrics.h"

struct lws_context;

struct ws_http_hooks {
	/* Fills body for path; returns the HTTP status (200, or 404 for unknown paths). */
	int (*render)(void *arg, const char *path, struct mbuf *body, const char **content_type);
	void *arg;
};

/* Adds a listening vhost on "ADDR:PORT" to ctx. hooks must outlive the context. 0 or -1. */
int ws_http_listen(struct lws_context *ctx, const char *listen, const struct ws_http_hooks *hooks,
                   char *err, size_t errlen);

#endif
