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

/* A vhost that carries a proxy (ws_proxy.c). */
struct ws_pvhost;

struct ws {
	struct ev_loop *loop; /* ours, lent to lws (foreign_loops): io_slack is set on it */
	struct lws_context *ctx;
	struct lws_vhost *vhost;      /* the first profile's: also hosts our own descriptors */
	struct ws_profile **profiles; /* each allocated alone: lws keeps pointers to the names */
	size_t n_profiles;
	struct ws_pvhost **pvhosts; /* made when a proxied feed first needs one */
	size_t n_pvhosts;
	unsigned timeout_secs; /* lws's own network timeouts, for every client vhost */
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

/* lws_create_vhost, except that lws never takes a proxy from the environment's http_proxy. */
struct lws_vhost *ws_create_vhost(struct lws_context *ctx,
                                  const struct lws_context_creation_info *info);
/* Fills info (zeroed first) for a client vhost of profile p. */
void ws_profile_info(const struct ws *w, const struct ws_profile *p,
                     struct lws_context_creation_info *info);

/* Proxies (ws_proxy.c). The client vhost of profile p going through proxy px at address a,
 * made on first use; NULL when it cannot be made. */
struct lws_vhost *ws_proxy_vhost(struct ws *w, const struct ws_profile *p,
                                 const struct proxy_url *px, const struct dns_addr *a);
/* Frees the proxy vhosts' records (after the context is gone). */
void ws_proxy_free_vhosts(struct ws *w);
/* Reads the proxy's answer on f's new connection wsi; ws_proxy_forget stops it. */
void ws_proxy_watch(struct feed *f, struct lws *wsi);
void ws_proxy_forget(struct feed *f);
/* Frees the table of sockets waiting for an answer. */
void ws_proxy_fini(void);
/* The reason to record when a proxied feed's connection is gone with lws's reason; may be
 * written into buf. */
const char *ws_proxy_gone_reason(struct feed *f, const char *reason, char *buf, size_t len);
/* Records why connecting to f's proxy failed at once (err: errno, 0 if unknown). */
void ws_proxy_connect_failed(struct feed *f, int err);

/* Grows *tab (*cap entries, new ones NULL) to hold index fd >= 0; false when out of memory. */
bool ws_fd_table_fit(struct feed ***tab, size_t *cap, int fd);

/* The close code the server sent, and why TLS failed (ws_scan.c). ws_scan_watch: f's new
 * connection wsi has its socket; ws_scan_start: it is about to send its upgrade request, and
 * its receive stream is scanned from there until ws_scan_forget. */
void ws_scan_watch(struct feed *f, struct lws *wsi);
void ws_scan_start(struct feed *f, struct lws *wsi);
void ws_scan_forget(struct feed *f);
/* n bytes that lws read from socket fd, by SSL_read (tls) or recv. */
void ws_scan_read(int fd, const void *buf, size_t n, bool tls);
/* recv() of a watched socket, made with recvmsg for its receive time (*done true); *done false
 * when fd is not watched (or flags has MSG_PEEK): the caller reads it. */
ssize_t ws_scan_recv(int fd, void *buf, size_t len, int flags, bool *done);
/* The code of the first close frame on f's connection, or CLOSESCAN_NONE (closescan.h). */
unsigned ws_scan_close_code(const struct feed *f);
/* Frees the table of scanned sockets. */
void ws_scan_fini(void);

/* The metrics endpoint's state, owned by ws_http.c. */
struct ws_http;
void ws_http_free(struct ws_http *h);

#endif
