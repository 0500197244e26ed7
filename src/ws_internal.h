/*
 * Private to the libwebsockets shell (ws.c, ws_http.c): the shell's state, and the descriptors
 * of our own that it watches in the loop.
 */
#ifndef WSBEAT_WS_INTERNAL_H
#define WSBEAT_WS_INTERNAL_H

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <stdbool.h>

#include "wsbeat/cfg.h"
#include "wsbeat/dns.h"
#include "wsbeat/feed.h"
#include "wsbeat/timerq.h"
#include "wsbeat/ws.h"

/* A descriptor of ours in the loop: cb(arg) runs whenever it is readable. */
struct ws_watch {
	struct lws *wsi; /* lws owns a duplicate of the descriptor */
	void (*cb)(void *arg);
	void *arg;
	bool ended; /* ws_watch_end: lws closes it once the callback returns */
};

/* One client vhost per distinct TLS profile: lws keeps TLS settings per vhost. */
struct ws_profile {
	struct cfg_tls tls; /* its own copy of the paths */
	bool compression;   /* offers permessage-deflate (lws keeps extensions per vhost too) */
	SSL_CTX *ssl_ctx;   /* ours, shared by the profiles of equal TLS settings: lws does not
	                       free a provided context */
	struct lws_vhost *vhost;
	char name[24]; /* lws keeps the pointer */
};

struct ws {
	struct lws_context *ctx;
	struct lws_vhost *vhost;      /* the first profile's: also hosts our own descriptors */
	struct ws_profile **profiles; /* each allocated alone: lws keeps pointers to the names */
	size_t n_profiles;
	struct timerq *tq;
	int timerfd; /* the one timer that drives the timer queue */
	int sigfd;
	/* Our own descriptors in the loop. */
	struct ws_watch *timer_watch, *signal_watch, *dns_watch;
	struct ws_http *http;      /* the metrics endpoint, NULL when none */
	struct ws_helper *helpers; /* connect_command processes not reaped yet */
	struct dns *dns;
	ws_signal_fn on_signal;
	void *signal_arg;
	unsigned char *txbuf;
	size_t txcap;
	/* Feeds that asked to write while the timer queue ran (heartbeats): see flush_writes. */
	struct feed **due;
	size_t n_due, cap_due;
	bool in_driver; /* tq_driver_fired is running */
	bool quitting;  /* the context is going away: no more timer scheduling */
};

/* Calls cb(arg) from the loop whenever fd is readable. fd stays the caller's (lws watches a
 * duplicate). Returns the watch, or NULL (errno set). */
struct ws_watch *ws_watch_fd(struct ws *w, int fd, void (*cb)(void *arg), void *arg);
/* Stops watching; never call from the watch's own callback. NULL is a no-op. */
void ws_unwatch(struct ws_watch *h);
/* From inside h's own callback: stop watching once it returns (lws closes its duplicate and h
 * is freed). h must not be used afterwards. NULL is a no-op. */
void ws_watch_end(struct ws_watch *h);

/* connect_command processes (ws_helper.c): the feed shell's run_helper and cancel_helper, and
 * the end of every helper left when the context is gone (killed and reaped). */
struct ws_helper;
int ws_run_helper(struct feed *f);
void ws_cancel_helper(struct feed *f, char *line, size_t size);
void ws_helpers_free(struct ws *w);

/* The metrics endpoint's state, owned by ws_http.c. */
struct ws_http;
void ws_http_free(struct ws_http *h);

#endif
